package store

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// A position that is not in its stream is not by itself a gap: a client may
// bring one from before the stream's first entry (1-0, an ID from a page's
// example) when nothing was ever removed. It is a gap only when entries after
// it may really be missing, which Redis 7 and later tell in XINFO STREAM:
//
//   - entries-added, beside length, says whether any entry was ever removed;
//   - trimming (MAXLEN, MINID) removes the oldest entries, those before
//     first-entry, and keeps no record of their IDs: a position before the
//     first entry of a stream that lost any is a gap;
//   - inside the stream only XDEL removes entries, and max-deleted-entry-id
//     is the newest it removed: a position it passed is a gap;
//   - in a stream that lost every entry, last-generated-id was the newest.
//
// A stream that was deleted (DEL, expiry) or lost (a Redis restarted without
// its data) and then re-created starts its counts again, and Redis keeps no
// trace of the old one: a client's position from the old stream looks like
// one from before the stream began. Only a reader that saw its position as an
// entry (Cursor.Seen) can tell. Servers without these fields (Redis 6, the
// embedded development store) tell nothing, so every position not found is
// reported as a gap.

// streamState is what a stream says about itself when a position is not in it.
type streamState struct {
	latest protocol.ID // the newest entry; zero when none
	// end is the last ID the stream issued (last-generated-id): a position
	// beyond it is from no entry of this stream. The newest entry if unknown.
	end protocol.ID
	// The rest is known from Redis 7 on (knowsHistory).
	knowsHistory bool
	first        protocol.ID // the oldest entry
	length       int64       // entries held
	removed      int64       // entries ever removed: entries-added less length
	maxDeleted   protocol.ID // the newest entry XDEL removed
}

// lostAfter reports whether entries after c.After may have been removed.
func (st *streamState) lostAfter(c Cursor) bool {
	p := c.After
	switch {
	case !st.knowsHistory:
		return true
	case st.length == 0:
		return p.Less(st.end)
	case p.Less(st.first):
		// A seen entry before the first was trimmed, or its stream is gone.
		return c.Seen || st.removed > 0
	}
	// Inside the stream yet not an entry of it: removed by XDEL, or never
	// in this history at all (a failover promoted a replica that had not
	// received it, and entries after it are lost too). Only the newest
	// XDEL'd entry itself, with nothing removed after it, is no gap.
	return st.maxDeleted != p
}

// resolve makes the batch of a cursor whose entry was not in its stream, from
// msgs read inclusively after it and the stream's state, read together.
func resolve(c Cursor, msgs []redis.XMessage, st *streamState, limit int) (Batch, error) {
	held, err := holds(c.After, msgs)
	if err != nil {
		return Batch{}, err
	}
	b, err := batchOf(msgs, held && !c.After.IsZero(), limit)
	if err != nil || held {
		return b, err
	}
	switch {
	case st.end.Less(c.After):
		// Beyond the stream's end: no entry of this stream. Go on from its newest.
		b.Gap = &Gap{Reason: GapReset, From: c.After, Resume: st.latest}
	case st.lostAfter(c):
		resume := c.After
		if len(b.Entries) == 0 {
			// Nothing follows: what came before, if anything, is where
			// delivery goes on, so the next read does not report it again.
			resume = st.latest
		}
		b.Gap = &Gap{Reason: GapTrimmed, From: c.After, Resume: resume}
	}
	return b, nil
}

// streamProbe is the slow-path read of one stream, in one transaction so
// that the entries and the stream's state agree.
type streamProbe struct {
	entries *redis.XMessageSliceCmd
	latest  *redis.XMessageSliceCmd // also where XINFO lacks last-entry (the embedded store)
	info    *redis.XInfoStreamCmd
}

// resolveMissing reads again, with the state of their streams, the cursors
// whose entry was not found, and decides whether each is a gap. It runs only
// then, so the normal read keeps its single round trip.
func (s *Store) resolveMissing(ctx context.Context, cursors []Cursor, batches []Batch, idx []int, limit int) error {
	if len(idx) == 0 {
		return nil
	}
	groups := s.bySlot(cursors, idx)
	if len(groups) == 1 {
		return s.resolveTx(ctx, cursors, batches, groups[0], limit)
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for g, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = s.resolveTx(ctx, cursors, batches, idx, limit)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// bySlot groups the cursors idx names by the hash slot of their keys when
// the store is a Redis Cluster, where a transaction may hold the keys of
// one slot only; elsewhere they stay one group.
func (s *Store) bySlot(cursors []Cursor, idx []int) [][]int {
	if _, ok := s.rdb.(*redis.ClusterClient); !ok {
		return [][]int{idx}
	}
	at := map[int]int{}
	var groups [][]int
	for _, i := range idx {
		slot := Slot(s.Key(cursors[i].Channel))
		g, ok := at[slot]
		if !ok {
			g = len(groups)
			at[slot] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// resolveTx reads the cursors idx names, all in one slot, in one MULTI/EXEC.
func (s *Store) resolveTx(ctx context.Context, cursors []Cursor, batches []Batch, idx []int, limit int) error {
	pipe := s.rdb.TxPipeline()
	probes := make([]streamProbe, len(idx))
	for j, i := range idx {
		key := s.Key(cursors[i].Channel)
		probes[j] = streamProbe{
			entries: pipe.XRangeN(ctx, key, cursors[i].After.String(), "+", int64(limit+2)),
			latest:  pipe.XRevRangeN(ctx, key, "+", "-", 1),
			info:    pipe.XInfoStream(ctx, key),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !isReply(err) {
		return err
	}
	for j, i := range idx {
		p := &probes[j]
		msgs, err := p.entries.Result()
		if isReply(err) {
			batches[i].Err = unreadable(cursors[i].Channel, err)
			continue
		}
		st, err := p.state()
		if err != nil {
			return err
		}
		if batches[i], err = resolve(cursors[i], msgs, st, limit); err != nil {
			return err
		}
	}
	return nil
}

// state reads the probe's view of the stream. XINFO fails on a missing key
// (and may be refused by a proxy); the stream is then taken to end at its
// newest entry, and to have lost anything not found.
func (p *streamProbe) state() (*streamState, error) {
	st := &streamState{}
	if msgs, _ := p.latest.Result(); len(msgs) > 0 {
		id, err := protocol.ParseID(msgs[0].ID)
		if err != nil {
			return nil, err
		}
		st.latest = id
	}
	st.end = st.latest
	info, err := p.info.Result()
	if err != nil {
		return st, nil
	}
	if end, err := protocol.ParseID(info.LastGeneratedID); err == nil && st.latest.Less(end) {
		st.end = end
	}
	if info.MaxDeletedEntryID == "" { // before Redis 7
		return st, nil
	}
	if st.maxDeleted, err = protocol.ParseID(info.MaxDeletedEntryID); err != nil {
		return nil, err
	}
	if info.Length > 0 {
		if st.first, err = protocol.ParseID(info.FirstEntry.ID); err != nil {
			return nil, err
		}
	}
	st.length, st.removed = info.Length, info.EntriesAdded-info.Length
	st.knowsHistory = true
	return st, nil
}
