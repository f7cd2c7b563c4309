//go:build unix

package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// recordingCloser records why an outbox closed.
type recordingCloser struct{ closed chan error }

func (c recordingCloser) CloseWire(reason error) { c.closed <- reason }

// wireWithOutbox is a WS wire on server with an outbox whose writer is held
// until release is called.
func wireWithOutbox(t *testing.T, server *net.TCPConn) (*WS, *Outbox, chan error, func()) {
	w := &WS{Conn: server, socket: newSocket(server, 10*time.Second)}
	w.stop = &w.stopped
	rc := recordingCloser{closed: make(chan error, 1)}
	o := NewOutbox(w, rc, 64<<20)
	w.SetOutbox(o)
	start := make(chan struct{})
	o.Spawn = func(f func()) {
		go func() {
			<-start
			f()
		}()
	}
	return w, o, rc.closed, func() { close(start) }
}

type wsTestFrame struct {
	op      byte
	payload []byte
}

// readFrames parses unmasked frames from r until it ends.
func readFrames(r io.Reader) ([]wsTestFrame, error) {
	br := bufio.NewReader(r)
	var out []wsTestFrame
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
		if h[0]&0x80 == 0 || h[0]&0x70 != 0 || h[1]&0x80 != 0 {
			return out, fmt.Errorf("frame %d: bad header % x", len(out), h)
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(br, e[:]); err != nil {
				return out, err
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(br, e[:]); err != nil {
				return out, err
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		if n > 1<<20 {
			return out, fmt.Errorf("frame %d: length %d", len(out), n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return out, err
		}
		out = append(out, wsTestFrame{h[0] & 0x0f, p})
	}
}

// parseAll parses the frames r sends until it ends, on a goroutine.
func parseAll(r io.Reader) <-chan func() ([]wsTestFrame, error) {
	out := make(chan func() ([]wsTestFrame, error), 1)
	go func() {
		f, err := readFrames(r)
		out <- func() ([]wsTestFrame, error) { return f, err }
	}()
	return out
}

func burstFrames(n int) (frames [][]byte, payloads [][]byte) {
	for i := range n {
		p := fmt.Appendf(nil, `{"i":%d,"data":"%s"}`, i, bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10))
		payloads = append(payloads, p)
		frames = append(frames, WSText(p))
	}
	return frames, payloads
}

// Pongs and close frames share the socket with the node's frames: a pong
// queued while one of a shared run's frames is part written waits behind
// the run, and a close frame goes out after the rest of that frame,
// ending the queue. The peer sees only whole frames, in order.
func TestPongAndCloseNeverSplitTheNodes(t *testing.T) {
	closeFrame := []byte{0x88, 0x02, 0x0f, 0xa8} // 4008
	frames, payloads := burstFrames(8)

	t.Run("pong", func(t *testing.T) {
		server, client := tcpPair(t)
		w, o, _, release := wireWithOutbox(t, server)
		parsed := parseAll(client)
		if !o.OfferWith(func() Queued { return Shared(frames) }) {
			t.Fatal("offer refused")
		}
		w.mu.Lock()
		part := w.rest != nil
		w.mu.Unlock()
		if !part {
			t.Fatal("the socket took the run whole, or nothing: no frame is part written")
		}
		w.Pong([]byte("pong"))
		release()
		waitIdle(t, o)
		server.Close()
		f, err := (<-parsed)()
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != len(frames)+1 {
			t.Fatalf("%d frames, want %d", len(f), len(frames)+1)
		}
		for i, p := range payloads {
			if f[i].op != 1 || !bytes.Equal(f[i].payload, p) {
				t.Fatalf("frame %d: op %d, %d bytes; want text, %d bytes", i, f[i].op, len(f[i].payload), len(p))
			}
		}
		if last := f[len(f)-1]; last.op != 0xa || string(last.payload) != "pong" {
			t.Fatalf("last frame op %d %q, want the pong", last.op, last.payload)
		}
	})

	t.Run("close", func(t *testing.T) {
		server, client := tcpPair(t)
		w, o, closed, release := wireWithOutbox(t, server)
		parsed := parseAll(client)
		if !o.OfferWith(func() Queued { return Shared(frames) }) {
			t.Fatal("offer refused")
		}
		if err := w.WriteClose(4008, ""); err != nil {
			t.Fatalf("WriteClose: %v", err)
		}
		release()
		if err := <-closed; err == nil {
			t.Fatal("the queue went on after the close frame")
		}
		server.Close()
		f, err := (<-parsed)()
		if err != nil {
			t.Fatal(err)
		}
		if len(f) < 2 {
			t.Fatalf("%d frames, want at least the part-written one and the close", len(f))
		}
		for i, fr := range f[:len(f)-1] {
			if fr.op != 1 || !bytes.Equal(fr.payload, payloads[i]) {
				t.Fatalf("frame %d: op %d, %d bytes; want text, %d bytes", i, fr.op, len(fr.payload), len(payloads[i]))
			}
		}
		if last := f[len(f)-1]; last.op != 0x8 || !bytes.Equal(last.payload, closeFrame[2:]) {
			t.Fatalf("last frame op %d % x, want the close", last.op, last.payload)
		}
	})
}

func TestWSText(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		p := bytes.Repeat([]byte{'x'}, n)
		f, err := readFrames(bytes.NewReader(WSText(p)))
		if err != nil || len(f) != 1 || f[0].op != 1 || !bytes.Equal(f[0].payload, p) {
			t.Fatalf("wsText of %d bytes: %v, %d frames", n, err, len(f))
		}
		if got := WSPayload(WSText(p)); !bytes.Equal(got, p) {
			t.Fatalf("WSPayload of a frame of %d bytes: %d bytes", n, len(got))
		}
	}
}
