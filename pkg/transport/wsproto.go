package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Client frame types.
const (
	frameSubscribe   = "subscribe"
	frameUnsubscribe = "unsubscribe"
	framePublish     = "publish"
	framePing        = "ping"
	frameAuth        = "auth"
)

// maxRefLen bounds the ref a client attaches to a frame to correlate replies.
const maxRefLen = 64

// clientFrame is any frame a WebSocket client sends.
type clientFrame struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Since   string `json:"since"`
	Event   string `json:"event"`
	Data    string `json:"data"`
	To      string `json:"to"`
	// Client, instead of Channel, publishes to that one client wherever
	// it is connected.
	Client string `json:"client"`
	// ExceptSelf publishes to everyone but the sender.
	ExceptSelf bool `json:"exceptSelf"`
	// Token renews the connection's token (an auth frame).
	Token string `json:"token"`
	// Ref is echoed in the reply: any JSON value up to maxRefLen bytes.
	Ref json.RawMessage `json:"ref"`
}

// frameError is a rejected frame: a code and why.
type frameError struct {
	code string
	err  error
}

func (e *frameError) Error() string { return e.err.Error() }

// decodeClientFrame parses and checks the shape of one client frame. The
// ref is returned even when the rest is rejected, so errors can echo it.
func decodeClientFrame(b []byte) (clientFrame, *frameError) {
	var f clientFrame
	if !utf8.Valid(b) {
		// encoding/json would pass invalid bytes through into the echoed
		// ref, and a text frame must be UTF-8 (RFC 6455).
		return f, &frameError{codeBadJSON, errors.New("frame is not UTF-8")}
	}
	if escapesLoneSurrogate(b) {
		// encoding/json would store U+FFFD in place of published data.
		return f, &frameError{codeBadJSON, errLoneSurrogate}
	}
	var given struct {
		Client *string `json:"client"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		f.Ref = nil
		return f, &frameError{codeBadJSON, fmt.Errorf("malformed JSON: %w", err)}
	}
	if len(f.Ref) > maxRefLen {
		f.Ref = nil
		return f, &frameError{codeBadJSON, fmt.Errorf("ref longer than %d bytes", maxRefLen)}
	}
	if bytes.Equal(f.Ref, []byte("null")) {
		f.Ref = nil
	}
	switch f.Type {
	case framePublish:
		// The second decode only for frames that may name a client at all.
		if f.Client == "" && bytes.Contains(b, []byte(`"client"`)) && json.Unmarshal(b, &given) == nil && given.Client != nil {
			return f, &frameError{codeInvalidClient, errEmptyClient}
		}
		if f.Channel == "" && f.Client == "" {
			return f, &frameError{codeInvalidChannel, errors.New("channel or client is required")}
		}
		if f.Channel != "" && f.Client != "" {
			return f, &frameError{codeInvalidClient, errors.New("give channel or client, not both")}
		}
	case frameSubscribe, frameUnsubscribe:
		if f.Channel == "" {
			return f, &frameError{codeInvalidChannel, errors.New("channel is required")}
		}
	case framePing:
	case frameAuth:
		if f.Token == "" {
			return f, &frameError{codeInvalidToken, errors.New("token is required")}
		}
	case "":
		return f, &frameError{codeUnknownType, errors.New("type is required")}
	default:
		return f, &frameError{codeUnknownType, fmt.Errorf("unknown type %q", f.Type)}
	}
	return f, nil
}

// serverFrame is any frame the server sends.
type serverFrame struct {
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
	// Expires is when the token an authed frame accepted expires.
	Expires string `json:"expires,omitempty"`
}

func (f *serverFrame) encode() []byte {
	b, _ := json.Marshal(f)
	return b
}

// frame is f as a WebSocket text frame, ready for the wire.
func (f *serverFrame) frame() []byte { return wsText(f.encode()) }
