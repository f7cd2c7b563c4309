package wire

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// AcceptWS answers r's WebSocket handshake (RFC 6455 section 4.2) and
// hijacks its connection: the 101 answer is written straight to the
// socket, with whatever headers a middleware set on w (CORS). A request
// that is no version-13 handshake is answered 426 or 400, and one from an
// Origin that is neither the request's own host nor matched by one of
// origins (path.Match patterns, case-insensitive, of a host, or of
// scheme://host when the pattern has a scheme), 403; anyOrigin skips that
// check. early is what the client sent after its handshake, already read.
// timeout bounds each wait of a blocking write.
func AcceptWS(w http.ResponseWriter, r *http.Request, origins []string, anyOrigin bool, timeout time.Duration) (ws *WS, early []byte, err error) {
	key, status, err := checkWSHandshake(w, r)
	if err == nil && !anyOrigin {
		if err = checkOrigin(r, origins); err != nil {
			status = http.StatusForbidden
		}
	}
	if err != nil {
		http.Error(w, err.Error(), status)
		return nil, nil, err
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "the connection cannot be taken over: "+err.Error(), http.StatusInternalServerError)
		return nil, nil, err
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		early = bytes.Clone(b)
	}
	ws = &WS{Conn: conn, socket: newSocket(conn, timeout)}
	ws.stop = &ws.stopped
	conn.SetDeadline(time.Time{}) // the server's, which a connection outlives
	answer := "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + acceptKey(key) + "\r\n" +
		extraHeader(w.Header()) + "\r\n"
	if err := ws.WriteFrames([]Queued{One([]byte(answer))}); err != nil {
		conn.Close()
		return nil, nil, err
	}
	ws.wrote.Store(false)
	return ws, early, nil
}

// checkWSHandshake returns the client's key, or why r is no handshake and
// the status to answer it with.
func checkWSHandshake(w http.ResponseWriter, r *http.Request) (key string, status int, err error) {
	if !r.ProtoAtLeast(1, 1) {
		return "", http.StatusUpgradeRequired, fmt.Errorf("a WebSocket handshake needs HTTP/1.1 at least, not %s", r.Proto)
	}
	if !httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade") ||
		!httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		return "", http.StatusUpgradeRequired, errors.New("not a WebSocket handshake: Connection: Upgrade and Upgrade: websocket are required")
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return "", http.StatusBadRequest, fmt.Errorf("unsupported WebSocket version %q: only 13 is", v)
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return "", http.StatusBadRequest, errors.New("a WebSocket handshake carries one Sec-WebSocket-Key")
	}
	key = strings.TrimSpace(keys[0])
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", http.StatusBadRequest, fmt.Errorf("invalid Sec-WebSocket-Key %q: 16 bytes in base64 are required", key)
	}
	return key, 0, nil
}

// checkOrigin admits a request with no Origin (not from a browser), one
// from its own host, and one from an origin a pattern matches.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("malformed Origin %q", origin)
	}
	if strings.EqualFold(r.Host, u.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not allowed to open a WebSocket on %q", origin, r.Host)
}

// acceptKey is the Sec-WebSocket-Accept answering key (RFC 6455 section
// 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}
