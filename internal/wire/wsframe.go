package wire

import "encoding/binary"

// WSPing is the node's ping: an empty ping frame, shared by every
// connection.
var WSPing = []byte{0x89, 0x00}

// The opcodes of RFC 6455 section 5.2 the node writes.
const (
	opText  = 0x1
	opClose = 0x8
	opPong  = 0xa
)

// WSText frames payload as one text frame from a server: final, unmasked
// (RFC 6455 section 5.2).
func WSText(payload []byte) []byte { return wsFrame(opText, payload) }

// wsFrame frames payload as one final, unmasked frame of opcode op.
func wsFrame(op byte, payload []byte) []byte {
	var h [10]byte
	h[0] = 0x80 | op // FIN
	n := len(payload)
	hl := 2
	switch {
	case n < 126:
		h[1] = byte(n)
	case n <= 0xffff:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		hl = 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
		hl = 10
	}
	b := make([]byte, hl+n)
	copy(b, h[:hl])
	copy(b[hl:], payload)
	return b
}

// WSPayload is the payload of frame, a whole unmasked frame from a server
// (as WSText makes), without copying it.
func WSPayload(frame []byte) []byte {
	switch n := frame[1] & 0x7f; {
	case n < 126:
		return frame[2:]
	case n == 126:
		return frame[4:]
	}
	return frame[10:]
}
