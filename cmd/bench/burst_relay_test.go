package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// The relay's frames must read back through the tool's own clients'
// parsers exactly as the node's do.
func TestRelayFramesParseAsTheNodes(t *testing.T) {
	t.Parallel()
	data := string(appendPayload(nil, stamp{Run: 7, Seq: 3, Sent: 42}, 100))
	sse := relaySSEFrame("1-2", data)
	size, body, ok := bytes.Cut(sse, []byte("\r\n"))
	body, crlf := bytes.CutSuffix(body, []byte("\r\n"))
	if n, err := strconv.ParseInt(string(size), 16, 64); !ok || !crlf || err != nil || n != int64(len(body)) {
		t.Fatalf("not one chunk: %q", sse)
	}
	ev, err := protocol.NewSSEParser(bytes.NewReader(body)).Next()
	if err != nil || ev.ID != "1-2" || ev.Data != data || ev.Event != "message" {
		t.Fatalf("SSE event %+v, %v", ev, err)
	}
	var f protocol.ServerFrame
	if err := json.Unmarshal(relayWSFrame("c", "1-2", data), &f); err != nil || f.Type != "message" || f.Channel != "c" || f.ID != "1-2" || f.Data == nil || *f.Data != data {
		t.Fatalf("WebSocket frame %+v, %v", f, err)
	}
	if st, err := parsePayload([]byte(*f.Data)); err != nil || st.Seq != 3 || !strings.HasPrefix(*f.Data, payloadMagic) {
		t.Fatalf("payload %+v, %v", st, err)
	}
}
