package protocol

import (
	"strconv"
	"strings"
	"time"
)

// The node's control events on an event stream. Every event name that
// begins with ReservedEventPrefix is reserved for them.
const (
	// EventWelcome is a stream's first event: its id is the position the
	// stream starts after, its data a Welcome.
	EventWelcome = "push.welcome"
	// EventGap says entries may be missing before what follows: data a Gap.
	EventGap = "push.gap"
	// EventError is an error on an open stream: data an ErrorDetail.
	EventError = "push.error"
	// EventDirect is a message to this client alone (POST /api/publish
	// with "client"): data {"id","event","data"}.
	EventDirect = "push.direct"
)

// Welcome is the data of push.welcome (and the fields of the WebSocket
// welcome frame).
type Welcome struct {
	Client   string   `json:"client"`
	Session  string   `json:"session"`
	Node     string   `json:"node"`
	Channels []string `json:"channels"`
}

// Gap is the data of push.gap, and of the history answer's gap.
type Gap struct {
	Channels []string `json:"channels"`
	Reason   string   `json:"reason"`
	From     string   `json:"from,omitempty"`
	Resume   string   `json:"resume,omitempty"`
}

// SSEHeartbeat is the comment that keeps an idle stream open through
// proxies.
var SSEHeartbeat = []byte(":\n\n")

// AppendSSEData appends data as "data:" lines, splitting on CRLF, CR and LF
// as the WHATWG parser does, so a payload can never start another field.
func AppendSSEData(b []byte, data string) []byte {
	for {
		i := strings.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = AppendSSELine(b, "data", data[:i])
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return AppendSSELine(b, "data", data)
}

// AppendSSELine appends one "field: value" line.
func AppendSSELine(b []byte, field, value string) []byte {
	b = append(b, field...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, '\n')
}

// SSEEventName returns the event name to write, or "" for none. An event
// name added by a raw XADD with a line break in it is dropped rather than
// allowed to inject fields; the message is still delivered.
func SSEEventName(name string) string {
	if strings.ContainsAny(name, "\r\n") {
		return ""
	}
	return name
}

// SSEBody encodes an event's event and data fields and the blank line that
// dispatches it. The id line, which may be per connection, goes before it.
func SSEBody(event, data string) []byte {
	lines := 1 + strings.Count(data, "\n") + strings.Count(data, "\r")
	b := make([]byte, 0, len(data)+len(event)+8+7*lines)
	if ev := SSEEventName(event); ev != "" {
		b = AppendSSELine(b, "event", ev)
	}
	b = AppendSSEData(b, data)
	return append(b, '\n')
}

// SSEIDLine encodes "id: <id>\n".
func SSEIDLine(id string) []byte {
	b := make([]byte, 0, len(id)+5)
	return AppendSSELine(b, "id", id)
}

// SSEControl encodes a control event with JSON data and an optional id.
func SSEControl(event, id string, jsonData []byte) []byte {
	b := make([]byte, 0, len(jsonData)+len(event)+len(id)+24)
	if id != "" {
		b = AppendSSELine(b, "id", id)
	}
	b = AppendSSELine(b, "event", event)
	b = AppendSSELine(b, "data", string(jsonData))
	return append(b, '\n')
}

// SSERetry encodes the reconnection time field.
func SSERetry(d time.Duration) []byte {
	return AppendSSELine(nil, "retry", strconv.FormatInt(d.Milliseconds(), 10))
}
