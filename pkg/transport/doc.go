// Package transport owns the node's client connections and the transports
// that carry them: Server-Sent Events (GET /sse), WebSocket (GET /ws) and
// long polling (GET /poll).
//
// Whatever a connection is independent of its wire lives once, in the
// connection core (conn): its identity and session, its subscriptions and
// their hand-over from replay to live delivery, its bounded outbox, the
// expiry of its token, its place in the Registry (heartbeats, drain and
// shedding, the cluster's questions: presence, client lists, messages to
// one client, disconnects), and admission: the handshake every transport
// shares (Server.shake: query, credential, channels and the right to read
// them, session), the connection limits (admit), and open, which starts a
// connection on its wire. A transport is an adapter on top: it parses its
// request, opens its wire (internal/wire), and implements adapter, four
// methods and a close:
//
//   - messages encodes a run of a subscription's messages for its wire
//     (shared between connections through hub.Frames and a hub.Encoding
//     of its own, registered with hub.NewEncoding);
//   - direct encodes a message to this client alone;
//   - heartbeat keeps an idle connection alive, and may find its peer gone;
//   - end finishes the connection, telling the client why in its terms;
//   - CloseWire is told the connection is over and closes the wire.
//
// Adding a transport is a file with its adapter, its handler and its
// encoding (a package variable, if it shares frames), and one line in New:
// its route (Server.route), which registers its kind of connection, so the
// cluster's load, /api/cluster and the metrics count it under its name,
// and hands the kind to the function that makes its handler. The node
// mounts every route the Server lists (Server.Routes); nothing outside
// this package names a transport. poll.go is the example: a connection
// that outlives its requests, whose wire is the next answer.
//
// Connections cost little while idle: SSE and WebSocket connections are
// hijacked from net/http, so the request's buffers and handler goroutine
// are freed. Frames are written from the goroutine that delivers them
// while the client keeps up, and by the socket engine's epoll loops once
// its socket backs up (internal/wire), so a connection holds no writer
// goroutine of its own; and it holds no reader either: its socket waits in
// the watcher's epoll set until its client sends something, which a
// goroutine started then reads and handles (a WebSocket's frames, under
// its readMu, one reader at a time) before it returns.
package transport
