// Package front serves the first request of a connection to a route that
// takes its connection over (an event stream, a WebSocket) itself, and
// hands every other connection to net/http.
//
// net/http gives each connection a 4 KiB reader and a 4 KiB writer from
// its pools and takes them back when the connection closes; a hijacked
// connection never closes in its hands, so both become garbage: 8 KiB of
// a handshake's ~14. Here the first request is read through a reader from
// the front's own pool, which the front takes back as soon as its handler
// returns, and the handler (the same one net/http would call) writes
// through the front's small ResponseWriter.
//
// The front reads a connection's first bytes to decide. A request is
// served here when it is a GET of one of the front's paths in HTTP/1.1
// and its whole header arrives within one reader's worth of bytes;
// anything else (another route or method, HTTP/1.0 or 2, a larger header)
// goes to net/http with the bytes already read, and is served exactly as
// if the front were not there, keep-alive and all. A request served here
// that its handler answers rather than takes over (an error: 401, 403,
// 429, 503) is answered with Connection: close.
//
// What net/http does for a request the front keeps too: the server's
// ReadHeaderTimeout (or ReadTimeout), a 400 for a malformed header or a
// missing Host, a handler's panic logged to the server's ErrorLog and its
// connection closed, a request context carrying http.ServerContextKey
// that ends when the handler returns.
package front
