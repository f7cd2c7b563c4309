package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// fakeNode is a node's local side with a fixed set of clients: the
// cluster's own code, gossip and sockets are all real.
type fakeNode struct {
	mu        sync.Mutex
	clients   map[string]Client
	channels  map[string][]string // client → channels
	delivered []Direct
	block     chan struct{} // when set, Presence waits on it: a member that does not answer
	draining  atomic.Bool
}

func newFake() *fakeNode {
	return &fakeNode{clients: map[string]Client{}, channels: map[string][]string{}}
}

func (f *fakeNode) add(node, id string, channels ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[id] = Client{ID: id, Node: node, Transport: "sse", Since: time.Unix(1, 0).UTC()}
	f.channels[id] = channels
}

func (f *fakeNode) Load() Load {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Load{Connections: Conns{"sse": len(f.clients), "ws": 0}}
}

func (f *fakeNode) Draining() bool { return f.draining.Load() }

func (f *fakeNode) PresenceCount(channel string) (clients, users []string) {
	for _, c := range f.Presence(channel) {
		clients = append(clients, c.ID)
	}
	return clients, nil
}

func (f *fakeNode) Presence(channel string) []Client {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Client
	for id, chs := range f.channels {
		if slices.Contains(chs, channel) {
			out = append(out, f.clients[id])
		}
	}
	return out
}

func (f *fakeNode) Clients(after string, limit int) []Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Client
	for id, c := range f.clients {
		if id > after {
			out = append(out, c)
		}
	}
	sortClients(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func (f *fakeNode) Deliver(client string, m Direct) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.clients[client]; !ok {
		return 0
	}
	f.delivered = append(f.delivered, m)
	return 1
}

func (f *fakeNode) Disconnect(client string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.clients[client]; !ok {
		return 0
	}
	delete(f.clients, client)
	return 1
}

