// Package cluster gives a node a view of the other nodes and a way to ask
// them questions, over hashicorp/memberlist.
//
// Members gossip small metadata (HTTP address, version, connection counts,
// subscriptions, draining, start time); every member keeps its own view of
// who is alive, suspect, dead or gone. Cluster-wide questions (who is on a
// channel, which clients are connected, deliver to or disconnect one client)
// are asked of every member in parallel, over memberlist's reliable
// (TCP) channel, with a deadline: members that do not answer in time are
// listed as missing and the answer is partial. Nothing here is on the
// delivery path: messages still travel only through Redis, and a member cut
// off from the gossip keeps delivering.
//
// Without a bind address a Cluster runs alone: the same questions are
// answered by the local node only.
package cluster
