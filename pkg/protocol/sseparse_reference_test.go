package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// refParser is the parser as it was before it read lines in bulk: one byte
// at a time, straight from the spec's wording. It is kept as the reference
// the faster Parser must agree with on every input.
type refParser struct {
	r           *bufio.Reader
	started     bool
	afterCR     bool
	idBuffer    string
	lastEventID string
	Retry       int
	Comments    int
}

func newRefParser(r io.Reader) *refParser {
	return &refParser{r: bufio.NewReaderSize(r, 64<<10), Retry: -1}
}

func (p *refParser) LastEventID() string { return p.lastEventID }

func (p *refParser) Next() (SSEEvent, error) {
	var data strings.Builder
	var event string
	hasData := false
	for {
		line, err := p.readLine()
		if err != nil {
			return SSEEvent{}, err
		}
		if line == "" {
			p.lastEventID = p.idBuffer
			if !hasData {
				event = ""
				continue
			}
			d := data.String()
			d = strings.TrimSuffix(d, "\n")
			if event == "" {
				event = "message"
			}
			return SSEEvent{ID: p.lastEventID, Event: event, Data: d}, nil
		}
		p.field(line, &data, &event, &hasData)
	}
}

func (p *refParser) field(line string, data *strings.Builder, event *string, hasData *bool) {
	if line[0] == ':' {
		p.Comments++
		return
	}
	name, value, found := strings.Cut(line, ":")
	if found {
		value = strings.TrimPrefix(value, " ")
	}
	switch name {
	case "event":
		*event = value
	case "data":
		data.WriteString(value)
		data.WriteByte('\n')
		*hasData = true
	case "id":
		if !strings.ContainsRune(value, 0) {
			p.idBuffer = value
		}
	case "retry":
		if n, err := strconv.Atoi(value); err == nil && refIsDigits(value) {
			p.Retry = n
		}
	}
}

func (p *refParser) readLine() (string, error) {
	if !p.started {
		p.started = true
		if bom, err := p.r.Peek(3); err == nil && string(bom) == "\ufeff" {
			p.r.Discard(3)
		}
	}
	var buf bytes.Buffer
	for {
		b, err := p.r.ReadByte()
		if err != nil {
			return "", err
		}
		afterCR := p.afterCR
		p.afterCR = false
		switch b {
		case '\n':
			if afterCR && buf.Len() == 0 {
				continue
			}
			return buf.String(), nil
		case '\r':
			p.afterCR = true
			return buf.String(), nil
		}
		buf.WriteByte(b)
	}
}

// chunkReader returns s in pieces of random sizes from 1 to max bytes, and
// with errAt >= 0 fails once, with errChunk, after errAt bytes; reads after
// that failure go on with the rest of s, as a reader with a transient error
// would.
type chunkReader struct {
	s      string
	rng    *rand.Rand
	max    int
	errAt  int
	failed bool
}

var errChunk = errors.New("transient read error")

func (r *chunkReader) Read(b []byte) (int, error) {
	if !r.failed && r.errAt == 0 {
		r.failed = true
		return 0, errChunk
	}
	if len(r.s) == 0 {
		return 0, io.EOF
	}
	n := 1 + r.rng.Intn(r.max)
	n = min(n, len(r.s), len(b))
	if !r.failed && r.errAt >= 0 {
		n = min(n, r.errAt)
		r.errAt -= n
	}
	copy(b, r.s[:n])
	r.s = r.s[n:]
	return n, nil
}

type result struct {
	ev     SSEEvent
	err    error
	lastID string
}

// drain reads events (and errors, up to two non-EOF ones) until io.EOF,
// recording the last event ID after each.
func drain(next func() (SSEEvent, error), lastID func() string) []result {
	var out []result
	errs := 0
	for {
		ev, err := next()
		out = append(out, result{ev, err, lastID()})
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			if errs++; errs > 2 {
				return out
			}
		}
	}
}

// FuzzParserMatchesReference checks that Parser and the byte-at-a-time
// refParser see the same events, errors, last event IDs, retry and comment
// counts for any stream, however the reader splits it.
func FuzzSSEParserMatchesReference(f *testing.F) {
	for _, s := range []string{
		"data: YHOO\ndata: +2\ndata: 10\n\n",
		": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
		"id: 7\rdata: a\r\r",
		"id: 7\r\ndata: a\r\n\r\n",
		"data: a\r\ndata: b\rdata: c\n\r\n",
		"event: x\r\ndata\r\n\r\nretry: 10\n\n",
		"id: a\x00b\n\n",
		"\ufeffdata: a\n\n",
		"\ufeff\ufeffdata: a\n\n",
		"\xef\xbb",
		"data: " + strings.Repeat("x", 5000) + "\r" + strings.Repeat("y", 5000) + "\r\n\r\n",
		"retry: 99999999999999999999999\nretry: 12\n\n",
	} {
		f.Add(s, int64(1), uint8(7), int16(-1))
	}
	f.Fuzz(func(t *testing.T, s string, seed int64, maxChunk uint8, errAt int16) {
		readers := map[string]func() io.Reader{
			"whole":   func() io.Reader { return strings.NewReader(s) },
			"onebyte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
			"half":    func() io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
			"dataerr": func() io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
			"chunks": func() io.Reader {
				return &chunkReader{s: s, rng: rand.New(rand.NewSource(seed)), max: 1 + int(maxChunk), errAt: int(errAt)}
			},
		}
		for name, mk := range readers {
			ref := newRefParser(mk())
			want := drain(ref.Next, ref.LastEventID)
			p := NewSSEParser(mk())
			got := drain(p.Next, p.LastEventID)
			if len(got) != len(want) {
				t.Fatalf("%s: %d results, reference %d:\n got %+v\nwant %+v", name, len(got), len(want), got, want)
			}
			for i := range got {
				if got[i].ev != want[i].ev || got[i].lastID != want[i].lastID || !errors.Is(got[i].err, want[i].err) {
					t.Fatalf("%s: result %d = %+v, reference %+v", name, i, got[i], want[i])
				}
			}
			if p.Retry != ref.Retry || p.Comments != ref.Comments {
				t.Fatalf("%s: Retry, Comments = %d, %d; reference %d, %d", name, p.Retry, p.Comments, ref.Retry, ref.Comments)
			}
		}
	})
}

func refIsDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
