// Package node wires a push node together: the Redis connection (or the
// embedded development store), the store, the hub and the HTTP server, and
// runs them until the context ends, shutting down gracefully.
package node
