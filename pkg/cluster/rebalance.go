package cluster

import "math"

// RebalanceFloor is the smallest excess over the cluster mean, in
// connections, that a member sheds: below it, moving clients costs more
// than the imbalance, and small clusters would churn.
const RebalanceFloor = 20

// Excess returns how many connections self should shed for the members'
// load to be within factor of their mean: members that are draining or
// not alive neither count towards the mean nor shed. Zero factor, or
// fewer than two counted members, means none.
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
	if mine-bound <= 0 || float64(mine)-mean < RebalanceFloor {
		return 0
	}
	return mine - bound
}
