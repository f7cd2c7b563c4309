package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Gap reasons: why a position could not be served exactly.
const (
	// GapTrimmed: the position is no longer in the stream (trimmed, expired
	// or deleted); delivery goes on from the oldest entry still held.
	GapTrimmed = "trimmed"
	// GapReset: the position is beyond the stream's end (Redis lost its data,
	// or the ID belongs to another stream); delivery goes on from the newest.
	GapReset = "reset"
	// GapMalformed: the client's position could not be parsed at all.
	GapMalformed = "malformed"
)

// Gap says that entries after a position may have been lost to the reader.
type Gap struct {
	Reason string
	// From is the position that could not be served.
	From ID
	// Resume is the position delivery continues after.
	Resume ID
}

// Cursor names a channel and the last entry ID a reader has seen on it.
type Cursor struct {
	Channel string
	After   ID
}

// Batch is the result of reading one channel after a cursor.
type Batch struct {
	Entries []Entry
	// Gap is set when the cursor's entry is no longer in the stream.
	Gap *Gap
	// Full reports that the read stopped at its limit: more may follow.
	Full bool
	// Err is set, and the rest empty, when Redis refused to read this one
	// stream (ErrUnreadable); the other channels of a read are unaffected.
	Err error
}

// Last returns the position after this batch, given the cursor it was read from.
func (b *Batch) Last(after ID) ID {
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
// stream: if not, the batch carries a Gap.
func (s *Store) ReadAfter(ctx context.Context, channel string, after ID, limit int) (Batch, error) {
	b, err := s.ReadMany(ctx, []Cursor{{Channel: channel, After: after}}, limit)
	if err != nil {
		return Batch{}, err
	}
	return b[0], b[0].Err
}

// ReadMany reads several channels in one pipelined round trip; result i is
// for cursors[i]. A rare second round trip resolves positions beyond a
// stream's end.
func (s *Store) ReadMany(ctx context.Context, cursors []Cursor, limit int) (batches []Batch, err error) {
	defer wrap(&err, "failed to read streams")
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(cursors))
	for i, c := range cursors {
		// Inclusive of the cursor, and one past the limit to tell if more follow.
		cmds[i] = pipe.XRangeN(ctx, s.Key(c.Channel), c.After.String(), "+", int64(limit+2))
	}
	if _, err := pipe.Exec(ctx); err != nil && !isReply(err) {
		return nil, err
	}
	batches = make([]Batch, len(cursors))
	var beyond []int
	for i, cmd := range cmds {
		msgs, err := cmd.Result()
		if isReply(err) {
			batches[i].Err = unreadable(cursors[i].Channel, err)
			continue
		}
		if batches[i], err = batchOf(cursors[i].After, msgs, limit); err != nil {
			return nil, err
		}
		if len(msgs) == 0 && !cursors[i].After.IsZero() {
			beyond = append(beyond, i)
		}
	}
	return batches, s.resolveBeyond(ctx, cursors, batches, beyond)
}

func batchOf(after ID, msgs []redis.XMessage, limit int) (Batch, error) {
	var b Batch
	start := 0
	if !after.IsZero() && len(msgs) > 0 {
		first, err := ParseID(msgs[0].ID)
		if err != nil {
			return b, err
		}
		if first == after {
			start = 1
		} else {
			b.Gap = &Gap{Reason: GapTrimmed, From: after, Resume: after}
		}
	}
	msgs = msgs[start:]
	if len(msgs) > limit {
		msgs, b.Full = msgs[:limit], true
	}
	b.Entries = make([]Entry, len(msgs))
	for i, m := range msgs {
		id, err := ParseID(m.ID)
		if err != nil {
			return b, err
		}
		b.Entries[i] = entryFromValues(id, m.Values)
	}
	return b, nil
}

// resolveBeyond handles cursors whose read came back empty: the entry is not
// in the stream and nothing follows it, so the position is past the stream's
// end: a reset, unless entries arrived in between.
func (s *Store) resolveBeyond(ctx context.Context, cursors []Cursor, batches []Batch, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(idx))
	for j, i := range idx {
		cmds[j] = pipe.XRevRangeN(ctx, s.Key(cursors[i].Channel), "+", "-", 1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isReply(err) {
		return err
	}
	for j, i := range idx {
		msgs, err := cmds[j].Result()
		if isReply(err) {
			batches[i].Err = unreadable(cursors[i].Channel, err)
			continue
		}
		var latest ID
		if len(msgs) > 0 {
			if latest, err = ParseID(msgs[0].ID); err != nil {
				return err
			}
		}
		switch after := cursors[i].After; {
		case latest.Less(after):
			batches[i].Gap = &Gap{Reason: GapReset, From: after, Resume: latest}
		case after.Less(latest):
			// Entries arrived since the first read: the position was simply
			// not in the stream, and the next read delivers what follows.
			batches[i].Gap = &Gap{Reason: GapTrimmed, From: after, Resume: after}
		}
	}
	return nil
}
