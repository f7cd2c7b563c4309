package store

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/testredis"
)

// stallProxy forwards TCP connections to Redis and, on freeze, silently
// stops forwarding on the pub/sub connections open at that moment while
// keeping them open: the stall a failover can leave behind, where the
// connection looks fine and nothing arrives.
type stallProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  []*proxied
	wg     sync.WaitGroup
	frozen atomic.Int64 // connections frozen so far
}

type proxied struct {
	client, server net.Conn
	pubsub, frozen atomic.Bool
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxied{client: c, server: s}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pc, c, s, true)
		go p.pipe(pc, s, c, false)
	}
}

// pipe copies from src to dst until either closes; on a frozen connection
// it reads and drops.
func (p *stallProxy) pipe(pc *proxied, src, dst net.Conn, fromClient bool) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromClient && bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe")) {
				pc.pubsub.Store(true)
			}
			if !pc.frozen.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze stalls every pub/sub connection open now and returns how many.
func (p *stallProxy) freeze() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pc := range p.conns {
		if pc.pubsub.Load() && !pc.frozen.Swap(true) {
			n++
		}
	}
	p.frozen.Add(int64(n))
	return n
}

func (p *stallProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, pc := range p.conns {
		pc.client.Close()
		pc.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// A pub/sub connection that stalls without breaking (no error, no
// notification) is caught by the probe and replaced: the doorbell
// reports it, resubscribes on a new connection, is proven again, and a
// channel published to during the stall is read.
func TestDoorbellHealsStalledSubscription(t *testing.T) {
	t.Parallel()
	p := startStallProxy(t, redisAddr(t))
	rdb := redis.NewClient(&redis.Options{Addr: p.ln.Addr().String()})
	t.Cleanup(func() { rdb.Close() })
	s := newTestStore(t, Config{Client: rdb})
	logs := &logBuffer{}
	d, b := startDoorbell(t, s, logs)
	d.Watch("a")
	waitProven(t, d)
	waitRang(t, b, "a", 1)
	if n := p.freeze(); n != 1 {
		t.Fatalf("froze %d pub/sub connections, want 1", n)
	}
	before := b.rang("a")
	xadd(t, s, "a", "*", "during the stall")
	checkFor(t, doorbellWait, func() error { return logs.has("doorbell probe lost") })
	waitProven(t, d)
	// The stalled connection's wake-up was lost; the new connection's
	// subscription (or the poll meanwhile) rang the channel.
	waitRang(t, b, "a", before+1)
	n := b.rang("a")
	xadd(t, s, "a", "*", "after")
	waitRang(t, b, "a", n+1)
	if st := d.Shards()[0]; st.Delivery != DeliveryNotify {
		t.Errorf("shard after healing: %+v", st)
	}
}

func redisAddr(t *testing.T) string {
	t.Helper()
	opt, err := redis.ParseURL(testredis.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	return opt.Addr
}
