package transport

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/internal/wire"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// benchPayloads are a typical small message and a larger one with a few
// line breaks, which SSE turns into several data lines.
var benchPayloads = []struct {
	name string
	data string
}{
	{"100B", benchPayload(100, 0)},
	{"4KiB", benchPayload(4096, 4)},
}

// benchPayload returns size bytes of JSON-like text with breaks line
// breaks spread through it, the last one a CRLF.
func benchPayload(size, breaks int) string {
	b := []byte(strings.Repeat(`{"k":"value","n":12345},`, size/24+1)[:size])
	for i := 1; i <= breaks; i++ {
		b[i*size/(breaks+1)] = '\n'
	}
	if breaks > 0 {
		at := breaks * size / (breaks + 1)
		b[at-1], b[at] = '\r', '\n'
	}
	return string(b)
}

func benchMessage(channel, event, data string) *hub.Message {
	return &hub.Message{Channel: channel, Entry: store.Entry{
		ID: protocol.ID{Ms: 1_767_225_600_000, Seq: 7}, Event: event, Data: data,
	}}
}

func BenchmarkSSEFrame(b *testing.B) {
	for _, p := range benchPayloads {
		m := benchMessage("news", "", p.data)
		b.Run("raw/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p.data)))
			for b.Loop() {
				sseFrame(m)
			}
		})
		b.Run("chunked/"+p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p.data)))
			for b.Loop() {
				sseChunkedFrame(m)
			}
		})
	}
}

func BenchmarkAppendSSEData(b *testing.B) {
	for _, p := range benchPayloads {
		b.Run(p.name, func(b *testing.B) {
			buf := make([]byte, 0, 2*len(p.data))
			b.ReportAllocs()
			b.SetBytes(int64(len(p.data)))
			for b.Loop() {
				buf = protocol.AppendSSEData(buf[:0], p.data)
			}
		})
	}
}

// BenchmarkSSEConnFrame measures one connection's share of a fan-out: the
// shared frame is already built, so what remains is the per-connection
// work. With several channels that is the connection's own cursor as the id
// line, and the chunk framing around it.
func BenchmarkSSEConnFrame(b *testing.B) {
	hb := benchHub(b)
	tests := []struct {
		name     string
		channels []string
		chunked  bool
	}{
		{"channels=1/chunked", []string{"b"}, true},
		{"channels=3/raw", []string{"a", "b", "c"}, false},
		{"channels=3/chunked", []string{"a", "b", "c"}, true},
	}
	for _, tt := range tests {
		for _, p := range benchPayloads {
			b.Run(tt.name+"/"+p.name, func(b *testing.B) {
				c, subs := benchSSEConn(b, hb, tt.channels, tt.chunked)
				sub := subs[len(subs)/2]
				msgs := []*hub.Message{benchMessage(sub.Channel(), "", p.data)}
				q := c.messages(sub, msgs)
				if f := bytesOf(&q); !strings.Contains(string(f), "id: "+protocol.EncodeCursor(c.hash, c.pos)+"\n") {
					b.Fatalf("frame %.80q lacks the connection's cursor", f)
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(p.data)))
				for b.Loop() {
					c.messages(sub, msgs)
				}
			})
		}
	}
}

// benchHub returns a hub on a Redis of its own. It is never run: joining
// only reads a channel's end, which is all sseConn.messages needs of a Sub.
func benchHub(b *testing.B) *hub.Hub {
	b.Helper()
	st, err := store.New(store.Config{Client: testredis.Own(b).Client(b), Prefix: testredis.Prefix(b)})
	if err != nil {
		b.Fatal(err)
	}
	bell, err := store.NewDoorbell(store.DoorbellConfig{Store: st, Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	hb, err := hub.New(hub.Config{Store: st, Bell: bell})
	if err != nil {
		b.Fatal(err)
	}
	return hb
}

// benchServer is a server of the transports that serves nothing: what the
// encoders need of one.
func benchServer(hb *hub.Hub) *Server {
	return &Server{hub: hb, reg: NewRegistry("bench", func() int64 { return 0 })}
}

// benchSSEConn returns an SSE connection with a subscription to each of
// channels (sorted), left at cleanup.
func benchSSEConn(b *testing.B, hb *hub.Hub, channels []string, chunked bool) (*sseConn, []*hub.Sub) {
	b.Helper()
	c := &sseConn{channels: channels, hash: protocol.ChannelSetHash(channels),
		chunked: chunked, pos: make([]protocol.ID, len(channels))}
	c.srv, c.a, c.client = benchServer(hb), c, "bench"
	subs := make([]*hub.Sub, len(channels))
	for i, ch := range channels {
		sub, err := hb.Join(context.Background(), &c.conn, ch, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { hb.Leave(sub) })
		subs[i] = sub
	}
	return c, subs
}

func BenchmarkWSMessageFrame(b *testing.B) {
	for _, event := range []string{"", "update"} {
		for _, p := range benchPayloads {
			m := benchMessage("news", event, p.data)
			b.Run(fmt.Sprintf("event=%q/%s", event, p.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(p.data)))
				for b.Loop() {
					wsMessageFrame(m)
				}
			})
		}
	}
}

