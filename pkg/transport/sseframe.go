package transport

import (
	"strconv"
	"strings"
	"time"

	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// Reserved SSE event names for the node's control events.
const (
	EventWelcome = "push.welcome"
	EventGap     = "push.gap"
	EventError   = "push.error"
	// EventDirect is a message to this client alone (POST /api/publish
	// with "client"): data {"id","event","data"}.
	EventDirect = "push.direct"
)

var (
	sseHeartbeat      = []byte(":\n\n")
	sseHeartbeatChunk = chunk(sseHeartbeat)
)

// chunk frames b as one HTTP/1.1 chunk.
func chunk(b []byte) []byte {
	out := make([]byte, 0, len(b)+12)
	out = strconv.AppendUint(out, uint64(len(b)), 16)
	out = append(out, "\r\n"...)
	out = append(out, b...)
	return append(out, "\r\n"...)
}

// sseFrame encodes an entry for a one-channel stream: its ID, then its body.
func sseFrame(m *hub.Message) []byte {
	return append(sseIDLine(m.Entry.ID.String()), sseBody(&m.Entry)...)
}

// sseChunkedFrame is sseFrame as one HTTP/1.1 chunk.
func sseChunkedFrame(m *hub.Message) []byte {
	return chunk(sseFrame(m))
}

// appendSSEData appends data as "data:" lines, splitting on CRLF, CR and LF
// as the WHATWG parser does, so a payload can never start another field.
func appendSSEData(b []byte, data string) []byte {
	for {
		i := strings.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = appendSSELine(b, "data", data[:i])
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return appendSSELine(b, "data", data)
}

func appendSSELine(b []byte, field, value string) []byte {
	b = append(b, field...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, '\n')
}

// sseEventName returns the event name to write, or "" for none. An event
// name added by a raw XADD with a line break in it is dropped rather than
// allowed to inject fields; the message is still delivered.
func sseEventName(name string) string {
	if strings.ContainsAny(name, "\r\n") {
		return ""
	}
	return name
}

// sseBody encodes an entry's event and data fields and the blank line that
// dispatches it. The id line, which may be per connection, goes before it.
func sseBody(e *store.Entry) []byte {
	lines := 1 + strings.Count(e.Data, "\n") + strings.Count(e.Data, "\r")
	b := make([]byte, 0, len(e.Data)+len(e.Event)+8+7*lines)
	if ev := sseEventName(e.Event); ev != "" {
		b = appendSSELine(b, "event", ev)
	}
	b = appendSSEData(b, e.Data)
	return append(b, '\n')
}

// sseIDLine encodes "id: <id>\n".
func sseIDLine(id string) []byte {
	b := make([]byte, 0, len(id)+5)
	return appendSSELine(b, "id", id)
}

// sseControl encodes a control event with JSON data and an optional id.
func sseControl(event, id string, jsonData []byte) []byte {
	b := make([]byte, 0, len(jsonData)+len(event)+len(id)+24)
	if id != "" {
		b = appendSSELine(b, "id", id)
	}
	b = appendSSELine(b, "event", event)
	b = appendSSELine(b, "data", string(jsonData))
	return append(b, '\n')
}

// sseRetry encodes the reconnection time field.
func sseRetry(d time.Duration) []byte {
	return appendSSELine(nil, "retry", strconv.FormatInt(d.Milliseconds(), 10))
}
