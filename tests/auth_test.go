//go:build unix

package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/pkg/node"
)

// With authentication on, nothing gets in without a valid credential: 401
// with a JSON error on SSE, the WebSocket handshake and every API; the
// admin APIs need an API key (403 for a token); the node says it is not open.
func TestAuthRequired(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", secured)
	var openLog logBuffer
	open := c.start("open", func(cfg *node.Config) { cfg.Logger = slogTo(&openLog) })
	if out := openLog.String(); !strings.Contains(out, "level=WARN msg=\"authentication is OFF") {
		t.Errorf("an open node does not warn that it is open:\n%s", out)
	}
	alice := token(t, grant{sub: "alice", channels: []string{"*"}, publish: []string{"*"}})
	forged := alice[:strings.LastIndex(alice, ".")+1] + "AAAA" + alice[strings.LastIndex(alice, ".")+2:]
	expired := token(t, grant{sub: "alice", channels: []string{"*"}, ttl: -time.Minute})

	for _, cred := range []struct {
		name, code string
		h          []string
	}{
		{"no credential", "unauthorized", nil},
		{"forged token", "invalid_token", bearer(forged)},
		{"expired token", "token_expired", bearer(expired)},
		{"wrong API key", "invalid_token", bearer("not-the-api-key-0123456789")},
	} {
		for _, r := range []struct{ method, path string }{
			{"GET", "/sse?channel=a"}, {"GET", "/api/history?channel=a"}, {"POST", "/api/publish"},
			{"GET", "/api/presence?channel=a"}, {"GET", "/api/clients"}, {"POST", "/api/disconnect"},
			{"GET", "/api/cluster"}, {"POST", "/api/session"}, {"POST", "/api/ticket"},
		} {
			var body any
			if r.method == "POST" {
				body = map[string]string{"channel": "a", "data": "x", "client": "c"}
			}
			status, b, h := call(t, nil, r.method, a.base+r.path, body, cred.h...)
			code := cred.code
			if cred.name == "wrong API key" {
				code = "invalid_token" // indistinguishable from a malformed token on purpose
			}
			checkError(t, cred.name+" "+r.path, status, b, 401, code)
			if h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: no WWW-Authenticate", cred.name, r.path)
			}
		}
		ws, status := dialWSOpts(t, a, "", &websocket.DialOptions{HTTPHeader: headerOf(cred.h)})
		if ws != nil || status != 401 {
			t.Errorf("%s: WebSocket handshake %d", cred.name, status)
		}
	}
	// A valid token is not an API key.
	for _, path := range []string{"/api/clients", "/api/cluster"} {
		status, b, _ := call(t, nil, "GET", a.base+path, nil, bearer(alice)...)
		checkError(t, "token on "+path, status, b, 403, "forbidden")
	}
	status, b, _ := call(t, nil, "POST", a.base+"/api/disconnect", map[string]string{"client": "x"}, bearer(alice)...)
	checkError(t, "token on /api/disconnect", status, b, 403, "forbidden")
	var cl struct{ Auth string }
	if status, b, _ := call(t, nil, "GET", a.base+"/api/cluster", nil, bearer(testAPIKey)...); status != 200 || jsonUnmarshal(b, &cl) != nil || cl.Auth != "required" {
		t.Errorf("/api/cluster with the API key: %d %s", status, b)
	}
	var ready struct{ Auth string }
	getJSON(t, a.base+"/readyz", &ready)
	if ready.Auth != "required" {
		t.Errorf("/readyz auth %q", ready.Auth)
	}
	getJSON(t, open.base+"/readyz", &ready)
	if ready.Auth != "open" {
		t.Errorf("open node: /readyz auth %q", ready.Auth)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/", "/status"} {
		if status, _, _ := call(t, nil, "GET", a.base+path, nil); status != 200 {
			t.Errorf("%s: %d without credentials", path, status)
		}
	}
}

