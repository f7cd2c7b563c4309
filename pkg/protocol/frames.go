package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// WebSocket frame types, client to server.
const (
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypePublish     = "publish"
	TypePing        = "ping"
	TypeAuth        = "auth"
)

// WebSocket frame types, server to client. Long polling answers with the
// same frames.
const (
	TypeWelcome      = "welcome"
	TypeSubscribed   = "subscribed"
	TypeUnsubscribed = "unsubscribed"
	TypeMessage      = "message"
	TypeGap          = "gap"
	TypeAck          = "ack"
	TypeDirect       = "direct"
	TypePong         = "pong"
	TypeError        = "error"
	TypeAuthed       = "authed"
)

// MaxRefLen bounds the ref a client attaches to a frame to correlate replies.
const MaxRefLen = 64

// ClientFrame is any frame a WebSocket client sends.
type ClientFrame struct {
	Type    string `json:"type"`
	Channel string `json:"channel,omitempty"`
	Since   string `json:"since,omitempty"`
	Event   string `json:"event,omitempty"`
	Data    string `json:"data,omitempty"`
	To      string `json:"to,omitempty"`
	// Client, instead of Channel, publishes to that one client wherever
	// it is connected.
	Client string `json:"client,omitempty"`
	// ExceptSelf publishes to everyone but the sender.
	ExceptSelf bool `json:"exceptSelf,omitempty"`
	// IdempotencyKey makes a publish one that a retry cannot duplicate
	// (see PublishRequest).
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Token renews the connection's token (an auth frame).
	Token string `json:"token,omitempty"`
	// Ref is echoed in the reply: any JSON value up to MaxRefLen bytes.
	Ref json.RawMessage `json:"ref,omitempty"`
}

// FrameError is a rejected client frame: the code of the error frame that
// answers it, and why.
type FrameError struct {
	Code string
	Err  error
}

func (e *FrameError) Error() string { return e.Err.Error() }

func (e *FrameError) Unwrap() error { return e.Err }

// DecodeClientFrame parses and checks the shape of one client frame. The
// ref is returned even when the rest is rejected, so errors can echo it.
func DecodeClientFrame(b []byte) (ClientFrame, *FrameError) {
	var f ClientFrame
	if !utf8.Valid(b) {
		// encoding/json would pass invalid bytes through into the echoed
		// ref, and a text frame must be UTF-8 (RFC 6455).
		return f, &FrameError{CodeBadJSON, errors.New("frame is not UTF-8")}
	}
	if escapesLoneSurrogate(b) {
		// encoding/json would store U+FFFD in place of published data.
		return f, &FrameError{CodeBadJSON, ErrLoneSurrogate}
	}
	var given struct {
		Client *string `json:"client"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		f.Ref = nil
		return f, &FrameError{CodeBadJSON, fmt.Errorf("malformed JSON: %w", err)}
	}
	if len(f.Ref) > MaxRefLen {
		f.Ref = nil
		return f, &FrameError{CodeBadJSON, fmt.Errorf("ref longer than %d bytes", MaxRefLen)}
	}
	if bytes.Equal(f.Ref, []byte("null")) {
		f.Ref = nil
	}
	switch f.Type {
	case TypePublish:
		// The second decode only for frames that may name a client at all.
		if f.Client == "" && bytes.Contains(b, []byte(`"client"`)) && json.Unmarshal(b, &given) == nil && given.Client != nil {
			return f, &FrameError{CodeInvalidClient, ErrEmptyClient}
		}
		if f.Channel == "" && f.Client == "" {
			return f, &FrameError{CodeInvalidChannel, errors.New("channel or client is required")}
		}
		if f.Channel != "" && f.Client != "" {
			return f, &FrameError{CodeInvalidClient, errors.New("give channel or client, not both")}
		}
	case TypeSubscribe, TypeUnsubscribe:
		if f.Channel == "" {
			return f, &FrameError{CodeInvalidChannel, errors.New("channel is required")}
		}
	case TypePing:
	case TypeAuth:
		if f.Token == "" {
			return f, &FrameError{CodeInvalidToken, errors.New("token is required")}
		}
	case "":
		return f, &FrameError{CodeUnknownType, errors.New("type is required")}
	default:
		return f, &FrameError{CodeUnknownType, fmt.Errorf("unknown type %q", f.Type)}
	}
	return f, nil
}

// ServerFrame is any frame the server sends over WebSocket, and every
// element of a long poll's messages.
type ServerFrame struct {
	Type     string          `json:"type"`
	Ref      json.RawMessage `json:"ref,omitempty"`
	Client   string          `json:"client,omitempty"`
	Session  string          `json:"session,omitempty"`
	Node     string          `json:"node,omitempty"`
	Channel  string          `json:"channel,omitempty"`
	ID       string          `json:"id,omitempty"`
	Event    string          `json:"event,omitempty"`
	Data     *string         `json:"data,omitempty"`
	Position string          `json:"position,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	From     string          `json:"from,omitempty"`
	Resume   string          `json:"resume,omitempty"`
	Code     string          `json:"code,omitempty"`
	Message  string          `json:"message,omitempty"`
	// Delivered answers a publish to one client.
	Delivered *bool `json:"delivered,omitempty"`
	// Duplicate answers a publish whose idempotency key was published
	// before: nothing was stored, and ID is the first publish's.
	Duplicate bool `json:"duplicate,omitempty"`
	// Expires is when the token an authed frame accepted expires.
	Expires string `json:"expires,omitempty"`
}

// Encode returns f as JSON.
func (f *ServerFrame) Encode() []byte {
	b, _ := json.Marshal(f)
	return b
}
