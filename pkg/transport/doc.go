// Package transport owns the node's HTTP surface: Server-Sent Events,
// WebSocket, the HTTP API (publish, history, health) and the demo page.
//
// Connections cost little while idle: an SSE connection is hijacked from
// net/http, so the request's buffers and handler goroutine are freed. Frames
// are written from the goroutine that delivers them while the client keeps
// up, and by one epoll loop per CPU once its socket backs up (poller), so a
// connection holds no writer goroutine of its own.
package transport
