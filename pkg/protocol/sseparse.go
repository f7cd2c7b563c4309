package protocol

// SSEParser reads a text/event-stream exactly as the WHATWG HTML spec's
// EventSource parser does: what a browser would see. The Go client, the
// load tool and the tests read streams with it.

import (
	"bufio"
	"bytes"
	"io"
	"slices"
	"strconv"
	"sync"
)

// SSEEvent is one dispatched event.
type SSEEvent struct {
	// ID is the event source's last event ID when the event was dispatched.
	ID    string
	Event string // "message" when the stream named none
	Data  string
}

// SSERawEvent is an SSEEvent whose data is the parser's own buffer, valid until
// the next call: for a reader of large events that needs only part of each.
type SSERawEvent struct {
	ID    string
	Event string
	Data  []byte
}

// SSEParser reads events from a stream.
type SSEParser struct {
	r           *bufio.Reader
	started     bool   // a leading byte-order mark has been skipped
	afterCR     bool   // the last line ended with CR: an LF next ends nothing
	noLF        int    // how many buffered bytes are known to hold no LF
	line        []byte // a line longer than what was buffered, assembled
	data        []byte // the data of the block being read, each line ended by LF
	idBuffer    string // the id field seen in the block being read
	lastEventID string // the id as of the last dispatch, as a browser keeps it
	eventType   string // the last event type seen, reused while it repeats
	// Retry is the last valid reconnection time sent, in milliseconds; -1 if none.
	Retry    int
	Comments int
}

// readSize is the read buffer of each parser. The load tool holds thousands
// of idle streams, so it is kept small; lines longer than it are assembled
// in SSEParser.line.
const readSize = 4 << 10

// keepSize is the largest line or data buffer a parser keeps for the next
// event; one grown past it by a large event goes back to bigBuffers after
// that event.
const keepSize = 64 << 10

// bigBuffers hold the buffers of events larger than keepSize between
// events, for whichever parser reads a large one next: thousands of
// parsers reading a burst of large events then allocate none per event,
// and an idle parser holds none.
var bigBuffers sync.Pool // of *[]byte

// grow returns b with room for n more bytes: a buffer from bigBuffers if
// one is there, as an event that outgrows b is likely as large as the last
// large one, else b grown to twice its size or more.
func grow(b []byte, n int) []byte {
	need := len(b) + n
	if need <= cap(b) {
		return b
	}
	if v, _ := bigBuffers.Get().(*[]byte); v != nil && cap(*v) >= need {
		big := append((*v)[:0], b...)
		release(b)
		return big
	}
	return slices.Grow(b, max(n, cap(b)))
}

// release gives b to bigBuffers if it is large; the caller drops it.
func release(b []byte) {
	if cap(b) > keepSize {
		bigBuffers.Put(&b)
	}
}

// NewSSEParser returns a parser of r.
func NewSSEParser(r io.Reader) *SSEParser {
	return &SSEParser{r: bufio.NewReaderSize(r, readSize), Retry: -1}
}

// LastEventID returns the last event ID set by the stream, as a browser
// would send it in Last-Event-ID.
func (p *SSEParser) LastEventID() string { return p.lastEventID }

// Next returns the next dispatched event, skipping blocks that dispatch
// nothing (but still applying their id and retry fields). After an error,
// the block being read is discarded.
func (p *SSEParser) Next() (SSEEvent, error) {
	ev, err := p.NextRaw()
	if err != nil {
		return SSEEvent{}, err
	}
	d := string(ev.Data)
	p.trim()
	return SSEEvent{ID: ev.ID, Event: ev.Event, Data: d}, nil
}

// NextRaw is Next without a copy of the data, which stays valid until the
// next call.
func (p *SSEParser) NextRaw() (SSERawEvent, error) {
	p.trim() // what the last event left
	p.data = p.data[:0]
	var event string
	hasData := false
	for {
		line, err := p.readLine()
		if err != nil {
			p.trim()
			return SSERawEvent{}, err
		}
		if len(line) == 0 {
			p.lastEventID = p.idBuffer
			if !hasData {
				event = ""
				continue
			}
			if event == "" {
				event = "message"
			}
			// Every data line appended an LF; the spec drops the last one.
			return SSERawEvent{ID: p.lastEventID, Event: event, Data: p.data[:len(p.data)-1]}, nil
		}
		p.field(line, &event, &hasData)
	}
}

// trim gives up the line and data buffers if an event grew them past
// keepSize.
func (p *SSEParser) trim() {
	if cap(p.data) > keepSize {
		release(p.data)
		p.data = nil
	}
	if cap(p.line) > keepSize {
		release(p.line)
		p.line = nil
	}
}

// field applies one non-empty line. line is only valid until the next read.
func (p *SSEParser) field(line []byte, event *string, hasData *bool) {
	if line[0] == ':' {
		p.Comments++
		return
	}
	name, value, found := bytes.Cut(line, []byte{':'})
	if found && len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(name) {
	case "data":
		p.data = append(grow(p.data, len(value)+1), value...)
		p.data = append(p.data, '\n')
		*hasData = true
	case "event":
		if string(value) != p.eventType {
			p.eventType = string(value)
		}
		*event = p.eventType
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != p.idBuffer {
			p.idBuffer = string(value)
		}
	case "retry":
		if isDigits(value) {
			if n, err := strconv.Atoi(string(value)); err == nil {
				p.Retry = n
			}
		}
	}
}

func isDigits(s []byte) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(s) > 0
}

// readLine reads one line ended by CRLF, LF or CR, without its end. A CR
// ends its line at once, without waiting to see whether an LF follows: the
// LF, if it comes, is skipped by the next call. The line returned is valid
// until the next read; on an error, the part of a line read is discarded.
func (p *SSEParser) readLine() ([]byte, error) {
	if !p.started {
		p.started = true
		if bom, err := p.r.Peek(3); err == nil && string(bom) == "\ufeff" {
			p.r.Discard(3)
		}
	}
	if p.afterCR {
		b, err := p.r.Peek(1)
		if err != nil {
			return nil, err
		}
		p.afterCR = false
		if b[0] == '\n' {
			p.r.Discard(1) // the LF of a CRLF
			p.noLF = 0
		}
	}
	p.line = p.line[:0]
	for {
		// Look only at what is buffered, reading when nothing is: a
		// line's end must be seen without asking the stream for more.
		n := p.r.Buffered()
		if n == 0 {
			if _, err := p.r.Peek(1); err != nil {
				return nil, err
			}
			n = p.r.Buffered()
		}
		buf, _ := p.r.Peek(n)
		// The first LF, then the first CR before it. p.noLF saves
		// searching again for an LF past a run of CR-ended lines.
		lf := n
		if p.noLF < n {
			if i := bytes.IndexByte(buf[p.noLF:], '\n'); i >= 0 {
				lf = p.noLF + i
			}
		}
		end := lf
		if i := bytes.IndexByte(buf[:lf], '\r'); i >= 0 {
			end = i
		}
		if end == n { // no line end buffered
			p.line = append(grow(p.line, n), buf...)
			p.r.Discard(n)
			p.noLF = 0
			continue
		}
		p.afterCR = buf[end] == '\r'
		p.r.Discard(end + 1)
		p.noLF = lf - (end + 1)
		if p.noLF < 0 {
			p.noLF = 0
		}
		if len(p.line) == 0 {
			return buf[:end], nil
		}
		p.line = append(grow(p.line, end), buf[:end]...)
		return p.line, nil
	}
}