func headerOf(kv []string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// publishAs publishes through the API with a credential and returns the entry ID.
func publishAs(t *testing.T, n *testNode, cred string, body any) string {
	t.Helper()
	status, b, _ := call(t, nil, "POST", n.base+"/api/publish", body, bearer(cred)...)
	var r struct{ ID string }
	if status != 200 || jsonUnmarshal(b, &r) != nil || r.ID == "" {
		t.Fatalf("publish: %d %s", status, b)
	}
	return r.ID
}

// A token's channels and publish claims are enforced on SSE, WebSocket,
// resume, history, presence and publish, and nothing of a channel outside
// them is ever delivered.
func TestChannelClaims(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", secured, func(cfg *node.Config) { cfg.Transport.PresenceChannels = []string{"news"} })
	tok := token(t, grant{sub: "alice", channels: []string{"news", "room.*"}, publish: []string{"room.*"}})
	secretID := publishAs(t, a, testAPIKey, map[string]string{"channel": "secret", "data": "s0"})

	// SSE: forbidden channels are refused with 403 whatever else is asked,
	// a resume included; allowed ones stream.
	for _, q := range []string{"channel=secret", "channel=news&channel=secret", "channel=room", "channel=secret.presence"} {
		for _, h := range [][]string{nil, {"Last-Event-ID", "0-0"}} {
			status, b, _ := call(t, nil, "GET", a.base+"/sse?"+q+"&token="+tok, nil, h...)
			checkError(t, "SSE "+q, status, b, 403, "forbidden")
		}
	}
	s := openSSE(t, a.base+"/sse?channel=news&channel=room.1&token="+tok, "")
	s.waitWelcome()
	presence := openSSE(t, a.base+"/sse?channel=news.presence&token="+tok, "")
	presence.waitWelcome()

	// WebSocket: subscribe (with and without since) and publish outside
	// the claims get forbidden error frames; the connection goes on.
	w := dialWS(t, a, "?channel=secret&token="+tok)
	w.send(map[string]any{"type": "subscribe", "channel": "secret", "since": "0-0", "ref": 1})
	w.send(map[string]any{"type": "subscribe", "channel": "news", "ref": 2})
	w.send(map[string]any{"type": "publish", "channel": "news", "data": "no", "ref": 3})
	w.send(map[string]any{"type": "publish", "client": "someone", "data": "no", "ref": 4})
	w.send(map[string]any{"type": "publish", "channel": "room.1", "data": "yes", "ref": 5})
	errs := w.waitType("error", 4)
	for _, f := range errs {
		if f["code"] != "forbidden" {
			t.Errorf("error frame %v", f)
		}
	}
	w.waitType("ack", 1)
	w.waitType("subscribed", 1)

	// HTTP publish and history follow the same claims.
	status, b, _ := call(t, nil, "POST", a.base+"/api/publish", map[string]string{"channel": "news", "data": "no"}, bearer(tok)...)
	checkError(t, "publish to news with a token", status, b, 403, "forbidden")
	publishAs(t, a, tok, map[string]string{"channel": "room.1", "data": "by alice"})
	status, b, _ = call(t, nil, "GET", a.base+"/api/history?channel=secret&since=0-0", nil, bearer(tok)...)
	checkError(t, "history of secret", status, b, 403, "forbidden")
	status, b, _ = call(t, nil, "GET", a.base+"/api/presence?channel=secret", nil, bearer(tok)...)
	checkError(t, "presence of secret", status, b, 403, "forbidden")
	if status, b, _ := call(t, nil, "GET", a.base+"/api/history?channel=room.1", nil, bearer(tok)...); status != 200 || !strings.Contains(string(b), "by alice") {
		t.Errorf("history of room.1: %d %s", status, b)
	}
	if status, _, _ := call(t, nil, "GET", a.base+"/api/presence?channel=news", nil, bearer(tok)...); status != 200 {
		t.Errorf("presence of news: %d", status)
	}

	publishAs(t, a, testAPIKey, map[string]string{"channel": "secret", "data": "s1"})
	publishAs(t, a, testAPIKey, map[string]string{"channel": "news", "data": "n1"})
	got := s.waitData(2)
	w.waitData(1)
	presence.waitData(1) // the WebSocket's join of news
	for _, d := range append(append(got, w.data()...), presence.data()...) {
		if strings.HasPrefix(d, "s") {
			t.Errorf("a message of secret was delivered: %q (entry %s)", d, secretID)
		}
	}
	metricsHave(t, http.DefaultClient, a, "pushcluster_forbidden_total")
}

// A token that expires while connected ends the connection at expiry:
// SSE with push.error token_expired, WebSocket with close code 4001.
func TestTokenExpiresMidConnection(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", secured)
	short := token(t, grant{sub: "alice", channels: []string{"news"}, ttl: 2 * time.Second})
	s := openSSE(t, a.base+"/sse?channel=news&token="+short, "")
	w := dialWS(t, a, "?channel=news&token="+short)
	s.waitWelcome()
	w.waitType("subscribed", 1)
	start := time.Now()
	errs := s.waitNamed("push.error", 1)
	if !strings.Contains(errs[0].Data, `"token_expired"`) {
		t.Errorf("SSE push.error %q", errs[0].Data)
	}
	checkFor(t, defaultWait, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err == nil {
			return fmt.Errorf("the SSE stream is still open")
		}
		return nil
	})
	if code := w.closeStatus(); code != 4001 {
		t.Errorf("WebSocket closed with %d, want 4001", code)
	}
	if err := w.hasError("token_expired"); err != nil {
		t.Error(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("closed %v after the welcome, want at expiry (within 2 s)", d)
	}
	metricsHave(t, http.DefaultClient, a, "pushcluster_token_expired_disconnects_total 2")
}

// A WebSocket client that sends a fresh token before expiry stays
// connected; a token of another user is refused.
func TestTokenRefreshKeepsWebSocket(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", secured)
	w := dialWS(t, a, "?channel=news&token="+token(t, grant{sub: "alice", channels: []string{"news", "room"}, ttl: 2 * time.Second}))
	w.waitType("subscribed", 1)
	w.send(map[string]any{"type": "subscribe", "channel": "room"})
	w.waitType("subscribed", 2)
	w.send(map[string]any{"type": "auth", "token": token(t, grant{sub: "bob", channels: []string{"news"}}), "ref": 1})
	w.waitType("error", 1)
	if err := w.hasError("forbidden"); err != nil {
		t.Error("another user's token:", err)
	}
	w.send(map[string]any{"type": "auth", "token": "garbage", "ref": 2})
	w.waitType("error", 2)
	w.send(map[string]any{"type": "auth", "token": token(t, grant{sub: "alice", channels: []string{"news"}}), "ref": 3})
	authed := w.waitType("authed", 1)
	if authed[0]["expires"] == nil {
		t.Errorf("authed %v", authed[0])
	}
	un := w.waitType("unsubscribed", 1) // room is no longer allowed
	if un[0]["channel"] != "room" || un[0]["reason"] != "forbidden" {
		t.Errorf("unsubscribed %v", un[0])
	}
	time.Sleep(3 * time.Second) // past the first token's expiry: what is tested is that nothing happens
	w.send(map[string]any{"type": "ping", "ref": 4})
	w.waitType("pong", 1)
	publishAs(t, a, testAPIKey, map[string]string{"channel": "news", "data": "still here"})
	equalStrings(t, "after the refresh", w.waitData(1), []string{"still here"})
}

// A ticket from POST /api/ticket opens a stream on any node, once, and
// not after its lifetime; it carries the token's claims.
func TestTickets(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ttl := func(cfg *node.Config) { cfg.Auth.TicketTTL = 500 * time.Millisecond }
	a, b := c.start("a", secured, ttl), c.start("b", secured, ttl)
	tok := token(t, grant{sub: "alice", channels: []string{"news"}})
	ticket := func() string {
		status, body, _ := call(t, nil, "POST", a.base+"/api/ticket", nil, bearer(tok)...)
		var r struct {
			Ticket    string
			ExpiresIn float64
		}
		if status != 200 || jsonUnmarshal(body, &r) != nil || r.Ticket == "" || r.ExpiresIn <= 0 || r.ExpiresIn > 0.5 {
			t.Fatalf("POST /api/ticket: %d %s", status, body)
		}
		return r.Ticket
	}
	t1 := ticket()
	s := openSSE(t, b.base+"/sse?channel=news&ticket="+t1, "") // issued on a, used on b
	s.waitWelcome()
	for _, n := range []*testNode{a, b} {
		status, body, _ := call(t, nil, "GET", n.base+"/sse?channel=news&ticket="+t1, nil)
		checkError(t, "a ticket used twice on "+n.Name(), status, body, 401, "invalid_ticket")
	}
	_, st := dialWSOpts(t, b, "?ticket="+t1, nil)
	if st != 401 {
		t.Errorf("a used ticket on the WebSocket: %d", st)
	}
	t2 := ticket()
	status, body, _ := call(t, nil, "GET", a.base+"/sse?channel=other&ticket="+t2, nil)
	checkError(t, "a ticket outside its claims", status, body, 403, "forbidden")
	late := ticket()
	time.Sleep(700 * time.Millisecond) // past the ticket's lifetime: what is tested is its expiry
	status, body, _ = call(t, nil, "GET", b.base+"/sse?channel=news&ticket="+late, nil)
	checkError(t, "a late ticket", status, body, 401, "invalid_ticket")
	status, body, _ = call(t, nil, "POST", a.base+"/api/ticket", nil, bearer(testAPIKey)...)
	checkError(t, "a ticket for an API key", status, body, 400, "invalid_token")
	w, _ := dialWSOpts(t, b, "?channel=news&ticket="+ticket(), nil)
	w.waitType("subscribed", 1)
}

// A user channel <name>#<user> is readable by that user alone, on every
// tab and device, on any node, and resumes like any channel.
func TestUserChannels(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("a", secured), c.start("b", secured)
	alice := token(t, grant{sub: "alice", channels: []string{"inbox#*"}})
	bob := token(t, grant{sub: "bob", channels: []string{"*"}})
	tab1 := openSSE(t, a.base+"/sse?channel=inbox%23alice&token="+alice, "")
	tab2 := dialWS(t, b, "?channel=inbox%23alice&token="+alice)
	tab1.waitWelcome()
	tab2.waitType("subscribed", 1)
	for _, n := range []*testNode{a, b} {
		status, body, _ := call(t, nil, "GET", n.base+"/sse?channel=inbox%23alice&token="+bob, nil)
		checkError(t, "bob reading alice's channel", status, body, 403, "forbidden")
		status, body, _ = call(t, nil, "GET", n.base+"/api/history?channel=inbox%23alice", nil, bearer(bob)...)
		checkError(t, "bob reading alice's history", status, body, 403, "forbidden")
	}
	wb := dialWS(t, a, "?token="+bob)
	wb.send(map[string]any{"type": "subscribe", "channel": "inbox#alice"})
	wb.waitType("error", 1)
	if err := wb.hasError("forbidden"); err != nil {
		t.Error(err)
	}
	first := publishAs(t, a, testAPIKey, map[string]string{"channel": "inbox#alice", "data": "for alice 1"})
	publishAs(t, b, testAPIKey, map[string]string{"channel": "inbox#alice", "data": "for alice 2"})
	equalStrings(t, "tab 1", tab1.waitData(2), []string{"for alice 1", "for alice 2"})
	equalStrings(t, "tab 2", tab2.waitData(2), []string{"for alice 1", "for alice 2"})
	resumed := openSSE(t, b.base+"/sse?channel=inbox%23alice&token="+alice, first)
	equalStrings(t, "resumed", resumed.waitData(1), []string{"for alice 2"})
	var h struct{ Entries []struct{ Data string } }
	status, body, _ := call(t, nil, "GET", a.base+"/api/history?channel=inbox%23alice", nil, bearer(alice)...)
	if status != 200 || jsonUnmarshal(body, &h) != nil || len(h.Entries) != 2 {
		t.Errorf("alice's history: %d %s", status, body)
	}
}

// With authentication on, a session is bound to its user: the client ID
// comes from the session and the user together, so another user who holds
// the session token is another client.
func TestSessionBoundToUser(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", secured)
	alice := token(t, grant{sub: "alice", channels: []string{"news"}})
	bob := token(t, grant{sub: "bob", channels: []string{"news"}})
	status, body, _ := call(t, nil, "POST", a.base+"/api/session", nil, bearer(alice)...)
	var sess struct{ Client, Session string }
	if status != 200 || jsonUnmarshal(body, &sess) != nil {
		t.Fatalf("POST /api/session: %d %s", status, body)
	}
	welcomeClient := func(tok string) string {
		s := openSSE(t, a.base+"/sse?channel=news&session="+sess.Session+"&token="+tok, "")
		var w struct{ Client string }
		jsonOf(t, s.waitWelcome().Data, &w)
		return w.Client
	}
	if got := welcomeClient(alice); got != sess.Client {
		t.Errorf("alice with her session is %q, want %q", got, sess.Client)
	}
	if got := welcomeClient(bob); got == sess.Client {
		t.Error("bob took alice's client ID with her session token")
	}
	w := dialWS(t, a, "?session="+sess.Session+"&token="+alice)
	if f := w.waitType("welcome", 1)[0]; f["client"] != sess.Client {
		t.Errorf("alice's WebSocket is %v", f["client"])
	}
}

// Browser rules: the WebSocket handshake accepts the node's own origin and
// the allowed ones only; CORS answers a preflight that asks for
// Last-Event-ID, and its headers reach a hijacked SSE stream.
func TestOrigins(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	plain := c.start("plain")
	allowing := c.start("allowing", func(cfg *node.Config) { cfg.Transport.AllowedOrigins = []string{"https://app.example"} })
	origin := func(o string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {o}}}
	}
	if w, st := dialWSOpts(t, plain, "", origin("https://evil.example")); w != nil || st != 403 {
		t.Errorf("cross-origin WebSocket on a default node: %d", st)
	}
	if w, _ := dialWSOpts(t, plain, "", origin(plain.base)); w == nil {
		t.Error("same-origin WebSocket refused")
	}
	if w, st := dialWSOpts(t, allowing, "", origin("https://evil.example")); w != nil || st != 403 {
		t.Errorf("a WebSocket from an origin not allowed: %d", st)
	}
	if w, _ := dialWSOpts(t, allowing, "", origin("https://app.example")); w == nil {
		t.Error("a WebSocket from an allowed origin refused")
	}

	status, _, h := call(t, nil, "OPTIONS", allowing.base+"/sse?channel=a", nil,
		"Origin", "https://app.example", "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "last-event-id")
	if status/100 != 2 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.EqualFold(h.Get("Access-Control-Allow-Headers"), "last-event-id") || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight: %d %v", status, h)
	}
	status, _, h = call(t, nil, "OPTIONS", allowing.base+"/api/publish", nil,
		"Origin", "https://app.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
	if status/100 != 2 || h.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("preflight of a publish: %d %v", status, h)
	}
	status, _, h = call(t, nil, "OPTIONS", allowing.base+"/sse", nil,
		"Origin", "https://evil.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "last-event-id")
	if h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from an origin not allowed: %d %v", status, h)
	}
	status, _, h = call(t, nil, "GET", allowing.base+"/sse?channel=a", nil, "Origin", "https://app.example")
	if status != 200 || h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("SSE stream (hijacked) CORS headers: %d %v", status, h)
	}
	if status, _, h = call(t, nil, "GET", plain.base+"/sse?channel=a", nil, "Origin", "https://app.example"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a default node sent CORS headers: %v", h)
	}
}

