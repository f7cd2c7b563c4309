// Package tests holds the end-to-end tests: real nodes on loopback sharing a
// real redis-server, real SSE and WebSocket clients, and a real browser.
package tests
