// Package sseclient reads a text/event-stream exactly as the WHATWG HTML
// spec's EventSource parser does. Tests and the load tool use it to see what
// a browser would see.
package sseclient

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

// Event is one dispatched event.
type Event struct {
	// ID is the event source's last event ID when the event was dispatched.
	ID    string
	Event string // "message" when the stream named none
	Data  string
}

// Parser reads events from a stream.
type Parser struct {
	r           *bufio.Reader
	started     bool   // a leading byte-order mark has been skipped
	afterCR     bool   // the last line ended with CR: an LF next ends nothing
	idBuffer    string // the id field seen in the block being read
	lastEventID string // the id as of the last dispatch, as a browser keeps it
	// Retry is the last valid reconnection time sent, in milliseconds; -1 if none.
	Retry    int
	Comments int
}

// NewParser returns a parser of r.
func NewParser(r io.Reader) *Parser {
	return &Parser{r: bufio.NewReaderSize(r, 64<<10), Retry: -1}
}

// LastEventID returns the last event ID set by the stream, as a browser
// would send it in Last-Event-ID.
func (p *Parser) LastEventID() string { return p.lastEventID }

// Next returns the next dispatched event, skipping blocks that dispatch
// nothing (but still applying their id and retry fields).
func (p *Parser) Next() (Event, error) {
	var data strings.Builder
	var event string
	hasData := false
	for {
		line, err := p.readLine()
		if err != nil {
			return Event{}, err
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
			return Event{ID: p.lastEventID, Event: event, Data: d}, nil
		}
		p.field(line, &data, &event, &hasData)
	}
}

func (p *Parser) field(line string, data *strings.Builder, event *string, hasData *bool) {
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
		if n, err := strconv.Atoi(value); err == nil && isDigits(value) {
			p.Retry = n
		}
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// readLine reads one line ended by CRLF, LF or CR. A CR ends its line at
// once, without waiting to see whether an LF follows.
func (p *Parser) readLine() (string, error) {
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
				continue // the LF of a CRLF
			}
			return buf.String(), nil
		case '\r':
			p.afterCR = true
			return buf.String(), nil
		}
		buf.WriteByte(b)
	}
}
