package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/gobwas/ws"
)

// WSMessage is a whole message a client sent: its fragments joined,
// unmasked.
type WSMessage struct {
	Text bool // a text message; else binary
	Data []byte
	// TooLarge: the message was longer than the limit it was read under;
	// it was read and dropped, and Data is nil.
	TooLarge bool
	// Control: only control frames were read, and nothing more is
	// buffered: there is no message, and nothing to wait for.
	Control bool
}

// WSCloseError is the close frame a client sent: the connection ends.
type WSCloseError struct {
	Code   uint16 // 0 when the frame carried none
	Reason string
}

func (e *WSCloseError) Error() string {
	return fmt.Sprintf("wire: the client closed the WebSocket: %d %q", e.Code, e.Reason)
}

// WSProtocolError is a client's breach of RFC 6455: the connection is to
// be closed with Code.
type WSProtocolError struct {
	Code uint16
	Msg  string
}

func (e *WSProtocolError) Error() string { return "wire: WebSocket protocol violation: " + e.Msg }

// The close codes of RFC 6455 section 7.4.1 a client's frames can earn.
const (
	CloseProtocolError = 1002
	CloseTooBig        = 1009
)

// ReadMessage reads a client's frames from r, which reads the
// connection, until a whole data message, answering pings with pongs
// behind the queue and telling onPong of pongs on the way; or until a
// control frame leaves nothing buffered outside a message (Control), so
// that a reader started for a pong does not wait on for a message. A message
// longer than limit is read and dropped (TooLarge); one longer than hard,
// or a frame that breaks the protocol, is a *WSProtocolError, and a close
// frame a *WSCloseError. Frame headers are parsed and payloads unmasked by
// gobwas/ws.
func (w *WS) ReadMessage(r *bufio.Reader, limit, hard int64, onPong func()) (WSMessage, error) {
	var (
		m       WSMessage
		started bool
		size    int64
	)
	for {
		h, err := ws.ReadHeader(r)
		switch {
		case errors.Is(err, ws.ErrHeaderLengthMSB), errors.Is(err, ws.ErrHeaderLengthUnexpected):
			return m, &WSProtocolError{CloseProtocolError, err.Error()}
		case err != nil:
			return m, err
		case h.Rsv != 0:
			return m, &WSProtocolError{CloseProtocolError, "reserved bits set: no extension was agreed"}
		case !h.Masked:
			return m, &WSProtocolError{CloseProtocolError, "a client's frame must be masked"}
		case h.OpCode.IsReserved():
			return m, &WSProtocolError{CloseProtocolError, fmt.Sprintf("reserved opcode %#x", byte(h.OpCode))}
		}
		if h.OpCode.IsControl() {
			if !h.Fin || h.Length > 125 {
				return m, &WSProtocolError{CloseProtocolError, "a control frame must be whole and at most 125 bytes"}
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(r, p); err != nil {
				return m, err
			}
			ws.Cipher(p, h.Mask, 0)
			switch h.OpCode {
			case ws.OpPing:
				w.Pong(p)
			case ws.OpPong:
				onPong()
			case ws.OpClose:
				if len(p) == 1 {
					return m, &WSProtocolError{CloseProtocolError, "a close frame's code is two bytes"}
				}
				code, reason := ws.ParseCloseFrameData(p)
				return m, &WSCloseError{Code: uint16(code), Reason: reason}
			}
			if !started && r.Buffered() == 0 {
				m.Control = true
				return m, nil
			}
			continue
		}
		switch {
		case h.OpCode == ws.OpContinuation && !started:
			return m, &WSProtocolError{CloseProtocolError, "a continuation frame with no message begun"}
		case h.OpCode != ws.OpContinuation && started:
			return m, &WSProtocolError{CloseProtocolError, "a new message inside a fragmented one"}
		case h.OpCode != ws.OpContinuation:
			started, m.Text = true, h.OpCode == ws.OpText
		}
		size += h.Length
		if h.Length < 0 || size > hard {
			return m, &WSProtocolError{CloseTooBig, fmt.Sprintf("a message longer than %d bytes", hard)}
		}
		if m.TooLarge || size > limit {
			m.TooLarge, m.Data = true, nil
			if _, err := io.CopyN(io.Discard, r, h.Length); err != nil {
				return m, err
			}
		} else {
			at := len(m.Data)
			m.Data = append(m.Data, make([]byte, h.Length)...)
			if _, err := io.ReadFull(r, m.Data[at:]); err != nil {
				return m, err
			}
			ws.Cipher(m.Data[at:], h.Mask, 0)
		}
		if h.Fin {
			return m, nil
		}
	}
}
