//go:build unix

// Package tests holds the end-to-end tests: real nodes on loopback sharing a
// real redis-server, real SSE and WebSocket clients, and a real browser.
// They stop and kill node processes with signals and set socket options,
// so they build on Unix only; the node itself builds everywhere.
package tests
