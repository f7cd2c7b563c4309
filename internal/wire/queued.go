package wire

import "sync"

// Queued is what one offer queues: a frame, or a run of frames that other
// connections share and that is only ever read. A burst therefore costs a
// connection one of these, not a copy of the burst. A wire that writes part
// of it advances it.
type Queued struct {
	frame  []byte   // when frames is nil
	frames [][]byte // shared: never written to
	size   int      // bytes in all
	done   int      // bytes written
	at     int      // frames[at] is the first not wholly written
	off    int      // bytes of frames[at], or of frame, written
}

// One queues a single frame.
func One(frame []byte) Queued { return Queued{frame: frame, size: len(frame)} }

// Shared queues a run of frames shared with other connections, by
// reference: they must never be written to.
func Shared(frames [][]byte) Queued {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return Queued{frames: frames, size: n}
}

// Len is how many bytes q holds in all.
func (q *Queued) Len() int { return q.size }

// Left is how many bytes of q are still to write.
func (q *Queued) Left() int { return q.left() }

// Advance records n more bytes of q written, as a Writer does.
func (q *Queued) Advance(n int) { q.advance(n) }

// Each calls f with every unwritten part of q, in order, until f returns
// false. The parts may be shared: f must not change them.
func (q *Queued) Each(f func([]byte) bool) { q.each(f) }

// left is how many bytes of q are still to write.
func (q *Queued) left() int { return q.size - q.done }

// advance records n more bytes of q written.
func (q *Queued) advance(n int) {
	q.done += n
	if q.frames == nil {
		q.off += n
		return
	}
	for n > 0 {
		rest := len(q.frames[q.at]) - q.off
		if n < rest {
			q.off += n
			return
		}
		n -= rest
		q.at, q.off = q.at+1, 0
	}
}

// partWritten is the unwritten end of the frame q is part way through, or
// nil when q is at the start of a frame.
func (q *Queued) partWritten() []byte {
	switch {
	case q.off == 0:
		return nil
	case q.frames == nil:
		return q.frame[q.off:]
	}
	return q.frames[q.at][q.off:]
}

// each calls f with every unwritten part of q, in order, until f returns
// false.
func (q *Queued) each(f func([]byte) bool) {
	if q.frames == nil {
		if q.off < len(q.frame) {
			f(q.frame[q.off:])
		}
		return
	}
	off := q.off
	for _, b := range q.frames[q.at:] {
		if off < len(b) && !f(b[off:]) {
			return
		}
		off = 0
	}
}

var queuedPool = sync.Pool{New: func() any { return new(Queued) }}

// advanceAll records n bytes of qs written and returns what is left.
func advanceAll(qs []Queued, n int) []Queued {
	for len(qs) > 0 {
		left := qs[0].left()
		if n < left {
			qs[0].advance(n)
			return qs
		}
		qs[0].advance(left)
		n -= left
		qs = qs[1:]
	}
	return qs
}
