package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Gap reasons: why a position could not be served exactly.
const (
	// GapTrimmed: the position is not in the stream and entries after it
	// were deleted (trimmed, removed, or the stream re-created); delivery
	// goes on from the oldest entry still held.
	GapTrimmed = "trimmed"
	// GapReset: the position is beyond the stream's end (the stream expired
	// or was deleted, Redis lost its data, or the ID belongs to another
	// stream); delivery goes on from the newest.
	GapReset = "reset"
	// GapMalformed: the client's position could not be parsed at all.
	GapMalformed = "malformed"
)

// Gap says that entries after a position may have been lost to the reader.
type Gap struct {
	Reason string
	// From is the position that could not be served.
	From protocol.ID
	// Resume is the position delivery continues after.
	Resume protocol.ID
}

// Cursor names a channel and the last entry ID a reader has seen on it.
type Cursor struct {
	Channel string
	After   protocol.ID
	// Seen reports that After is an entry the reader itself read from the
	// stream (a live reader's own position), not one a client brought.
	// Such an entry leaves the stream only when removed, so if it is gone
	// although the stream shows no removal that could have taken it, the
	// stream was re-created (deleted, expired, or lost by Redis) and
	// entries after it may be missing.
	Seen bool
}

// Batch is the result of reading one channel after a cursor.
type Batch struct {
	Entries []Entry
	// Gap is set when entries after the cursor may be missing.
	Gap *Gap
	// Full reports that the read stopped at its limit: more may follow.
	Full bool
	// Err is set, and the rest empty, when this one stream could not be
	// read while others could: ErrUnreadable when Redis refused to read it,
	// as it always will until the key is fixed; any other error when its
	// shard could not be reached, so that reading it again later will do.
	// The other channels of a read are unaffected.
	Err error
}

// Last returns the position after this batch, given the cursor it was read from.
func (b *Batch) Last(after protocol.ID) protocol.ID {
	if n := len(b.Entries); n > 0 {
		return b.Entries[n-1].ID
	}
	if b.Gap != nil {
		return b.Gap.Resume
	}
	return after
}

// ReadAfter returns up to limit entries of channel after the entry after.
// It reads inclusively so that it can tell whether after is still in the
// stream: if not, and entries after it may be missing, the batch carries a
// Gap.
func (s *Store) ReadAfter(ctx context.Context, channel string, after protocol.ID, limit int) (Batch, error) {
	b, err := s.ReadMany(ctx, []Cursor{{Channel: channel, After: after}}, limit)
	if err != nil {
		return Batch{}, err
	}
	return b[0], b[0].Err
}

// ReadMany reads several channels in one pipelined round trip; result i is
// for cursors[i]. A rare second round trip resolves positions that are not
// in their stream.
func (s *Store) ReadMany(ctx context.Context, cursors []Cursor, limit int) (batches []Batch, err error) {
	defer wrap(&err, "failed to read streams")
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(cursors))
	for i, c := range cursors {
		// Inclusive of the cursor, and one past the limit to tell if more follow.
		cmds[i] = pipe.XRangeN(ctx, s.Key(c.Channel), c.After.String(), "+", int64(limit+2))
	}
	_, execErr := pipe.Exec(ctx)
	batches = make([]Batch, len(cursors))
	var missing []int
	failed := 0
	for i, cmd := range cmds {
		msgs, err := cmd.Result()
		switch {
		case isReply(err):
			batches[i].Err = unreadable(cursors[i].Channel, err)
			continue
		case err != nil:
			// In a cluster, one shard may be down (failing over) while the
			// others serve: only its channels wait.
			batches[i].Err = fmt.Errorf("store: failed to read %q: %w", cursors[i].Channel, err)
			failed++
			continue
		}
		ok, err := holds(cursors[i].After, msgs)
		if err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, i)
			continue
		}
		if batches[i], err = batchOf(msgs, !cursors[i].After.IsZero(), limit); err != nil {
			return nil, err
		}
	}
	if failed > 0 && failed == len(cursors) {
		return nil, execErr
	}
	return batches, s.resolveMissing(ctx, cursors, batches, missing, limit)
}

// holds reports whether msgs, read inclusively from after, start with after
// itself. The zero position means the start of the stream: always held.
func holds(after protocol.ID, msgs []redis.XMessage) (bool, error) {
	if after.IsZero() {
		return true, nil
	}
	if len(msgs) == 0 {
		return false, nil
	}
	first, err := protocol.ParseID(msgs[0].ID)
	return first == after, err
}

// batchOf makes a batch of msgs, leaving out the first when it is the
// position they were read from.
func batchOf(msgs []redis.XMessage, skipFirst bool, limit int) (Batch, error) {
	var b Batch
	if skipFirst && len(msgs) > 0 {
		msgs = msgs[1:]
	}
	if len(msgs) > limit {
		msgs, b.Full = msgs[:limit], true
	}
	b.Entries = make([]Entry, len(msgs))
	for i, m := range msgs {
		id, err := protocol.ParseID(m.ID)
		if err != nil {
			return b, err
		}
		b.Entries[i] = entryFromValues(id, m.Values)
	}
	return b, nil
}

// Moved reports, for each cursor, whether its stream may hold entries after
// it: the cheap check before a read when a channel was only suspected of
// moving (a lost wake-up, a resubscription, a poll), not notified. Redis
// answers for up to a whole group of streams in one XREAD (every stream
// of a single Redis; the streams of one hash slot in a Redis Cluster),
// returning nothing for the ones that did not move, where a read costs one
// XRANGE per stream and returns the entry at each cursor.
//
// It errs towards reading: a group Redis could not answer for is reported
// as moved, so the read that follows meets the error, or the stream it
// cannot read, one channel at a time. A stream deleted or re-created with
// no entry after the cursor is not reported; its gap shows with its next
// entry, as it would without a sweep.
func (s *Store) Moved(ctx context.Context, cursors []Cursor) []bool {
	moved := make([]bool, len(cursors))
	if len(cursors) == 0 {
		return moved
	}
	all := make([]int, len(cursors))
	for i := range all {
		all[i] = i
	}
	groups := s.bySlot(cursors, all)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XStreamSliceCmd, len(groups))
	keys := make(map[string]int, len(cursors))
	for g, idx := range groups {
		streams := make([]string, 2*len(idx))
		for j, i := range idx {
			key := s.Key(cursors[i].Channel)
			keys[key] = i
			streams[j], streams[len(idx)+j] = key, cursors[i].After.String()
		}
		cmds[g] = pipe.XRead(ctx, &redis.XReadArgs{Streams: streams, Count: 1, Block: -1})
	}
	_, _ = pipe.Exec(ctx) // each command's own error is looked at below
	for g, cmd := range cmds {
		streams, err := cmd.Result()
		switch {
		case err == redis.Nil:
		case err != nil:
			for _, i := range groups[g] {
				moved[i] = true
			}
		default:
			for _, st := range streams {
				if i, ok := keys[st.Stream]; ok {
					moved[i] = true
				}
			}
		}
	}
	return moved
}
