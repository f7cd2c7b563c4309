//go:build unix

package wire

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/gobwas/ws"
)

// clientFrame is a frame as a client sends it: masked, unless told not.
func clientFrame(t *testing.T, op ws.OpCode, fin bool, payload []byte, mutate ...func(*ws.Frame)) []byte {
	t.Helper()
	f := ws.MaskFrame(ws.NewFrame(op, fin, payload))
	for _, m := range mutate {
		m(&f)
	}
	b, err := ws.CompileFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ReadMessage joins fragments, answers pings in between with pongs behind
// the queue, tells of pongs, drops what is too large, and refuses what
// breaks RFC 6455 with the close code it earns.
func TestReadMessage(t *testing.T) {
	text := func(s string) []byte { return []byte(s) }
	unmasked := func(f *ws.Frame) {
		f.Header.Masked = false
		f.Payload = bytes.Clone(f.Payload)
		ws.Cipher(f.Payload, f.Header.Mask, 0)
	}
	rsv := func(f *ws.Frame) { f.Header.Rsv = ws.Rsv(true, false, false) }
	cases := []struct {
		name    string
		frames  [][]byte
		want    WSMessage
		code    uint16 // a *WSProtocolError's, else 0
		closed  bool   // a *WSCloseError
		pongs   int
		pingsAt int // pongs queued
	}{
		{name: "text", frames: [][]byte{clientFrame(t, ws.OpText, true, text(`{"a":1}`))}, want: WSMessage{Text: true, Data: text(`{"a":1}`)}},
		{name: "binary", frames: [][]byte{clientFrame(t, ws.OpBinary, true, text("\x00\x01"))}, want: WSMessage{Data: text("\x00\x01")}},
		{name: "fragments around a ping and a pong", frames: [][]byte{
			clientFrame(t, ws.OpText, false, text(`{"a"`)),
			clientFrame(t, ws.OpPing, true, text("p")),
			clientFrame(t, ws.OpContinuation, false, text(`:`)),
			clientFrame(t, ws.OpPong, true, nil),
			clientFrame(t, ws.OpContinuation, true, text(`2}`)),
		}, want: WSMessage{Text: true, Data: text(`{"a":2}`)}, pongs: 1, pingsAt: 1},
		{name: "a pong alone", frames: [][]byte{clientFrame(t, ws.OpPong, true, nil)}, want: WSMessage{Control: true}, pongs: 1},
		{name: "too large", frames: [][]byte{clientFrame(t, ws.OpText, false, bytes.Repeat([]byte("x"), 60)), clientFrame(t, ws.OpContinuation, true, bytes.Repeat([]byte("y"), 60))}, want: WSMessage{Text: true, TooLarge: true}},
		{name: "past the hard limit", frames: [][]byte{clientFrame(t, ws.OpText, true, bytes.Repeat([]byte("x"), 300))}, code: CloseTooBig},
		{name: "unmasked", frames: [][]byte{clientFrame(t, ws.OpText, true, text("{}"), unmasked)}, code: CloseProtocolError},
		{name: "reserved bits", frames: [][]byte{clientFrame(t, ws.OpText, true, text("{}"), rsv)}, code: CloseProtocolError},
		{name: "reserved opcode", frames: [][]byte{clientFrame(t, ws.OpCode(0x3), true, text("{}"))}, code: CloseProtocolError},
		{name: "continuation first", frames: [][]byte{clientFrame(t, ws.OpContinuation, true, text("{}"))}, code: CloseProtocolError},
		{name: "a message inside a message", frames: [][]byte{clientFrame(t, ws.OpText, false, text("{")), clientFrame(t, ws.OpText, true, text("}"))}, code: CloseProtocolError},
		{name: "a fragmented ping", frames: [][]byte{clientFrame(t, ws.OpPing, false, nil)}, code: CloseProtocolError},
		{name: "a long ping", frames: [][]byte{clientFrame(t, ws.OpPing, true, bytes.Repeat([]byte("p"), 126))}, code: CloseProtocolError},
		{name: "a close with half a code", frames: [][]byte{clientFrame(t, ws.OpClose, true, []byte{3})}, code: CloseProtocolError},
		{name: "close", frames: [][]byte{clientFrame(t, ws.OpClose, true, ws.NewCloseFrameBody(4000, "bye"))}, closed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tcpPair(t)
			w, o, _, release := wireWithOutbox(t, server)
			release()
			go client.Write(bytes.Join(tc.frames, nil))
			pongs := 0
			m, err := w.ReadMessage(bufio.NewReader(w), 100, 200, func() { pongs++ })
			var proto *WSProtocolError
			var closed *WSCloseError
			switch {
			case tc.code != 0:
				if !errors.As(err, &proto) || proto.Code != tc.code {
					t.Fatalf("err %v, want a protocol error %d", err, tc.code)
				}
				return
			case tc.closed:
				if !errors.As(err, &closed) || closed.Code != 4000 || closed.Reason != "bye" {
					t.Fatalf("err %v, want the close 4000 bye", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if m.Text != tc.want.Text || !bytes.Equal(m.Data, tc.want.Data) || m.TooLarge != tc.want.TooLarge || m.Control != tc.want.Control {
				t.Fatalf("got %+v, want %+v", m, tc.want)
			}
			if pongs != tc.pongs {
				t.Fatalf("%d pongs told, want %d", pongs, tc.pongs)
			}
			waitIdle(t, o)
			server.Close()
			f, _ := readFrames(client)
			n := 0
			for _, fr := range f {
				if fr.op == 0xa && string(fr.payload) == "p" {
					n++
				}
			}
			if n != tc.pingsAt {
				t.Fatalf("%d pongs written, want %d", n, tc.pingsAt)
			}
		})
	}
}
