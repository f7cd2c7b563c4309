package transport

import (
	"strconv"

	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

var sseHeartbeatChunk = chunk(protocol.SSEHeartbeat)

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
	return append(protocol.SSEIDLine(m.Entry.ID.String()), protocol.SSEBody(m.Entry.Event, m.Entry.Data)...)
}

// sseChunkedFrame is sseFrame as one HTTP/1.1 chunk.
func sseChunkedFrame(m *hub.Message) []byte {
	return chunk(sseFrame(m))
}
