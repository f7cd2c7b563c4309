// Package devstore runs the embedded Redis-compatible store a node uses when
// no Redis is configured: for development and demos only. It keeps data in
// memory, and it has no keyspace notifications, so nodes on it poll.
package devstore

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// Store is a running embedded store.
type Store struct {
	mr *miniredis.Miniredis
}

// Start starts an embedded store on a free loopback port.
func Start() (*Store, error) {
	mr, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("devstore: failed to start: %w", err)
	}
	return &Store{mr: mr}, nil
}

// Addr returns the store's host:port, for redis-cli -p.
func (s *Store) Addr() string { return s.mr.Addr() }

// URL returns the store's redis:// URL.
func (s *Store) URL() string { return "redis://" + s.mr.Addr() + "/0" }

// Close stops the store. It is safe to call twice.
func (s *Store) Close() { s.mr.Close() }
