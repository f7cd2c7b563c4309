package protocol

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestParsePollWait(t *testing.T) {
	for in, want := range map[string]time.Duration{"": DefaultPollWait, "0s": 0, "1.5s": 1500 * time.Millisecond, "60s": MaxPollWait} {
		got, err := ParsePollWait(in)
		if err != nil || got != want {
			t.Errorf("ParsePollWait(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "-1s", "1h", "60.001s", "25", "soon", "1e9s"} {
		if _, err := ParsePollWait(in); !errors.Is(err, ErrInvalidWait) {
			t.Errorf("ParsePollWait(%q): err %v, want ErrInvalidWait", in, err)
		}
	}
}

// The node writes an answer from frames it already holds as JSON; a
// client reads it with encoding/json into a PollAnswer.
func TestAppendPollAnswerDecodes(t *testing.T) {
	data := "he said \"hi\"\n"
	frames := [][]byte{
		(&ServerFrame{Type: TypeWelcome, Client: "c1", Session: "s", Node: "n\"1"}).Encode(),
		(&ServerFrame{Type: TypeMessage, Channel: "news", ID: "5-0", Data: &data}).Encode(),
	}
	for _, tc := range []struct {
		frames [][]byte
		poll   string
		n      int
	}{{frames, "k1", 2}, {nil, "", 0}} {
		b := AppendPollAnswer(nil, tc.frames, "5-0", "n\"1", tc.poll)
		var a PollAnswer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if a.Messages == nil || len(a.Messages) != tc.n || a.Since != "5-0" || a.Node != "n\"1" || a.Poll != tc.poll {
			t.Fatalf("decoded %+v from %s", a, b)
		}
		if tc.n == 2 && (*a.Messages[1].Data != data || a.Messages[0].Client != "c1") {
			t.Fatalf("frames decoded as %+v", a.Messages)
		}
	}
}
