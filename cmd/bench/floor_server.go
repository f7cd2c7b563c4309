package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// floorHeader is the response head the node writes for a hijacked stream.
const floorHeader = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\n" +
	"Transfer-Encoding: chunked\r\n\r\n"

// floorServer is the least a push server can do: hold SSE connections and,
// for each message, write one identical chunked SSE frame to each with a
// single write. It reads the messages' data, one per line, from stdin; it
// exits when stdin closes. Its CPU per delivery is the floor the node's is
// compared with.
type floorServer struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// floorRequestTimeout bounds the wait for a connection's request.
const floorRequestTimeout = 10 * time.Second

// runFloorServer is the hidden subcommand "floor-server".
func runFloorServer(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("floor-server takes no arguments")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", l.Addr())
	return serveFloor(l, os.Stdin)
}

// serveFloor serves SSE on l and broadcasts each line of in, until in ends.
func serveFloor(l net.Listener, in io.Reader) error {
	s := &floorServer{conns: map[net.Conn]struct{}{}}
	s.wg.Go(func() { s.accept(l) })
	err := s.broadcast(in)
	l.Close()
	s.closeAll()
	s.wg.Wait()
	return err
}

func (s *floorServer) accept(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.serve(conn) })
	}
}

// serve answers one SSE request with the header and a welcome, then parks
// on a read until the client goes away, as the node does.
func (s *floorServer) serve(conn net.Conn) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(floorRequestTimeout))
	if _, err := http.ReadRequest(bufio.NewReaderSize(conn, 4096)); err != nil {
		return
	}
	conn.SetReadDeadline(time.Time{})
	welcome := chunk([]byte("retry: 2000\nid: 0-0\nevent: push.welcome\ndata: {\"node\":\"floor\"}\n\n"))
	if _, err := conn.Write(append([]byte(floorHeader), welcome...)); err != nil {
		return
	}
	if !s.add(conn) {
		return
	}
	var b [1]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			break
		}
	}
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
}

// broadcast frames each line of r as an SSE message and writes it to every
// connection.
func (s *floorServer) broadcast(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for seq := 1; sc.Scan(); seq++ {
		id := strconv.FormatInt(time.Now().UnixMilli(), 10) + "-" + strconv.Itoa(seq)
		frame := chunk(fmt.Appendf(nil, "id: %s\ndata: %s\n\n", id, sc.Bytes()))
		s.mu.Lock()
		for conn := range s.conns {
			if _, err := conn.Write(frame); err != nil {
				conn.Close()
			}
		}
		s.mu.Unlock()
	}
	return sc.Err()
}

// add registers conn for broadcasts, unless the server is closing.
func (s *floorServer) add(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.conns[conn] = struct{}{}
	}
	return !s.closed
}

func (s *floorServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for conn := range s.conns {
		conn.Close()
	}
}

// chunk wraps b as one HTTP/1.1 chunk.
func chunk(b []byte) []byte {
	out := fmt.Appendf(nil, "%x\r\n", len(b))
	out = append(out, b...)
	return append(out, "\r\n"...)
}

// floorSink publishes to a floor server by writing the data to its stdin.
type floorSink struct {
	mu sync.Mutex
	w  io.Writer
}

var _ sink = (*floorSink)(nil)

func (s *floorSink) publish(_ context.Context, _ string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(append(data, '\n'))
	return err
}

func (s *floorSink) close() error { return nil }
