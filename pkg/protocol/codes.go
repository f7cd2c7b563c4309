package protocol

import (
	"encoding/json"
	"net/http"
)

// Error codes: the code of every HTTP error body and WebSocket error frame,
// for clients to match (docs/PROTOCOL.md, Error codes).
const (
	CodeInvalidChannel = "invalid_channel"
	CodeInvalidEvent   = "invalid_event"
	CodeInvalidID      = "invalid_id"
	CodeInvalidQuery   = "invalid_query"
	CodeInvalidLimit   = "invalid_limit"
	CodeInvalidWait    = "invalid_wait"
	CodeInvalidKey     = "invalid_idempotency_key"
	CodeInvalidClient  = "invalid_client"
	CodeInvalidData    = "invalid_data"
	CodeInvalidSession = "invalid_session"
	CodeBadJSON        = "bad_json"
	CodeMediaType      = "unsupported_media_type"
	CodeTooLarge       = "too_large"
	CodeUnknownType    = "unknown_type"
	CodeBinary         = "binary_unsupported"
	CodeAlreadySub     = "already_subscribed"
	CodeNotSub         = "not_subscribed"
	CodeTooMany        = "too_many_channels"
	CodeUnavailable    = "unavailable"
	CodeTooManyConns   = "too_many_connections"
	CodeTooManyFromIP  = "too_many_connections_per_ip"
	CodeUnreadable     = "channel_unreadable"
	CodeDisconnected   = "disconnected"
	CodeNotFound       = "client_not_found"
	CodePartial        = "cluster_partial"
	CodeUnauthorized   = "unauthorized"
	CodeInvalidToken   = "invalid_token"
	CodeTokenExpired   = "token_expired"
	CodeInvalidTicket  = "invalid_ticket"
	CodeForbidden      = "forbidden"
	CodeRateLimited    = "rate_limited"
)

// WebSocket close codes the node uses, RFC 6455's and its own.
const (
	// CloseNormal: the connection ended on purpose, with nothing to do.
	CloseNormal = 1000
	// CloseServiceRestart: the node is draining or shedding load, or sends
	// a new connection on; reconnect, to any node, and resubscribe with since.
	CloseServiceRestart = 1012
	// CloseTokenExpired: the token expired before an auth frame renewed it;
	// reconnect with a fresh token or ticket.
	CloseTokenExpired = 4001
	// CloseSlowConsumer: the client did not read fast enough; reconnect and
	// resubscribe with since.
	CloseSlowConsumer = 4008
	// CloseDisconnected: POST /api/disconnect closed the connection; do not
	// reconnect on your own.
	CloseDisconnected = 4009
)

// ErrorBody is every HTTP error answer: {"error":{"code","message"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is an error's code and what went wrong; push.error events
// carry it as their data.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError answers an HTTP request with status and an ErrorBody.
func WriteError(w http.ResponseWriter, status int, code string, err error) {
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: err.Error()}})
}

// WriteJSON answers an HTTP request with status and v as JSON, never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
