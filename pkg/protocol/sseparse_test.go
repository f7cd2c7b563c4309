package protocol

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// readAll parses stream to its end, returning every dispatched event and
// the parser, for its LastEventID, Retry and Comments.
func readAll(t *testing.T, stream string) ([]SSEEvent, *SSEParser) {
	t.Helper()
	p := NewSSEParser(strings.NewReader(stream))
	var events []SSEEvent
	for {
		ev, err := p.Next()
		if errors.Is(err, io.EOF) {
			return events, p
		}
		if err != nil {
			t.Fatalf("Next() error: %v", err)
		}
		events = append(events, ev)
	}
}

func equalEvents(a, b []SSEEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParserStreams(t *testing.T) {
	t.Parallel()
	msg := func(id, data string) SSEEvent { return SSEEvent{ID: id, Event: "message", Data: data} }
	tests := []struct {
		name   string
		stream string
		want   []SSEEvent
		lastID string
	}{
		// The examples of the WHATWG HTML standard, "Server-sent events".
		{
			name:   "spec: three data lines join with LF",
			stream: "data: YHOO\ndata: +2\ndata: 10\n\n",
			want:   []SSEEvent{msg("", "YHOO\n+2\n10")},
		},
		{
			name:   "spec: comment, ids, id without value, unterminated block",
			stream: ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
			want:   []SSEEvent{msg("1", "first event"), msg("", "second event")},
			lastID: "",
		},
		{
			name:   "spec: data without colon, empty and single-LF data",
			stream: "data\n\ndata\ndata\n\ndata:\n",
			want:   []SSEEvent{msg("", ""), msg("", "\n")},
		},
		{
			name:   "spec: one optional space after the colon",
			stream: "data:test\n\ndata: test\n\n",
			want:   []SSEEvent{msg("", "test"), msg("", "test")},
		},
		{
			name:   "spec: named events",
			stream: "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
			want: []SSEEvent{
				{Event: "add", Data: "73857293"},
				{Event: "remove", Data: "2153"},
				{Event: "add", Data: "113411"},
			},
		},
		{
			name:   "only the first space is removed",
			stream: "data:  two\n\n",
			want:   []SSEEvent{msg("", " two")},
		},
		{
			name:   "colon in value",
			stream: "data: a: b\n\n",
			want:   []SSEEvent{msg("", "a: b")},
		},
		{
			name:   "CR line endings",
			stream: "id: 7\rdata: a\rdata: b\r\r",
			want:   []SSEEvent{msg("7", "a\nb")},
			lastID: "7",
		},
		{
			name:   "CRLF line endings",
			stream: "id: 7\r\ndata: a\r\ndata: b\r\n\r\n",
			want:   []SSEEvent{msg("7", "a\nb")},
			lastID: "7",
		},
		{
			name:   "mixed line endings",
			stream: "data: a\r\ndata: b\rdata: c\n\r\n",
			want:   []SSEEvent{msg("", "a\nb\nc")},
		},
		{
			name:   "id with NUL is ignored",
			stream: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			want:   []SSEEvent{msg("1", "a"), msg("1", "b")},
			lastID: "1",
		},
		{
			name:   "id persists across events",
			stream: "id: 5\ndata: a\n\ndata: b\n\n",
			want:   []SSEEvent{msg("5", "a"), msg("5", "b")},
			lastID: "5",
		},
		{
			name:   "block with only an id sets the last event ID and dispatches nothing",
			stream: "id: 9\n\n",
			lastID: "9",
		},
		{
			name:   "event type resets after each dispatch",
			stream: "event: x\ndata: 1\n\ndata: 2\n\n",
			want:   []SSEEvent{{Event: "x", Data: "1"}, msg("", "2")},
		},
		{
			name:   "event type of a block without data does not carry over",
			stream: "event: x\n\ndata: 1\n\n",
			want:   []SSEEvent{msg("", "1")},
		},
		{
			name:   "event without value means message",
			stream: "event\ndata: 1\n\n",
			want:   []SSEEvent{msg("", "1")},
		},
		{
			name:   "field names are case-sensitive; unknown fields are ignored",
			stream: "Data: x\nfoo: bar\ndata: y\n\n",
			want:   []SSEEvent{msg("", "y")},
		},
		{
			name:   "comments only",
			stream: ":\n: hi\n\n",
		},
		{
			name:   "unterminated last line is discarded",
			stream: "data: a\n\ndata: b",
			want:   []SSEEvent{msg("", "a")},
		},
		{
			name:   "empty stream",
			stream: "",
		},
	}
	for _, tt := range tests {
		got, p := readAll(t, tt.stream)
		if !equalEvents(got, tt.want) {
			t.Errorf("%s: events = %q, want %q", tt.name, got, tt.want)
		}
		if p.LastEventID() != tt.lastID {
			t.Errorf("%s: LastEventID() = %q, want %q", tt.name, p.LastEventID(), tt.lastID)
		}
	}
}

func TestParserRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stream string
		want   int
	}{
		{"", -1},
		{"retry: 1000\n\n", 1000},
		{"retry:0\n\n", 0},
		{"retry: 1000\nretry: 10a\n\n", 1000},
		{"retry: -1\n\n", -1},
		{"retry: +5\n\n", -1},
		{"retry: 1.5\n\n", -1},
		{"retry:\n\n", -1},
		{"retry\n\n", -1},
		{"retry:  5\n\n", -1},
		{"retry: 5 \n\n", -1},
		{"retry: 99999999999999999999999\n\n", -1},
	}
	for _, tt := range tests {
		_, p := readAll(t, tt.stream)
		if p.Retry != tt.want {
			t.Errorf("stream %q: Retry = %d, want %d", tt.stream, p.Retry, tt.want)
		}
	}
}

