package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Long polling: GET /poll?channel=…[&since=…][&session=…][&wait=…][&poll=…]
// answers a PollAnswer as soon as there is anything after since, or once
// wait has passed with nothing (docs/PROTOCOL.md, Long polling).
const (
	// DefaultPollWait is how long a poll is held when it names no wait:
	// under the 30 s that proxies and browsers commonly allow an idle
	// response.
	DefaultPollWait = 25 * time.Second
	// MaxPollWait is the longest wait a poll may ask for.
	MaxPollWait = 60 * time.Second
)

// PollAnswer is a long poll's answer. Messages are WebSocket server frames
// (message, direct, gap, welcome, error), never null; Since is the position
// to poll from next, the same position as an event stream's
// Last-Event-ID; Poll, when set, continues this poll session on the node
// that answered (send it as the poll parameter with Since): it is single
// use, and absent when the session is over.
type PollAnswer struct {
	Messages []ServerFrame `json:"messages"`
	Since    string        `json:"since"`
	Node     string        `json:"node"`
	Poll     string        `json:"poll,omitempty"`
}

// ErrInvalidWait refuses a wait that is not a duration from 0 to
// MaxPollWait.
var ErrInvalidWait = errors.New("protocol: invalid wait")

// ParsePollWait reads a poll's wait parameter: a Go duration ("25s",
// "500ms") from 0 to MaxPollWait; empty means DefaultPollWait.
func ParsePollWait(s string) (time.Duration, error) {
	if s == "" {
		return DefaultPollWait, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxPollWait {
		return 0, fmt.Errorf("%w: wait must be a duration from 0s to %s, like 25s", ErrInvalidWait, MaxPollWait)
	}
	return d, nil
}

// AppendPollAnswer appends the JSON of a poll's answer whose messages are
// frames, each already a JSON server frame, to b.
func AppendPollAnswer(b []byte, frames [][]byte, since, node, poll string) []byte {
	b = append(b, `{"messages":[`...)
	for i, f := range frames {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f...)
	}
	b = append(b, `],"since":`...)
	b = AppendJSONString(b, since)
	b = append(b, `,"node":`...)
	b = AppendJSONString(b, node)
	if poll != "" {
		b = append(b, `,"poll":`...)
		b = AppendJSONString(b, poll)
	}
	return append(b, "}\n"...)
}

// AppendJSONString appends s to b as a JSON string, as encoding/json
// would write it. Strings of plain printable ASCII, as IDs, names and
// positions are, are copied between quotes without a call into
// encoding/json; anything else goes through it.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
