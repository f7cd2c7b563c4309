package transport

import (
	"encoding/json"
	"net/http"
)

// Error codes clients can match, on HTTP error bodies and WebSocket error frames.
const (
	codeInvalidChannel = "invalid_channel"
	codeInvalidEvent   = "invalid_event"
	codeInvalidID      = "invalid_id"
	codeInvalidQuery   = "invalid_query"
	codeInvalidClient  = "invalid_client"
	codeInvalidData    = "invalid_data"
	codeBadJSON        = "bad_json"
	codeMediaType      = "unsupported_media_type"
	codeTooLarge       = "too_large"
	codeUnknownType    = "unknown_type"
	codeBinary         = "binary_unsupported"
	codeAlreadySub     = "already_subscribed"
	codeNotSub         = "not_subscribed"
	codeTooMany        = "too_many_channels"
	codeUnavailable    = "unavailable"
	codeTooManyConns   = "too_many_connections"
	codeUnreadable     = "channel_unreadable"
	codeInvalidSession = "invalid_session"
	codeDisconnected   = "disconnected"
	codeNotFound       = "client_not_found"
	codePartial        = "cluster_partial"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code string, err error) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: err.Error()}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
