// Package transport owns the node's HTTP surface: Server-Sent Events,
// WebSocket, the HTTP API (publish, history, health) and the demo page.
//
// Connections cost little while idle: an SSE connection is hijacked from
// net/http, so the request's buffers and handler goroutine are freed, and a
// connection's writer goroutine exists only while it has bytes to write.
package transport