// A token or ticket in the query string never reaches the node's logs,
// even at debug level, whether it is accepted or refused.
func TestCredentialsNotLogged(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var logs logBuffer
	a := c.start("a", secured, func(cfg *node.Config) {
		cfg.Logger = slogTo(&logs)
	})
	good := token(t, grant{sub: "alice", channels: []string{"news"}})
	bad := token(t, grant{sub: "alice", channels: []string{"news"}, ttl: -time.Minute})
	status, body, _ := call(t, nil, "POST", a.base+"/api/ticket", nil, bearer(good)...)
	var tk struct{ Ticket string }
	jsonOf(t, string(body), &tk)
	s := openSSE(t, a.base+"/sse?channel=news&token="+good, "")
	s.waitWelcome()
	openSSE(t, a.base+"/sse?channel=news&ticket="+tk.Ticket, "").waitWelcome()
	for _, q := range []string{"channel=news&token=" + bad, "channel=news&ticket=" + tk.Ticket, "channel=secret&token=" + good, "channel=news&token=" + good + "x"} {
		call(t, nil, "GET", a.base+"/sse?"+q, nil)
		dialWSOpts(t, a, "?"+q, nil)
		dialWSOpts(t, a, "?"+q, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	}
	call(t, nil, "GET", a.base+"/sse?channel=news&token="+url.QueryEscape(good)+"&%zz", nil)
	s.close()
	_ = status
	checkFor(t, defaultWait, func() error {
		if !strings.Contains(logs.String(), "not authenticated") {
			return fmt.Errorf("no refusal logged yet")
		}
		return nil
	})
	out := logs.String()
	for name, secret := range map[string]string{"token": good, "expired token": bad, "ticket": tk.Ticket,
		"token signature": good[strings.LastIndex(good, ".")+1:]} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s is in the logs", name)
		}
	}
}