type member struct {
	*Cluster
	local  *fakeNode
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// stop leaves the cluster and waits for Run.
func (m *member) stop() error {
	m.cancel()
	<-m.done
	return m.err
}

var nextHost atomic.Int32

// freeHost returns a loopback address of its own for a member.
func freeHost() string {
	return fmt.Sprintf("127.0.0.%d", 10+nextHost.Add(1)%200)
}

func startMember(t *testing.T, name string, join []string, mod ...func(*Config)) *member {
	t.Helper()
	local := newFake()
	cfg := Config{
		Name: name, Bind: net.JoinHostPort(freeHost(), "0"), Join: join, Local: local,
		Profile: "local", UpdateInterval: 200 * time.Millisecond, QueryTimeout: 2 * time.Second,
	}
	for _, f := range mod {
		f(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{Cluster: c, local: local, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		m.err = c.Run(ctx)
	}()
	checkFor(t, 5*time.Second, func() error {
		if c.GossipAddr() == "" {
			return errors.New("gossip not started")
		}
		return nil
	})
	t.Cleanup(func() {
		cancel()
		<-m.done
	})
	return m
}

func checkFor(t testing.TB, total time.Duration, fn func() error) {
	t.Helper()
	waitfor.Check(t, total, fn)
}

func states(c *Cluster) map[string]string {
	out := map[string]string{}
	for _, m := range c.Members() {
		out[m.Name] = m.State
	}
	return out
}

func wantStates(c *Cluster, want map[string]string) func() error {
	return func() error {
		got := states(c)
		for name, st := range want {
			if got[name] != st {
				return fmt.Errorf("%s sees %v, want %v", c.Name(), got, want)
			}
		}
		return nil
	}
}

func threeMembers(t *testing.T, mod ...func(*Config)) (a, b, c *member) {
	a = startMember(t, "a", nil, mod...)
	b = startMember(t, "b", []string{a.GossipAddr()}, mod...)
	c = startMember(t, "c", []string{a.GossipAddr()}, mod...)
	all := map[string]string{"a": StateAlive, "b": StateAlive, "c": StateAlive}
	for _, m := range []*member{a, b, c} {
		checkFor(t, 10*time.Second, wantStates(m.Cluster, all))
	}
	return a, b, c
}

func TestMembershipConvergesAndLeaves(t *testing.T) {
	t.Parallel()
	a, b, c := threeMembers(t)
	b.local.add("b", "client-b1", "news")
	checkFor(t, 5*time.Second, func() error {
		for _, m := range a.Members() {
			if m.Name == "b" && m.Connections["sse"] == 1 {
				return nil
			}
		}
		return errors.New("b's load not gossiped to a")
	})
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, wantStates(a.Cluster, map[string]string{"c": StateLeft}))
	checkFor(t, 10*time.Second, wantStates(b.Cluster, map[string]string{"c": StateLeft}))
}

func TestQueriesAcrossMembers(t *testing.T) {
	t.Parallel()
	a, b, c := threeMembers(t)
	a.local.add("a", "id-a", "news")
	b.local.add("b", "id-b", "news", "sport")
	c.local.add("c", "id-c", "sport")

	clients, ans := a.Presence(context.Background(), "news")
	if ans.Partial || len(ans.Missing) != 0 {
		t.Fatalf("presence answer partial: %+v", ans)
	}
	if ids := idsOf(clients); !slices.Equal(ids, []string{"id-a", "id-b"}) {
		t.Fatalf("presence of news = %v", ids)
	}

	page, more, _ := c.Clients(context.Background(), "", 2)
	if ids := idsOf(page); !more || !slices.Equal(ids, []string{"id-a", "id-b"}) {
		t.Fatalf("first page %v more=%v", ids, more)
	}
	page, more, _ = c.Clients(context.Background(), "id-b", 2)
	if ids := idsOf(page); more || !slices.Equal(ids, []string{"id-c"}) {
		t.Fatalf("second page %v more=%v", ids, more)
	}

	d, err := a.Deliver(context.Background(), "id-c", Direct{ID: "m1", Data: "hi"})
	if err != nil || d.Connections != 1 || !slices.Equal(d.Nodes, []string{"c"}) {
		t.Fatalf("deliver to id-c: %+v %v", d, err)
	}
	if got := c.local.delivered; len(got) != 1 || got[0].Data != "hi" {
		t.Fatalf("c received %+v", got)
	}
	if _, err := a.Deliver(context.Background(), "nobody", Direct{ID: "m2", Data: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deliver to an unknown client: %v", err)
	}
	if d, err := b.Disconnect(context.Background(), "id-a"); err != nil || d.Connections != 1 {
		t.Fatalf("disconnect id-a: %+v %v", d, err)
	}
	if _, err := b.Disconnect(context.Background(), "id-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second disconnect of id-a: %v", err)
	}
}

func TestPartialAnswer(t *testing.T) {
	t.Parallel()
	a, b, c := threeMembers(t)
	block := make(chan struct{})
	defer close(block)
	c.local.block = block
	b.local.add("b", "id-b", "news")
	clients, ans := a.Presence(context.Background(), "news")
	if !ans.Partial || !slices.Equal(ans.Missing, []string{"c"}) {
		t.Fatalf("answer %+v, want partial with c missing", ans)
	}
	if ids := idsOf(clients); !slices.Equal(ids, []string{"id-b"}) {
		t.Fatalf("presence = %v", ids)
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef")
	a := startMember(t, "a", nil, func(c *Config) { c.Key = key })
	b := startMember(t, "b", []string{a.GossipAddr()}, func(c *Config) { c.Key = key })
	checkFor(t, 10*time.Second, wantStates(a.Cluster, map[string]string{"b": StateAlive}))
	intruder := startMember(t, "x", []string{a.GossipAddr()}, func(c *Config) { c.Key = []byte("fedcba9876543210") })
	plain := startMember(t, "y", []string{a.GossipAddr()})
	checkFor(t, 10*time.Second, func() error {
		if intruder.joinFailures.Load() < 2 || plain.joinFailures.Load() < 2 {
			return errors.New("the intruders have not tried twice yet")
		}
		return nil
	})
	for _, m := range []*member{intruder, plain} {
		if st := states(m.Cluster); len(st) != 1 {
			t.Errorf("%s joined with the wrong key: sees %v", m.Name(), st)
		}
	}
	for _, m := range []*member{a, b} {
		if st := states(m.Cluster); len(st) != 2 {
			t.Errorf("%s sees %v", m.Name(), st)
		}
	}
}

func TestMalformedMessagesAreDropped(t *testing.T) {
	t.Parallel()
	a, b, _ := threeMembers(t)
	b.local.add("b", "id-b", "news")
	node := a.view.node("b")
	for _, junk := range [][]byte{{'P'}, []byte("P\x01{"), []byte("P\x01{\"i\":0}"), []byte("Q\x01{}"), []byte("P\x01{\"i\":7,\"f\":\"a\",\"o\":\"nope\"}")} {
		if err := a.mlp.Load().SendReliable(node, junk); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, 5*time.Second, func() error {
		if b.rpc.malformed.Load() < 5 {
			return fmt.Errorf("b counted %d malformed", b.rpc.malformed.Load())
		}
		return nil
	})
	if clients, ans := a.Presence(context.Background(), "news"); ans.Partial || clients.Len() != 1 {
		t.Fatalf("after junk: %v %+v", clients, ans)
	}
}

func TestAloneAnswersLocally(t *testing.T) {
	t.Parallel()
	local := newFake()
	local.add("solo", "id-1", "news")
	c, err := New(Config{Name: "solo", Local: local})
	if err != nil {
		t.Fatal(err)
	}
	if c.Enabled() {
		t.Fatal("no bind address, yet enabled")
	}
	if ms := c.Members(); len(ms) != 1 || ms[0].Name != "solo" || !ms[0].Self || ms[0].Connections["sse"] != 1 {
		t.Fatalf("members %+v", ms)
	}
	if clients, ans := c.Presence(context.Background(), "news"); ans.Partial || clients.Len() != 1 {
		t.Fatalf("presence %v %+v", clients, ans)
	}
	if _, err := c.Deliver(context.Background(), "other", Direct{}); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := Config{Bind: "nohost", Key: []byte("short"), Profile: "moon", QueryTimeout: -1}.Validate()
	for _, want := range []string{"no member name", "no local node", "bad bind", "key is 5 bytes", "unknown profile", "negative"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestExcess(t *testing.T) {
	t.Parallel()
	m := func(name string, n int, state string, draining bool) Member {
		return Member{Name: name, State: state, Connections: Conns{"sse": n}, Draining: draining}
	}
	cases := []struct {
		name    string
		members []Member
		factor  float64
		want    int
	}{
		{"balanced", []Member{m("a", 100, StateAlive, false), m("b", 100, StateAlive, false)}, 1.25, 0},
		{"new empty node", []Member{m("a", 300, StateAlive, false), m("b", 300, StateAlive, false), m("c", 0, StateAlive, false)}, 1.25, 300 - 250},
		{"a handful over is not worth moving", []Member{m("a", 12, StateAlive, false), m("b", 0, StateAlive, false)}, 1.25, 0},
		{"a small cluster still moves", []Member{m("a", 58, StateAlive, false), m("b", 58, StateAlive, false), m("c", 4, StateAlive, false)}, 1.25, 58 - 50},
		{"within the slack", []Member{m("a", 54, StateAlive, false), m("b", 54, StateAlive, false), m("c", 12, StateAlive, false)}, 1.25, 0},
		{"off", []Member{m("a", 300, StateAlive, false), m("b", 0, StateAlive, false)}, 0, 0},
		{"alone", []Member{m("a", 300, StateAlive, false)}, 1.25, 0},
		{"draining and dead members do not count", []Member{m("a", 100, StateAlive, false), m("b", 0, StateDead, false), m("c", 0, StateAlive, true)}, 1.25, 0},
	}
	for _, tc := range cases {
		if got := Excess(tc.members, "a", tc.factor); got != tc.want {
			t.Errorf("%s: Excess = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte("P\x01{\"i\":1,\"f\":\"a\",\"o\":\"presence\",\"c\":\"news\"}"))
	f.Add([]byte("P\x01{\"i\":2,\"f\":\"b\",\"cs\":[{\"id\":\"x\",\"node\":\"b\"}]}"))
	f.Add([]byte("P\x01{\"i\":3,\"f\":\"b\",\"o\":\"deliver\",\"l\":\"x\",\"d\":{\"id\":\"d\",\"data\":\"hi\"}}"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		if e.ID == 0 || e.From == "" {
			t.Fatalf("accepted an envelope without id or sender: %+v", e)
		}
		again, err := decodeEnvelope(e.encode())
		if err != nil || again.ID != e.ID || again.From != e.From || again.Op != e.Op {
			t.Fatalf("round trip: %+v → %+v, %v", e, again, err)
		}
	})
}

func idsOf(l ClientList) []string {
	cs, err := l.Decode()
	if err != nil {
		panic(err)
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

var _ = memberlist.DefaultLocalConfig

// Members gossip their connections by transport in a map, and still write
// the SSE and WebSocket counts the first format had: a member of either
// format reads the other during a rolling upgrade.
func TestMetaFormatsInteroperate(t *testing.T) {
	t.Parallel()
	// What a member of the first format wrote, as it wrote it.
	v1, err := json.Marshal(struct {
		HTTP    string `json:"h,omitempty"`
		Version string `json:"v,omitempty"`
		SSE     int    `json:"s"`
		WS      int    `json:"w"`
		Subs    int    `json:"u"`
		Started int64  `json:"t"`
		Seq     uint64 `json:"q"`
	}{HTTP: "10.0.0.1:6788", Version: "v1", SSE: 3, WS: 4, Subs: 9, Started: 1, Seq: 2})
	if err != nil {
		t.Fatal(err)
	}
	old, err := decodeMeta(v1)
	if err != nil {
		t.Fatal(err)
	}
	if got := old.conns(); !maps.Equal(got, Conns{"sse": 3, "ws": 4}) || got.Total() != 7 {
		t.Errorf("a first-format member's connections read as %v", got)
	}
	// What this format writes, read by a member of the first format.
	m := meta{Format: metaVersion, Conns: map[string]int{"sse": 1, "ws": 2, "poll": 5}, SSE: 1, WS: 2, Subs: 3}
	b, err := m.encode(512)
	if err != nil {
		t.Fatal(err)
	}
	var first struct {
		SSE int `json:"s"`
		WS  int `json:"w"`
	}
	if err := json.Unmarshal(b, &first); err != nil || first.SSE != 1 || first.WS != 2 {
		t.Errorf("a first-format member reads %s as %+v, %v", b, first, err)
	}
	back, err := decodeMeta(b)
	if err != nil || !maps.Equal(back.conns(), Conns{"sse": 1, "ws": 2, "poll": 5}) {
		t.Errorf("round trip of %s: %v, %v", b, back.conns(), err)
	}
}
