package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// relayReadCount bounds the entries one XREAD returns.
const relayReadCount = 1000

// burstRelay is the least a push server over Redis Streams can do: it
// reads one stream once, encodes each entry once per transport, and writes
// that same frame to every SSE and WebSocket subscriber with blocking
// writes from the reading goroutine. It keeps no queue, so a slow client
// holds up everyone and nothing is ever dropped; it has no resume either.
// The node's burst figures are compared with its.
type burstRelay struct {
	rdb     *redis.Client
	stream  string
	channel string

	mu     sync.Mutex
	pos    string // the last entry ID relayed, guarded by mu
	sse    map[net.Conn]struct{}
	ws     map[*websocket.Conn]struct{}
	closed bool
}

// runBurstRelay is the hidden subcommand "burst-relay". It exits when
// stdin closes.
func runBurstRelay(args []string) error {
	fs := flag.NewFlagSet("burst-relay", flag.ContinueOnError)
	redisURL := fs.String("redis-url", "", "Redis holding the stream")
	stream := fs.String("stream", "", "the stream key to relay")
	channel := fs.String("channel", "", "the channel name WebSocket frames carry")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opt, err := redis.ParseURL(*redisURL)
	if err != nil || *stream == "" {
		return fmt.Errorf("burst-relay needs -redis-url and -stream: %v", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	rl := &burstRelay{rdb: rdb, stream: *stream, channel: *channel, pos: "0-0",
		sse: map[net.Conn]struct{}{}, ws: map[*websocket.Conn]struct{}{}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	// Reading starts before the address is announced, so no entry added
	// after a client is ready is missed.
	start, err := rl.newest(ctx)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rl, ReadHeaderTimeout: floorRequestTimeout}
	go srv.Serve(l)
	fmt.Printf("listening %s\n", l.Addr())
	err = rl.relay(ctx, start)
	srv.Close()
	rl.closeAll()
	return err
}

// newest returns the ID of the stream's last entry, "0-0" when it has none.
func (rl *burstRelay) newest(ctx context.Context) (string, error) {
	msgs, err := rl.rdb.XRevRangeN(ctx, rl.stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("burst-relay: failed to read %s: %w", rl.stream, err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

func (rl *burstRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/sse":
		rl.serveSSE(w)
	case "/ws":
		rl.serveWS(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveSSE hijacks the connection and answers as the node does: the
// header, a welcome whose ID is the position, then entries as chunks.
func (rl *burstRelay) serveSSE(w http.ResponseWriter) {
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if !rl.addSSE(conn) {
		return
	}
	for {
		if _, err := brw.ReadByte(); err != nil {
			break
		}
	}
	rl.mu.Lock()
	delete(rl.sse, conn)
	rl.mu.Unlock()
}

// addSSE writes the head and welcome and registers conn, under the lock so
// that the welcome's ID is exactly where its stream starts.
func (rl *burstRelay) addSSE(conn net.Conn) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	welcome := chunk(fmt.Appendf(nil, "retry: 2000\nid: %s\nevent: %s\ndata: {\"node\":\"bare\"}\n\n", rl.pos, protocol.EventWelcome))
	if rl.closed {
		return false
	}
	if _, err := conn.Write(append([]byte(floorHeader), welcome...)); err != nil {
		return false
	}
	rl.sse[conn] = struct{}{}
	return true
}

// serveWS accepts a WebSocket subscribed at connect (?channel=), as the
// tool's clients are, and answers with the subscribed frame.
func (rl *burstRelay) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	c.SetReadLimit(wsReadLimit)
	if !rl.addWS(r.Context(), c) {
		c.CloseNow()
		return
	}
	<-c.CloseRead(context.Background()).Done()
	rl.mu.Lock()
	delete(rl.ws, c)
	rl.mu.Unlock()
}

func (rl *burstRelay) addWS(ctx context.Context, c *websocket.Conn) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	sub, _ := json.Marshal(protocol.ServerFrame{Type: protocol.TypeSubscribed, Channel: rl.channel, Position: rl.pos})
	if rl.closed || c.Write(ctx, websocket.MessageText, sub) != nil {
		return false
	}
	rl.ws[c] = struct{}{}
	return true
}

// relay reads the stream after start until ctx ends and sends each entry.
func (rl *burstRelay) relay(ctx context.Context, start string) error {
	last := start
	var sse []net.Conn
	var ws []*websocket.Conn
	for ctx.Err() == nil {
		res, err := rl.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{rl.stream, last}, Count: relayReadCount, Block: time.Second}).Result()
		if errors.Is(err, redis.Nil) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("burst-relay: failed to read %s: %w", rl.stream, err)
		}
		for _, msg := range res[0].Messages {
			data, _ := msg.Values["data"].(string)
			sse, ws = rl.snapshot(msg.ID, sse[:0], ws[:0])
			rl.send(sse, ws, msg.ID, data)
			last = msg.ID
		}
	}
	return nil
}

// snapshot moves the position to id and returns who should get that entry.
func (rl *burstRelay) snapshot(id string, sse []net.Conn, ws []*websocket.Conn) ([]net.Conn, []*websocket.Conn) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.pos = id
	for c := range rl.sse {
		sse = append(sse, c)
	}
	for c := range rl.ws {
		ws = append(ws, c)
	}
	return sse, ws
}

// send encodes the entry once per transport in use and writes the same
// bytes to every subscriber of it; a failed write closes that subscriber.
func (rl *burstRelay) send(sse []net.Conn, ws []*websocket.Conn, id, data string) {
	if len(sse) > 0 {
		frame := relaySSEFrame(id, data)
		for _, c := range sse {
			if _, err := c.Write(frame); err != nil {
				c.Close()
			}
		}
	}
	if len(ws) > 0 {
		frame := relayWSFrame(rl.channel, id, data)
		for _, c := range ws {
			if err := c.Write(context.Background(), websocket.MessageText, frame); err != nil {
				c.CloseNow()
			}
		}
	}
}

// relaySSEFrame is the node's wire format for a one-line entry, as one
// HTTP chunk.
func relaySSEFrame(id, data string) []byte {
	return chunk(fmt.Appendf(nil, "id: %s\ndata: %s\n\n", id, data))
}

// relayWSFrame is the node's message frame.
func relayWSFrame(channel, id, data string) []byte {
	return (&protocol.ServerFrame{Type: protocol.TypeMessage, Channel: channel, ID: id, Data: &data}).Encode()
}

func (rl *burstRelay) closeAll() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.closed = true
	for c := range rl.sse {
		c.Close()
	}
	for c := range rl.ws {
		c.CloseNow()
	}
}
