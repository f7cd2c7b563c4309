package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"
)

var (
	errBodyNotUTF8   = errors.New("body is not UTF-8")
	errLoneSurrogate = errors.New("a \\u escape of a lone UTF-16 surrogate is not text")
	// errEmptyClient: a publish names "client" but leaves it empty, which
	// is a mistake in the caller, not a channel publish without a channel.
	errEmptyClient = errors.New("client is empty: give the ID of the client to send to")
)

// decodePublish parses the body of POST /api/publish. Data is delivered
// exactly as sent or not at all, so it refuses what encoding/json would
// quietly replace with U+FFFD: bytes that are not UTF-8, and \u escapes of
// lone surrogates (which a JavaScript string can hold, and UTF-8 cannot).
func decodePublish(body []byte) (publishRequest, error) {
	var b struct {
		publishRequest
		Client *string `json:"client"` // shadows the embedded one: given, or not
	}
	if err := decodeJSON(body, &b); err != nil {
		return publishRequest{}, err
	}
	if b.Client != nil && *b.Client == "" {
		return publishRequest{}, errEmptyClient
	}
	p := b.publishRequest
	if b.Client != nil {
		p.Client = *b.Client
	}
	return p, nil
}

// decodeJSON decodes a request body into v, refusing what cannot decode
// to the very text it spells (see decodePublish).
func decodeJSON(body []byte, v any) error {
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
		return errBodyNotUTF8
	}
	if escapesLoneSurrogate(b) {
		return errLoneSurrogate
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

// isJSONContent reports whether a Content-Type names JSON in UTF-8. Only
// that is accepted: a text/plain or form POST from another origin needs no
// CORS preflight, so any page could otherwise make a visitor's browser
// publish to a node it can reach (an intranet one, say).
func isJSONContent(contentType string) bool {
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
