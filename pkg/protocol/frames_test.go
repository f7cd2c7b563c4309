package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeClientFrame(t *testing.T) {
	t.Parallel()
	longRef := `"` + strings.Repeat("r", MaxRefLen-1) + `"` // MaxRefLen+1 bytes
	tests := []struct {
		name string
		in   string
		want ClientFrame // Ref compared as a string
		code string      // "" means accepted
	}{
		{
			name: "subscribe",
			in:   `{"type":"subscribe","channel":"news","since":"1-0"}`,
			want: ClientFrame{Type: "subscribe", Channel: "news", Since: "1-0"},
		},
		{
			name: "subscribe with string ref",
			in:   `{"type":"subscribe","channel":"news","ref":"abc"}`,
			want: ClientFrame{Type: "subscribe", Channel: "news", Ref: json.RawMessage(`"abc"`)},
		},
		{
			name: "unsubscribe with numeric ref",
			in:   `{"type":"unsubscribe","channel":"news","ref":42}`,
			want: ClientFrame{Type: "unsubscribe", Channel: "news", Ref: json.RawMessage(`42`)},
		},
		{
			name: "publish",
			in:   `{"type":"publish","channel":"c","event":"e","data":"d\r\n","to":"x","exceptSelf":true,"ref":[1,{"a":2}]}`,
			want: ClientFrame{Type: "publish", Channel: "c", Event: "e", Data: "d\r\n", To: "x", ExceptSelf: true, Ref: json.RawMessage(`[1,{"a":2}]`)},
		},
		{
			name: "ping",
			in:   `{"type":"ping"}`,
			want: ClientFrame{Type: "ping"},
		},
		{
			name: "ping with ref",
			in:   `{"type":"ping","ref":"7"}`,
			want: ClientFrame{Type: "ping", Ref: json.RawMessage(`"7"`)},
		},
		{
			name: "null ref is no ref",
			in:   `{"type":"ping","ref":null}`,
			want: ClientFrame{Type: "ping"},
		},
		{
			name: "ref of exactly MaxRefLen bytes",
			in:   `{"type":"ping","ref":"` + strings.Repeat("r", MaxRefLen-2) + `"}`,
			want: ClientFrame{Type: "ping", Ref: json.RawMessage(`"` + strings.Repeat("r", MaxRefLen-2) + `"`)},
		},
		{
			name: "unknown fields are ignored",
			in:   `{"type":"ping","extra":{"deep":[1,2]}}`,
			want: ClientFrame{Type: "ping"},
		},
		{
			name: "ref too long is dropped",
			in:   `{"type":"ping","ref":` + longRef + `}`,
			want: ClientFrame{Type: "ping"},
			code: CodeBadJSON,
		},
		{name: "malformed JSON", in: `{"type":"ping"`, code: CodeBadJSON},
		{name: "not an object", in: `[1,2]`, code: CodeBadJSON},
		{name: "empty", in: ``, code: CodeBadJSON},
		{name: "wrong field type", in: `{"type":"ping","ref":"7","channel":5}`, code: CodeBadJSON},
		{name: "trailing garbage", in: `{"type":"ping","ref":"7"} x`, code: CodeBadJSON},
		{
			name: "missing type",
			in:   `{"channel":"news"}`,
			want: ClientFrame{Channel: "news"},
			code: CodeUnknownType,
		},
		{
			name: "unknown type keeps ref",
			in:   `{"type":"dance","ref":"7"}`,
			want: ClientFrame{Type: "dance", Ref: json.RawMessage(`"7"`)},
			code: CodeUnknownType,
		},
		{
			name: "subscribe without channel keeps ref",
			in:   `{"type":"subscribe","ref":3}`,
			want: ClientFrame{Type: "subscribe", Ref: json.RawMessage(`3`)},
			code: CodeInvalidChannel,
		},
		{
			name: "unsubscribe without channel",
			in:   `{"type":"unsubscribe"}`,
			want: ClientFrame{Type: "unsubscribe"},
			code: CodeInvalidChannel,
		},
		{
			name: "publish with empty channel",
			in:   `{"type":"publish","channel":"","data":"x"}`,
			want: ClientFrame{Type: "publish", Data: "x"},
			code: CodeInvalidChannel,
		},
	}
	for _, tt := range tests {
		f, ferr := DecodeClientFrame([]byte(tt.in))
		switch {
		case tt.code == "" && ferr != nil:
			t.Errorf("%s: DecodeClientFrame(%s) error %s: %v", tt.name, tt.in, ferr.Code, ferr)
			continue
		case tt.code != "" && ferr == nil:
			t.Errorf("%s: DecodeClientFrame(%s) accepted, want code %s", tt.name, tt.in, tt.code)
			continue
		case tt.code != "" && ferr.Code != tt.code:
			t.Errorf("%s: DecodeClientFrame(%s) code %s (%v), want %s", tt.name, tt.in, ferr.Code, ferr, tt.code)
		}
		if string(f.Ref) != string(tt.want.Ref) {
			t.Errorf("%s: Ref = %#q, want %#q", tt.name, f.Ref, tt.want.Ref)
		}
		if tt.code == CodeBadJSON {
			continue // the other fields are whatever was decoded
		}
		f.Ref, tt.want.Ref = nil, nil
		if !reflect.DeepEqual(f, tt.want) {
			t.Errorf("%s: DecodeClientFrame(%s) = %+v, want %+v", tt.name, tt.in, f, tt.want)
		}
	}
}

