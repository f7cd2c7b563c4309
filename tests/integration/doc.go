//go:build integration

// Package integration drives the compose cluster (docker-compose.yml: Redis,
// three nodes, HAProxy) from outside, through HAProxy, with hundreds of SSE
// and WebSocket clients written with independent client libraries, while
// publishers XADD straight into Redis, under one fault at a time. Every
// client must receive every message exactly once and in order, or, where
// Redis loses data, be told with a gap: a hole without one fails.
//
//	make images && go test -race -tags integration -v ./tests/integration/
//
// Nothing is pulled: the images must exist locally (make images builds
// them). Set TESTCONTAINERS_RYUK_DISABLED=true where the Ryuk image cannot
// be pulled; the suite removes its own project.
package integration
