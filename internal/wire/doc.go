// Package wire owns a connection's bytes: the bounded outbox of frames
// queued by reference, non-blocking vectored writes straight to a
// hijacked socket, the epoll loops that write sockets once they back up
// (Poller) and that tell idle connections their client sent something
// (Watcher), the event-stream and WebSocket wire writers, the WebSocket
// handshake and client-frame reader, and what the kernel tells of a
// peer's liveness.
//
// Connections cost little while idle: an outbox holds no goroutine and no
// buffer until its socket backs up, and a connection holds no reader
// goroutine or read buffer until its client sends something. Frames are written from the goroutine
// that delivers them while the client keeps up, and by one epoll loop per
// CPU once its socket is full, so a backed-up connection holds no writer
// goroutine of its own either.
//
// The fast path is Linux's: epoll, writev and TCP_INFO live in _linux.go
// files. Elsewhere (macOS, Windows) every backed-up connection gets a
// writer goroutine, every connection a goroutine waiting for its client,
// writes go through the net.Conn, and peers are judged by their pongs
// alone: the same behaviour, at more memory per connection.
package wire