func TestServerFrameEncodeKeepsData(t *testing.T) {
	t.Parallel()
	for _, data := range []string{"", "\r\n", "\u2028\u2029", "</script>", `"quoted" \ back`, "\x00\x1f", "新闻 🎉", "<&>"} {
		f := ServerFrame{Type: "message", Ref: json.RawMessage(`"7"`), Channel: "c", ID: "1-0", Data: &data}
		b := f.Encode()
		if !json.Valid(b) {
			t.Errorf("encode with data %q gave invalid JSON %s", data, b)
			continue
		}
		var back struct {
			Type string          `json:"type"`
			Ref  json.RawMessage `json:"ref"`
			Data *string         `json:"data"`
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("decoding %s: %v", b, err)
			continue
		}
		if back.Data == nil || *back.Data != data {
			t.Errorf("data %q encoded as %s", data, b)
		}
		if back.Type != "message" || string(back.Ref) != `"7"` {
			t.Errorf("encode = %s, want type message and ref \"7\"", b)
		}
	}
}

func TestServerFrameEncodeOmitsEmpty(t *testing.T) {
	t.Parallel()
	if got := string((&ServerFrame{Type: "pong"}).Encode()); got != `{"type":"pong"}` {
		t.Errorf("encode = %s, want {\"type\":\"pong\"}", got)
	}
	empty := ""
	if got := string((&ServerFrame{Type: "message", Data: &empty}).Encode()); got != `{"type":"message","data":""}` {
		t.Errorf("encode = %s, want empty data kept", got)
	}
}

// A ref is echoed in a text frame, which RFC 6455 requires to be UTF-8; a
// browser fails the connection on anything else.
func TestDecodeClientFrameRefIsUTF8(t *testing.T) {
	t.Parallel()
	f, ferr := DecodeClientFrame([]byte("{\"type\":\"ping\",\"ref\":\"\xff\"}"))
	if ferr == nil {
		if reply := (&ServerFrame{Type: "pong", Ref: f.Ref}).Encode(); !utf8.Valid(reply) {
			t.Errorf("reply %q is not UTF-8", reply)
		}
	}
}

func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","channel":"news","since":"1-0","ref":1}`,
		`{"type":"publish","channel":"c","event":"e","data":"x","to":"y","exceptSelf":true,"ref":"r"}`,
		`{"type":"ping","ref":null}`,
		`{"type":"dance","ref":"7"}`,
		`{"TYPE":"PING","Ref":[{}]}`,
		`{"type":"ping","ref":"` + strings.Repeat("r", 70) + `"}`,
		`{"type":"ping"`,
		`null`,
		`{"type":"publish","channel":"c","data":"\ud83c"}`,
		`{"type":"publish","channel":"c","data":"\ud83c\udf89"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, ferr := DecodeClientFrame(b)
		if len(fr.Ref) > MaxRefLen {
			t.Fatalf("Ref of %d bytes returned", len(fr.Ref))
		}
		if fr.Ref != nil && !json.Valid(fr.Ref) {
			t.Fatalf("Ref %q is not valid JSON", fr.Ref)
		}
		if string(fr.Ref) == "null" {
			t.Fatal("null Ref returned")
		}
		if ferr != nil {
			switch ferr.Code {
			case CodeBadJSON, CodeUnknownType, CodeInvalidChannel:
			default:
				t.Fatalf("unexpected code %q", ferr.Code)
			}
			if ferr.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		switch fr.Type {
		case TypeSubscribe, TypeUnsubscribe, TypePublish:
			if fr.Channel == "" {
				t.Fatalf("%s accepted without a channel", fr.Type)
			}
		case TypePing:
		default:
			t.Fatalf("accepted unknown type %q", fr.Type)
		}
		// Published data is exactly the text the frame spells.
		asked := bytes.Contains(b, []byte("\uFFFD")) || strings.Contains(strings.ToLower(string(b)), `\ufffd`)
		for _, s := range []string{fr.Channel, fr.Event, fr.Data, fr.To, fr.Since} {
			if strings.ContainsRune(s, utf8.RuneError) && !asked {
				t.Fatalf("decoded %q from %q: a U+FFFD the frame does not hold", s, b)
			}
		}
		// The ref is echoed in a reply, which must still encode.
		reply := (&ServerFrame{Type: "pong", Ref: fr.Ref}).Encode()
		if !json.Valid(reply) {
			t.Fatalf("reply %q is not valid JSON", reply)
		}
	})
}
