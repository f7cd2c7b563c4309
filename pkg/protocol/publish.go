package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	// ErrBodyNotUTF8: a body or frame holds bytes that are not UTF-8.
	ErrBodyNotUTF8 = errors.New("body is not UTF-8")
	// ErrLoneSurrogate: a \\u escape of a lone UTF-16 surrogate, which a
	// JavaScript string can hold and UTF-8 cannot.
	ErrLoneSurrogate = errors.New("a \\u escape of a lone UTF-16 surrogate is not text")
	// ErrEmptyClient: a publish names "client" but leaves it empty, which
	// is a mistake in the caller, not a channel publish without a channel.
	ErrEmptyClient = errors.New("client is empty: give the ID of the client to send to")
)

// PublishRequest is the body of POST /api/publish, and what a WebSocket
// publish frame asks for: a message to a channel (optionally to one of its
// clients, or to all but one), or to one client wherever it is connected.
type PublishRequest struct {
	Channel string `json:"channel,omitempty"`
	Event   string `json:"event,omitempty"`
	Data    string `json:"data"`
	To      string `json:"to,omitempty"`
	Exclude string `json:"exclude,omitempty"`
	// Client, instead of Channel, sends to that one client wherever it is.
	Client string `json:"client,omitempty"`
	// IdempotencyKey, when set, makes the publish one that a retry cannot
	// duplicate: a publish with the same key to the same channel within
	// the node's idempotency window, on any node, stores nothing and is
	// answered with the first one's ID and Duplicate set. HTTP publishers
	// may send it as the Idempotency-Key header instead.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// PublishAnswer is the answer to a publish to a channel.
type PublishAnswer struct {
	ID string `json:"id"`
	// Duplicate says the idempotency key was published before: nothing was
	// stored, and ID is the first publish's.
	Duplicate bool `json:"duplicate,omitempty"`
}

// MaxIdempotencyKeyLen bounds an idempotency key, in bytes.
const MaxIdempotencyKeyLen = 200

// ErrInvalidIdempotencyKey refuses an idempotency key that is too long or
// holds control characters.
var ErrInvalidIdempotencyKey = errors.New("protocol: invalid idempotency key")

// ValidateIdempotencyKey checks an idempotency key: up to
// MaxIdempotencyKeyLen bytes of UTF-8 text without control characters
// (a UUID, a hash, an order number). Empty means none.
func ValidateIdempotencyKey(key string) error {
	if len(key) > MaxIdempotencyKeyLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidIdempotencyKey, MaxIdempotencyKeyLen)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: not UTF-8", ErrInvalidIdempotencyKey)
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: holds control characters", ErrInvalidIdempotencyKey)
		}
	}
	return nil
}

// DirectAnswer is the answer to a publish to one client.
type DirectAnswer struct {
	ID          string   `json:"id"`
	Delivered   bool     `json:"delivered"`
	Connections int      `json:"connections"`
	Nodes       []string `json:"nodes"`
	Partial     bool     `json:"partial"`
	Missing     []string `json:"missing"`
}

// DecodePublish parses the body of POST /api/publish. Data is delivered
// exactly as sent or not at all, so it refuses what encoding/json would
// quietly replace with U+FFFD: bytes that are not UTF-8, and \u escapes of
// lone surrogates (which a JavaScript string can hold, and UTF-8 cannot).
func DecodePublish(body []byte) (PublishRequest, error) {
	var b struct {
		PublishRequest
		Client *string `json:"client"` // shadows the embedded one: given, or not
	}
	if err := DecodeJSON(body, &b); err != nil {
		return PublishRequest{}, err
	}
	if b.Client != nil && *b.Client == "" {
		return PublishRequest{}, ErrEmptyClient
	}
	p := b.PublishRequest
	if b.Client != nil {
		p.Client = *b.Client
	}
	return p, nil
}

// DecodeJSON decodes a request body into v, refusing what cannot decode
// to the very text it spells (see DecodePublish).
func DecodeJSON(body []byte, v any) error {
	if err := checkJSONText(body); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}

// checkJSONText reports why JSON text b cannot decode to the very text it
// spells, if it cannot.
func checkJSONText(b []byte) error {
	if !utf8.Valid(b) {
		return ErrBodyNotUTF8
	}
	if escapesLoneSurrogate(b) {
		return ErrLoneSurrogate
	}
	return nil
}

// escapesLoneSurrogate reports whether b holds a \u escape of a UTF-16
// surrogate that is not half of a pair. Backslashes only occur inside JSON
// strings, and each escape is skipped whole, so "\\u" is not an escape.
func escapesLoneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character; a 'u' takes four hex digits more
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r, ok := hex4(b[i+1:])
		if !ok {
			continue // not JSON: the decoder refuses it
		}
		i += 4
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		case r >= 0xd800 && r <= 0xdbff:
			if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return true
			}
			if low, ok := hex4(b[i+3:]); !ok || low < 0xdc00 || low > 0xdfff {
				return true
			}
			i += 6
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// IsJSONContent reports whether a Content-Type names JSON in UTF-8. Only
// that is accepted: a text/plain or form POST from another origin needs no
// CORS preflight, so any page could otherwise make a visitor's browser
// publish to a node it can reach (an intranet one, say).
func IsJSONContent(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}
