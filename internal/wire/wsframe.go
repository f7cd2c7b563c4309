package wire

import "encoding/binary"

// WSPing is the node's ping: an empty ping frame, shared by every
// connection.
var WSPing = []byte{0x89, 0x00}

// WSText frames payload as one text frame from a server: final, unmasked
// (RFC 6455 section 5.2).
func WSText(payload []byte) []byte {
	var h [10]byte
	h[0] = 0x81 // FIN, text
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

// frameLen returns the length of the frame b begins with, header and
// payload, once b holds enough of its header to tell (RFC 6455 section
// 5.2): false while it does not.
func frameLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	masked := b[1]&0x80 != 0
	n, hl := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, false
		}
		n, hl = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, false
		}
		n, hl = binary.BigEndian.Uint64(b[2:]), 10
	}
	if masked {
		hl += 4
	}
	const maxFrame = 1 << 40 // far beyond anything written here; no overflow below
	if n > maxFrame {
		n = maxFrame
	}
	return hl + int(n), true
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
