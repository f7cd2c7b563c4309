package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodePublish(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want PublishRequest
		err  error // nil: accepted; errMalformed: any JSON error
	}{
		{"plain", `{"channel":"c","event":"e","data":"hi"}`, PublishRequest{Channel: "c", Event: "e", Data: "hi"}, nil},
		{"unicode", `{"channel":"c","data":"新闻 🎉"}`, PublishRequest{Channel: "c", Data: "新闻 🎉"}, nil},
		{"escaped pair", `{"channel":"c","data":"\ud83c\udf89"}`, PublishRequest{Channel: "c", Data: "🎉"}, nil},
		{"escaped backslash before u", `{"channel":"c","data":"\\udc00"}`, PublishRequest{Channel: "c", Data: `\udc00`}, nil},
		{"literal U+FFFD", `{"channel":"c","data":"` + "\uFFFD" + `"}`, PublishRequest{Channel: "c", Data: "\uFFFD"}, nil},
		{"invalid byte in data", "{\"channel\":\"ct\",\"data\":\"\xff\"}", PublishRequest{}, ErrBodyNotUTF8},
		{"invalid byte in channel", "{\"channel\":\"c\xc3\",\"data\":\"x\"}", PublishRequest{}, ErrBodyNotUTF8},
		{"invalid byte outside strings", "{\"channel\":\"c\",\"data\":\"x\"}\xff", PublishRequest{}, ErrBodyNotUTF8},
		{"lone high surrogate", `{"channel":"c","data":"\ud83c"}`, PublishRequest{}, ErrLoneSurrogate},
		{"lone low surrogate", `{"channel":"c","data":"\udf89x"}`, PublishRequest{}, ErrLoneSurrogate},
		{"high surrogate then text", `{"channel":"c","data":"\ud83cabcdef"}`, PublishRequest{}, ErrLoneSurrogate},
		{"two high surrogates", `{"channel":"c","data":"\ud83c\ud83c"}`, PublishRequest{}, ErrLoneSurrogate},
		{"surrogate in event", `{"channel":"c","event":"\uDC00","data":"x"}`, PublishRequest{}, ErrLoneSurrogate},
		{"malformed", `{"channel":`, PublishRequest{}, errMalformed},
		{"trailing data", `{"channel":"c"} {}`, PublishRequest{}, errMalformed},
		{"to one client", `{"client":"x","data":"hi"}`, PublishRequest{Client: "x", Data: "hi"}, nil},
		{"empty client", `{"client":"","data":"hi"}`, PublishRequest{}, ErrEmptyClient},
	}
	for _, tt := range tests {
		got, err := DecodePublish([]byte(tt.body))
		switch {
		case tt.err == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err == errMalformed && (err == nil || errors.Is(err, ErrBodyNotUTF8) || errors.Is(err, ErrLoneSurrogate) || errors.Is(err, ErrEmptyClient)):
			t.Errorf("%s: error %v, want a JSON error", tt.name, err)
		case tt.err != nil && tt.err != errMalformed && !errors.Is(err, tt.err):
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.err)
		case got != tt.want:
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

var errMalformed = errors.New("any JSON error")

func TestIsJSONContent(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"application/json":                  true,
		"Application/JSON":                  true,
		"application/json; charset=utf-8":   true,
		"application/json;charset=UTF-8":    true,
		"":                                  false,
		"text/plain":                        false,
		"text/plain; charset=utf-8":         false,
		"application/x-www-form-urlencoded": false,
		"multipart/form-data; boundary=x":   false,
		"application/json; charset=latin1":  false,
		"application/json; boundary=x":      false,
		"application/jsonx":                 false,
		"application/json; charset":         false,
	} {
		if got := IsJSONContent(ct); got != want {
			t.Errorf("IsJSONContent(%q) = %v, want %v", ct, got, want)
		}
	}
}

// FuzzDecodePublish checks that an accepted body decodes to text it really
// spells: valid UTF-8, never a U+FFFD the body did not ask for, and stable
// through a JSON round trip. The seed corpus is in testdata/fuzz.
func FuzzDecodePublish(f *testing.F) {
	f.Add([]byte(`{"channel":"news","event":"myEve","data":"hello","to":"x","exclude":"y"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePublish(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			if p != (PublishRequest{}) {
				t.Fatalf("rejected body decoded to %+v", p)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8: %q", body)
		}
		asked := bytes.Contains(body, []byte("\uFFFD")) || strings.Contains(strings.ToLower(string(body)), `\ufffd`)
		for _, s := range []string{p.Channel, p.Event, p.Data, p.To, p.Exclude} {
			if !utf8.ValidString(s) {
				t.Fatalf("decoded %q from %q: not UTF-8", s, body)
			}
			if strings.ContainsRune(s, utf8.RuneError) && !asked {
				t.Fatalf("decoded %q from %q: a U+FFFD the body does not hold", s, body)
			}
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodePublish(again)
		if err != nil || back != p {
			t.Fatalf("round trip of %+v: %s decodes to %+v, %v", p, again, back, err)
		}
	})
}
