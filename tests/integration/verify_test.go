//go:build integration

package integration

import (
	"fmt"
	"strings"
	"time"
)

// lateAfter is the delivery latency (XADD sent to message received) above
// which a message counts as held up by the fault; the last such arrival is
// the moment of full recovery.
const lateAfter = time.Second

// tally is one fault's figures, over every client and channel.
type tally struct {
	fault                string
	sse, ws              int
	published, uncertain int // acknowledged XADDs; XADDs that failed or timed out
	expected, delivered  int // (client, channel, acknowledged message)s, and those received
	duplicates           int
	outOfOrder           int
	gaps                 int // gap signals received
	missingSignalled     int // acknowledged messages missing behind a gap signal
	missingSilently      int // acknowledged messages missing with no gap: never allowed
	connects, refused    int
	failed               int
	why                  []string // a sample of the refusals and failures
	maxLatency, recovery time.Duration
	problems             []string
}

func (t *tally) problem(format string, args ...any) {
	if len(t.problems) < 10 {
		t.problems = append(t.problems, fmt.Sprintf(format, args...))
	}
}

// check tallies what every client received against what was published,
// per channel: each acknowledged message once, in order; a message missing
// is signalled if a gap arrived between the deliveries around it.
func check(fault string, recs []*record, pub *publisher, t0 time.Time) *tally {
	t := &tally{fault: fault}
	for _, ch := range pub.channels {
		for _, p := range pub.sent(ch) {
			if p.acked {
				t.published++
			} else {
				t.uncertain++
			}
		}
	}
	for _, r := range recs {
		if strings.HasPrefix(r.name, "sse") {
			t.sse++
		} else {
			t.ws++
		}
		r.mu.Lock()
		t.connects += r.connects
		t.refused += r.refused
		t.failed += r.failed
		for _, w := range r.why {
			if len(t.why) < 5 {
				t.why = append(t.why, r.name+": "+w)
			}
		}
		for _, e := range r.errors {
			t.problem("%s: %s", r.name, e)
		}
		for _, ch := range r.channels {
			t.channel(r, ch, pub.sent(ch), t0)
		}
		r.mu.Unlock()
	}
	return t
}

func (t *tally) channel(r *record, ch string, sent []published, t0 time.Time) {
	gapBefore := map[int]bool{} // gapBefore[i]: a gap arrived just before delivery i
	for _, g := range r.gaps[ch] {
		gapBefore[g.after] = true
		t.gaps++
	}
	acked := func(seq int) bool { return seq >= 1 && seq <= len(sent) && sent[seq-1].acked }
	for _, p := range sent {
		if p.acked {
			t.expected++
		}
	}
	missing := func(from, to, at int) { // acknowledged seqs in [from, to) are missing
		for s := from; s < to; s++ {
			if !acked(s) {
				continue
			}
			if gapBefore[at] {
				t.missingSignalled++
			} else {
				t.missingSilently++
				t.problem("%s on %s: message %d missing, no gap", r.name, ch, s)
			}
		}
	}
	seen := map[int]bool{}
	prev := 0
	for i, d := range r.got[ch] {
		switch {
		case d.seq < 1 || d.seq > len(sent):
			t.problem("%s on %s: message %d was never published", r.name, ch, d.seq)
			continue
		case seen[d.seq]:
			t.duplicates++
			t.problem("%s on %s: message %d twice", r.name, ch, d.seq)
			continue
		case d.seq < prev:
			t.outOfOrder++
			t.problem("%s on %s: message %d after %d", r.name, ch, d.seq, prev)
		default:
			missing(prev+1, d.seq, i)
			prev = d.seq
		}
		seen[d.seq] = true
		if acked(d.seq) {
			t.delivered++
		}
		latency := d.at.Sub(sent[d.seq-1].at)
		t.maxLatency = max(t.maxLatency, latency)
		if latency > lateAfter && d.at.After(t0) {
			t.recovery = max(t.recovery, d.at.Sub(t0))
		}
	}
	missing(prev+1, len(sent)+1, len(r.got[ch]))
}

// failures returns why the fault failed, or nothing. Where Redis keeps its
// data nothing may be missing at all, signalled or not.
func (t *tally) failures(lossy bool) []string {
	var out []string
	if t.published == 0 {
		out = append(out, "nothing was published")
	}
	if t.duplicates+t.outOfOrder+t.missingSilently > 0 {
		out = append(out, fmt.Sprintf("%d duplicates, %d out of order, %d missing with no gap", t.duplicates, t.outOfOrder, t.missingSilently))
	}
	if t.refused > 0 {
		out = append(out, fmt.Sprintf("%d answers other than 200 or 101: a browser's EventSource would give up for good (%v)", t.refused, t.why))
	}
	if !lossy && t.missingSignalled+t.gaps > 0 {
		out = append(out, fmt.Sprintf("Redis kept its data, yet %d gaps were signalled and %d messages are missing behind them", t.gaps, t.missingSignalled))
	}
	if len(out) > 0 {
		out = append(out, t.problems...)
	}
	return out
}

const tableHeader = "| fault | clients (SSE + WS) | published | delivered / expected | duplicates | out of order | gaps signalled | missing behind a gap | missing silently | connections | refused | failed attempts | max latency | full recovery |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

func (t *tally) row() string {
	pub := fmt.Sprint(t.published)
	if t.uncertain > 0 {
		pub += fmt.Sprintf(" (+%d unanswered)", t.uncertain)
	}
	return fmt.Sprintf("| %s | %d + %d | %s | %d / %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n",
		t.fault, t.sse, t.ws, pub, t.delivered, t.expected, t.duplicates, t.outOfOrder, t.gaps,
		t.missingSignalled, t.missingSilently, t.connects, t.refused, t.failed,
		t.maxLatency.Round(time.Millisecond), t.recovery.Round(100*time.Millisecond))
}
