package auth

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Stats are the refusals an Auth made.
type Stats struct {
	// Failed counts requests, and WebSocket auth frames, refused for a
	// missing, invalid or expired credential (401).
	Failed uint64
	// Forbidden counts requests, subscribes and publishes a valid
	// credential does not allow (403, and WebSocket forbidden frames).
	Forbidden uint64
	// HookAdmitted, HookRefused and HookFailed count calls of the hooks
	// the backend answered 200, answered 401 or 403, and that failed (a
	// timeout, an error, another status: each refused its request).
	HookAdmitted, HookRefused, HookFailed uint64
}

type counters struct{ failed, forbidden atomic.Uint64 }

// Stats returns the refusals made so far.
func (a *Auth) Stats() Stats {
	st := Stats{Failed: a.counts.failed.Load(), Forbidden: a.counts.forbidden.Load()}
	if h := a.hooks; h != nil {
		st.HookAdmitted, st.HookRefused, st.HookFailed = h.stats.admitted.Load(), h.stats.refused.Load(), h.stats.failed.Load()
	}
	return st
}

// Require returns the principal of r, or answers 401 (503 when tickets
// cannot be read) with a JSON error and reports false. Its log line names
// the path and a redacted query: a token or ticket never reaches the logs.
func (a *Auth) Require(w http.ResponseWriter, r *http.Request) (*Principal, bool) {
	p, err := a.Authenticate(r.Context(), r)
	if err == nil {
		return p, true
	}
	status, code := Code(err)
	if status == http.StatusForbidden {
		a.Forbid(w, err)
		return nil, false
	}
	if errors.Is(err, ErrHookFailed) {
		a.logHook("connect", err)
	}
	a.counts.failed.Add(1)
	a.cfg.Logger.Debug("refused a request: not authenticated", "path", r.URL.Path,
		"query", RedactQuery(r.URL.RawQuery), "code", code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pushcluster"`)
	}
	protocol.WriteError(w, status, code, err)
	return nil, false
}

// Forbid answers 403: the credential is valid but does not allow this.
func (a *Auth) Forbid(w http.ResponseWriter, err error) {
	a.Forbidden()
	protocol.WriteError(w, http.StatusForbidden, protocol.CodeForbidden, err)
}

// Forbidden counts a refusal answered otherwise than by Forbid (a
// WebSocket error frame).
func (a *Auth) Forbidden() { a.counts.forbidden.Add(1) }

// Failed counts a credential refused otherwise than by Require (a
// WebSocket auth frame).
func (a *Auth) Failed() { a.counts.failed.Add(1) }

// Code maps an authentication failure to its HTTP status and error code.
func Code(err error) (status int, code string) {
	switch {
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrHookFailed):
		return http.StatusServiceUnavailable, protocol.CodeUnavailable
	case errors.Is(err, ErrHookForbade):
		return http.StatusForbidden, protocol.CodeForbidden
	case errors.Is(err, ErrHookRefused):
		return http.StatusUnauthorized, protocol.CodeUnauthorized
	case errors.Is(err, ErrTokenExpired):
		return http.StatusUnauthorized, protocol.CodeTokenExpired
	case errors.Is(err, ErrInvalidTicket):
		return http.StatusUnauthorized, protocol.CodeInvalidTicket
	case errors.Is(err, ErrNoCredentials):
		return http.StatusUnauthorized, protocol.CodeUnauthorized
	}
	return http.StatusUnauthorized, protocol.CodeInvalidToken
}

// ErrCannotRead says a credential does not allow reading channel.
func ErrCannotRead(channel string) error {
	return fmt.Errorf("the token does not allow reading channel %q", channel)
}

// ErrCannotPublish says a credential does not allow publishing to channel.
func ErrCannotPublish(channel string) error {
	return fmt.Errorf("the token does not allow publishing to channel %q", channel)
}
