// Package hub owns the node's local subscribers: which connections listen on
// which channel, one cursor per channel of interest, and fan-out of each entry
// read from the store to every local subscriber, in order and exactly once.
//
// A subscriber joins at a position (an entry ID, or "now"), is replayed from
// the store until it reaches the channel's cursor, and is then handed over to
// live delivery under the channel's lock; live delivery skips what the
// subscriber already has, so the hand-over has neither gap nor duplicate.
//
// Live delivery never blocks on a client: a connection whose bounded queue is
// full is kicked (ErrSlowConsumer) and resumes from its last ID elsewhere.
package hub
