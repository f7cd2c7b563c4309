package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// entry is an event's name and data, as a stream entry holds them.
type entry struct{ Event, Data string }

// normalizeLines turns CRLF and CR into LF, as an SSE parser does.
func normalizeLines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// parseSSE parses a whole stream with the WHATWG-conformant test client.
func parseSSE(t *testing.T, stream []byte) []SSEEvent {
	t.Helper()
	p := NewSSEParser(bytes.NewReader(stream))
	var events []SSEEvent
	for {
		ev, err := p.Next()
		if errors.Is(err, io.EOF) {
			return events
		}
		if err != nil {
			t.Fatalf("parsing %q: %v", stream, err)
		}
		events = append(events, ev)
	}
}

func TestAppendSSEData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", "data: \n"},
		{"a", "data: a\n"},
		{" a", "data:  a\n"},
		{"a\r\nb\rc\nd", "data: a\ndata: b\ndata: c\ndata: d\n"},
		{"a\n", "data: a\ndata: \n"},
		{"a\r", "data: a\ndata: \n"},
		{"a\r\n", "data: a\ndata: \n"},
		{"\n", "data: \ndata: \n"},
		{"\n\r", "data: \ndata: \ndata: \n"},
		{"\r\r\n", "data: \ndata: \ndata: \n"},
		{"x\n\nevent: evil\nid: 9", "data: x\ndata: \ndata: event: evil\ndata: id: 9\n"},
		{"\u2028", "data: \u2028\n"},
	}
	for _, tt := range tests {
		if got := string(AppendSSEData([]byte("pre\n"), tt.in)); got != "pre\n"+tt.want {
			t.Errorf("AppendSSEData(%q) = %q, want %q", tt.in, got, "pre\n"+tt.want)
		}
	}
}

func TestSSEEventName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":            "",
		"update":      "update",
		"a b":         "a b",
		"a\nb":        "",
		"a\rb":        "",
		"a\r\nb":      "",
		"evil\nid: 9": "",
	} {
		if got := SSEEventName(in); got != want {
			t.Errorf("SSEEventName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSSEBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		entry entry
		want  string
	}{
		{entry{Data: "hi"}, "data: hi\n\n"},
		{entry{Event: "update", Data: "hi"}, "event: update\ndata: hi\n\n"},
		{entry{Event: "update"}, "event: update\ndata: \n\n"},
		{entry{Event: "bad\nid: 9", Data: "hi"}, "data: hi\n\n"},
		{entry{Data: "a\nb"}, "data: a\ndata: b\n\n"},
	}
	for _, tt := range tests {
		if got := string(SSEBody(tt.entry.Event, tt.entry.Data)); got != tt.want {
			t.Errorf("SSEBody(%+v) = %q, want %q", tt.entry, got, tt.want)
		}
	}
	if got := string(SSEIDLine("1-2")); got != "id: 1-2\n" {
		t.Errorf("SSEIDLine = %q", got)
	}
	if got := string(SSERetry(1500 * time.Millisecond)); got != "retry: 1500\n" {
		t.Errorf("SSERetry = %q", got)
	}
	if got := string(SSEControl(EventGap, "", []byte(`{"a":1}`))); got != "event: push.gap\ndata: {\"a\":1}\n\n" {
		t.Errorf("SSEControl = %q", got)
	}
}

// A payload or event name cannot add fields or events of its own: the
// parser sees exactly one event, whatever is inside.
func TestSSEFrameCannotInjectFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		entry     entry
		wantEvent string
	}{
		{entry{Event: "update", Data: "x\n\nevent: evil\nid: 9"}, "update"},
		{entry{Data: "x\r\rdata: y\r\nretry: 1\r\n\r\n"}, "message"},
		{entry{Event: "evil\nid: 9\n", Data: "x"}, "message"},
		{entry{Event: "evil\r", Data: ""}, "message"},
		{entry{Data: ""}, "message"},
		{entry{Data: "\n"}, "message"},
		{entry{Data: ":comment\n"}, "message"},
	}
	for _, tt := range tests {
		frame := append(SSEIDLine("5-0"), SSEBody(tt.entry.Event, tt.entry.Data)...)
		events := parseSSE(t, frame)
		if len(events) != 1 {
			t.Errorf("frame %q parses to %d events %q, want 1", frame, len(events), events)
			continue
		}
		want := SSEEvent{ID: "5-0", Event: tt.wantEvent, Data: normalizeLines(tt.entry.Data)}
		if events[0] != want {
			t.Errorf("frame %q parses to %q, want %q", frame, events[0], want)
		}
	}
}

func TestSSEControlParses(t *testing.T) {
	t.Parallel()
	stream := append(SSERetry(time.Second), SSEControl(EventWelcome, "1-0", []byte(`{"client":"c"}`))...)
	stream = append(stream, SSEHeartbeat...)
	events := parseSSE(t, stream)
	want := SSEEvent{ID: "1-0", Event: EventWelcome, Data: `{"client":"c"}`}
	if len(events) != 1 || events[0] != want {
		t.Errorf("events = %q, want [%q]", events, want)
	}
}

func FuzzSSERoundTrip(f *testing.F) {
	f.Add("", "", uint64(0), uint64(0))
	f.Add("update", "hello", uint64(1526919030474), uint64(55))
	f.Add("", "a\r\nb\rc\nd", uint64(1), uint64(2))
	f.Add("x", "x\n\nevent: evil\nid: 9", uint64(9), uint64(0))
	f.Add(" sp", "\r\n\r\n\n", uint64(0), uint64(1))
	f.Add("ü", ":\u2028\x00", uint64(1<<63), uint64(1))
	f.Fuzz(func(t *testing.T, event, data string, ms, seq uint64) {
		if !utf8.ValidString(data) || !utf8.ValidString(event) || strings.ContainsAny(event, "\r\n\x00") {
			t.Skip()
		}
		id := ID{Ms: ms, Seq: seq}.String()
		frame := append(SSEIDLine(id), SSEBody(event, data)...)
		events := parseSSE(t, frame)
		if len(events) != 1 {
			t.Fatalf("frame %q parses to %d events, want 1", frame, len(events))
		}
		wantEvent := event
		if wantEvent == "" {
			wantEvent = "message"
		}
		want := SSEEvent{ID: id, Event: wantEvent, Data: normalizeLines(data)}
		if events[0] != want {
			t.Fatalf("frame %q parses to %q, want %q", frame, events[0], want)
		}
	})
}