func TestParserCountsComments(t *testing.T) {
	t.Parallel()
	_, p := readAll(t, ":\n\n: x\ndata: y\n\n:\r\n")
	if p.Comments != 3 {
		t.Errorf("Comments = %d, want 3", p.Comments)
	}
}

// The "UTF-8 decode" algorithm the spec requires drops one leading BOM.
func TestParserSkipsLeadingBOM(t *testing.T) {
	t.Parallel()
	got, _ := readAll(t, "\ufeffdata: a\n\n")
	want := []SSEEvent{{Event: "message", Data: "a"}}
	if !equalEvents(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

// The spec sets the event source's last event ID only when a block is
// dispatched; an id in a block cut off by the end of the stream is pending
// data and is discarded, so a browser would resume from the previous ID.
func TestParserLastEventIDIgnoresUnterminatedBlock(t *testing.T) {
	t.Parallel()
	_, p := readAll(t, "id: 1\ndata: a\n\nid: 2\ndata: b\n")
	if got := p.LastEventID(); got != "1" {
		t.Errorf("LastEventID() = %q, want %q", got, "1")
	}
}

// aheadReader yields its chunks one Read at a time and records whether the
// parser asked for more before the previous chunk's events were returned.
type aheadReader struct {
	chunks   []string
	readPast bool
}

func (r *aheadReader) Read(b []byte) (int, error) {
	if len(r.chunks) == 0 {
		r.readPast = true
		return 0, io.EOF
	}
	n := copy(b, r.chunks[0])
	r.chunks = r.chunks[1:]
	return n, nil
}

// A browser dispatches on a CR at once; waiting for the next byte to see
// whether it is LF stalls a live CR-only stream until more data arrives.
func TestParserDispatchesOnCRWithoutReadingAhead(t *testing.T) {
	t.Parallel()
	r := &aheadReader{chunks: []string{"data: a\r\r"}}
	ev, err := NewSSEParser(r).Next()
	if err != nil || ev.Data != "a" {
		t.Fatalf("Next() = %q, %v; want data \"a\"", ev, err)
	}
	if r.readPast {
		t.Error("parser read past the blank line that dispatched the event")
	}
}

func FuzzSSEParser(f *testing.F) {
	for _, s := range []string{
		"data: YHOO\ndata: +2\ndata: 10\n\n",
		": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
		"id: 7\rdata: a\r\r",
		"event: x\r\ndata\r\n\r\nretry: 10\n\n",
		"id: a\x00b\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := NewSSEParser(strings.NewReader(s))
		for i := 0; ; i++ {
			ev, err := p.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("Next() error %v, want io.EOF", err)
				}
				return
			}
			if ev.Event == "" {
				t.Fatalf("event %d has an empty type", i)
			}
			if strings.ContainsRune(ev.ID, 0) {
				t.Fatalf("event %d has an ID holding NUL: %q", i, ev.ID)
			}
			if i > len(s) {
				t.Fatalf("more events (%d) than input bytes (%d)", i, len(s))
			}
		}
	})
}