func BenchmarkCursor(b *testing.B) {
	for _, n := range []int{1, 8} {
		channels := make([]string, n)
		pos := make([]protocol.ID, n)
		for i := range n {
			channels[i] = fmt.Sprintf("room.%02d", i)
			pos[i] = protocol.ID{Ms: 1_767_225_600_000 + uint64(i)*977, Seq: uint64(i)}
		}
		hash := protocol.ChannelSetHash(channels)
		cursor := protocol.EncodeCursor(hash, pos)
		b.Run(fmt.Sprintf("encode/channels=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				protocol.EncodeCursor(hash, pos)
			}
		})
		b.Run(fmt.Sprintf("decode/channels=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(cursor)))
			for b.Loop() {
				if _, err := protocol.DecodeCursor(cursor, channels); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBurst measures what a burst costs the delivery path per
// connection: one read's run of messages offered to 1,000 subscribers, as
// the hub's fan-out offers it, for SSE with one channel (frames shared),
// SSE with three (bodies shared, id lines owned) and WebSocket. "taken" is
// a socket that takes everything at once (the path's own CPU, no system
// calls); "queued" is one that takes nothing, so the run stays queued (the
// memory a backed-up connection holds). One op is one burst to every
// connection; allocations and bytes are per delivery (message × connection).
func BenchmarkBurst(b *testing.B) {
	hb := benchHub(b)
	for _, shape := range []struct {
		name    string
		entries int
		size    int
	}{{"1000x1KiB", 1000, 1 << 10}, {"100x64KiB", 100, 64 << 10}} {
		for _, kind := range []string{"sse", "sse-3-channels", "ws"} {
			for _, sock := range []string{"taken", "queued"} {
				b.Run(shape.name+"/"+kind+"/"+sock, func(b *testing.B) {
					benchmarkBurst(b, hb, kind, sock == "taken", shape.entries, shape.size)
				})
			}
		}
	}
}

func benchmarkBurst(b *testing.B, hb *hub.Hub, kind string, taken bool, entries, size int) {
	const conns = 1000
	channels := []string{"b"}
	if kind == "sse-3-channels" {
		channels = []string{"a", "b", "c"}
	}
	type target struct {
		conn hub.Conn
		sub  *hub.Sub
		box  *wire.Outbox
	}
	sock := &benchWire{taken: taken}
	var targets []target
	for range conns {
		var t target
		if kind == "ws" {
			c := &wsConn{}
			c.srv, c.a = benchServer(hb), c
			c.box = wire.NewOutbox(sock, c, 1<<30)
			t.conn, t.box = &c.conn, c.box
			t.sub = benchJoin(b, hb, &c.conn, "b")
		} else {
			c, subs := benchSSEConn(b, hb, channels, true)
			c.box = wire.NewOutbox(sock, c, 1<<30)
			t.conn, t.box, t.sub = &c.conn, c.box, subs[len(subs)/2]
		}
		t.box.Spawn = func(func()) {} // a backed-up socket: its writer never runs
		targets = append(targets, t)
	}
	batch := &store.Batch{Entries: make([]store.Entry, entries)}
	data := benchPayload(size, 0)
	var ms uint64
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		ms++
		for i := range batch.Entries {
			batch.Entries[i] = store.Entry{ID: protocol.ID{Ms: ms, Seq: uint64(i)}, Data: data}
		}
		msgs := hub.Messages("b", batch)
		for _, t := range targets {
			if !t.conn.Offer(t.sub, msgs) {
				b.Fatal("offer refused")
			}
			t.box.Drop()
		}
	}
	runtime.ReadMemStats(&after)
	deliveries := float64(b.N * conns * entries)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/deliveries, "B/delivery")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
}

// benchWire is a socket that takes everything (taken) or nothing.
type benchWire struct{ taken bool }

func (w *benchWire) WriteFrames([]wire.Queued) error { return nil }
func (w *benchWire) TryWrite(q *wire.Queued) error {
	if w.taken {
		q.Advance(q.Left())
	}
	return nil
}

// bytesOf returns what is left of q as one slice.
func bytesOf(q *wire.Queued) []byte {
	var b []byte
	q.Each(func(p []byte) bool {
		b = append(b, p...)
		return true
	})
	return b
}

func benchJoin(b *testing.B, hb *hub.Hub, c hub.Conn, channel string) *hub.Sub {
	sub, err := hb.Join(context.Background(), c, channel, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { hb.Leave(sub) })
	return sub
}
