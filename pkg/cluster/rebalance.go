package cluster

import "math"

// RebalanceSlack is how many connections over its bound (factor times the
// mean) a member may carry before it sheds: a handful, so that the load
// settles within the bound, give or take the clients that happen to
// reconnect to the same member, instead of moving clients back and forth
// over one or two. It is small enough that a new member in a small
// cluster still gets its share.
const RebalanceSlack = 4

// Excess returns how many connections self should shed for the members'
// load to be within factor of their mean: none while self is within the
// bound plus RebalanceSlack, else all it carries over the bound. Members
// that are draining or not alive neither count towards the mean nor shed.
// Zero factor, or fewer than two counted members, means none.
func Excess(members []Member, self string, factor float64) int {
	if factor <= 0 {
		return 0
	}
	var total, n, mine int
	found := false
	for _, m := range members {
		if m.State != StateAlive || m.Draining {
			continue
		}
		total += m.Connections.Total()
		n++
		if m.Name == self {
			mine, found = m.Connections.Total(), true
		}
	}
	if !found || n < 2 {
		return 0
	}
	mean := float64(total) / float64(n)
	bound := int(math.Ceil(mean * factor))
	if mine-bound <= RebalanceSlack {
		return 0
	}
	return mine - bound
}
