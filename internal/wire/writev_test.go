//go:build unix

package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// One run of frames, shared by the queues of several sockets that take a
// few KiB at a time, is written to each of them whole and in order, and is
// never changed: the frames are compared with a copy taken before, and
// -race sees any write to them while other connections read them. Tiny
// socket buffers make every path run: direct writes cut short, the rest
// queued with an offset into the run, the writer goroutine's blocking
// writev, windows of maxIovecs parts.
func TestSharedRunWrittenToManySockets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	frames := make([][]byte, 300)
	for i := range frames {
		frames[i] = fmt.Appendf(nil, "<%d:%s>", i, bytes.Repeat([]byte{byte('a' + i%26)}, rng.IntN(8000)))
	}
	frames[7] = nil // an empty part is skipped, not written
	before := make([][]byte, len(frames))
	for i, f := range frames {
		before[i] = bytes.Clone(f)
	}

	const sockets = 6
	var want []byte
	var wg sync.WaitGroup
	got := make([][]byte, sockets)
	boxes := make([]*Outbox, sockets)
	for i := range sockets {
		server, client := tcpPair(t)
		w := wireOf(t, server)
		boxes[i] = NewOutbox(w, sseCloser{w}, 64<<20)
		wg.Go(func() { got[i] = slowRead(t, client, uint64(i)) })
	}
	single := []byte("|one frame|")
	var offers sync.WaitGroup
	for _, o := range boxes {
		offers.Go(func() {
			for range 3 {
				if !o.OfferWith(func() Queued { return Shared(frames) }) || !o.Offer(single) {
					t.Error("offer refused")
				}
			}
			o.CloseAfterFlush(errEnd)
		})
	}
	for range 3 {
		want = append(append(want, bytes.Join(frames, nil)...), single...)
	}
	offers.Wait()
	wg.Wait()
	for i, b := range got {
		if !bytes.Equal(b, want) {
			t.Errorf("socket %d got %d bytes, want %d; first difference at %d", i, len(b), len(want), firstDiff(b, want))
		}
	}
	for i := range frames {
		if !bytes.Equal(frames[i], before[i]) {
			t.Fatalf("frame %d was changed after it was shared", i)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// tcpPair returns both ends of a loopback TCP connection whose buffers
// hold a few KiB.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := s.SyscallConn()
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
	})
	t.Cleanup(func() { s.Close(); c.Close() })
	return s, c.(*net.TCPConn)
}

// wireOf is an SSE wire on a connection, as a hijacked stream has.
func wireOf(t *testing.T, conn *net.TCPConn) *SSE {
	w := &SSE{socket: newSocket(conn, 10*time.Second)}
	if w.raw == nil {
		t.Fatal("no descriptor")
	}
	return w
}

// sseCloser closes an SSE wire when its outbox closes, cleanly.
type sseCloser struct{ w *SSE }

func (c sseCloser) CloseWire(error) { c.w.Close(true) }

// errEnd is a reason to end a connection on purpose.
var errEnd = errors.New("end")

// slowRead reads conn to its end in small pieces, pausing now and then, so
// the writer keeps meeting a full socket.
func slowRead(t *testing.T, conn net.Conn, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0))
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	var out []byte
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf[:1+rng.IntN(len(buf)-1)])
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Error(err)
			return out
		}
		if rng.IntN(20) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}
