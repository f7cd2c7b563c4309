package cluster

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The hand-written encoding is byte for byte what encoding/json writes.
func TestAppendClientIsEncodingJSON(t *testing.T) {
	odd := []string{"", "plain-id_1", `quo"te`, `back\slash`, "tab\tnew\nline", "<script>&", "ünï©ødé", "bad\xffutf8", "\u2028"}
	since := []time.Time{
		time.Unix(1, 0).UTC(),
		time.Date(2026, 12, 7, 21, 48, 39, 123456789, time.UTC),
		time.Date(2026, 12, 7, 21, 48, 39, 120000000, time.FixedZone("x", 5*3600+1800)),
	}
	for i, s := range odd {
		c := Client{ID: s, Node: odd[(i+1)%len(odd)], Transport: odd[(i+2)%len(odd)], Since: since[i%len(since)]}
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendClient(nil, c); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func FuzzAppendClient(f *testing.F) {
	f.Add("id", "node", "sse", int64(1))
	f.Fuzz(func(t *testing.T, id, node, transport string, ns int64) {
		c := Client{ID: id, Node: node, Transport: transport, Since: time.Unix(0, ns).UTC()}
		want, err := json.Marshal(c)
		if err != nil {
			t.Skip() // a year json refuses
		}
		if got := appendClient(nil, c); !bytes.Equal(got, want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}

// randomClients returns n clients on node, one in escape of them with an
// ID JSON escapes (none when escape is 0).
func randomClients(r *rand.Rand, n int, node string, escape int) []Client {
	out := make([]Client, n)
	for i := range out {
		id := fmt.Sprintf("c%05d", r.IntN(n*2))
		if escape > 0 && r.IntN(escape) == 0 {
			id += `"esc\aped`
		}
		out[i] = Client{ID: id, Node: node, Transport: "ws", Since: time.Unix(int64(i), 0).UTC()}
	}
	return out
}

// Lists from several members merge into what sorting them all gives, and
// survive the wire.
func TestMergeClients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all []Client
	var lists []ClientList
	for k, n := range []int{0, 1, 300, 1000, 57} {
		cs := randomClients(r, n, fmt.Sprintf("node-%d", k%3), 50)
		all = append(all, cs...)
		l := encodeClients(slices.Clone(cs))
		// Through the wire: an answer envelope and back.
		e := envelope{ID: 1, From: "x", encoded: &l}
		back, err := decodeEnvelope(e.encode())
		if err != nil {
			t.Fatalf("list of %d: %v", n, err)
		}
		lists = append(lists, clientsOf(back))
	}
	lists = append(lists, encodeClients(nil))
	got, err := mergeClients(lists).Decode()
	if err != nil {
		t.Fatal(err)
	}
	sortClients(all)
	if len(got) != len(all) {
		t.Fatalf("merged %d clients, want %d", len(got), len(all))
	}
	for i := range got {
		if got[i].ID != all[i].ID || got[i].Node != all[i].Node {
			t.Fatalf("at %d: %s@%s, want %s@%s", i, got[i].ID, got[i].Node, all[i].ID, all[i].Node)
		}
	}
	var arr []Client
	if err := json.Unmarshal(mergeClients(lists).AppendJSON(nil), &arr); err != nil || len(arr) != len(all) {
		t.Fatalf("as JSON: %d clients, %v", len(arr), err)
	}
}

// A member that sends structs (an older one) is encoded by the asker.
func TestClientsFromOlderMember(t *testing.T) {
	cs := []Client{{ID: "b", Node: "n"}, {ID: "a", Node: "n"}}
	e := envelope{ID: 1, From: "old", Clients: cs}
	back, err := decodeEnvelope(e.encode())
	if err != nil {
		t.Fatal(err)
	}
	if ids := idsOf(clientsOf(back)); !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("ids %v", ids)
	}
}

// Clients after an envelope that are not what it says are refused whole.
func TestEncodedClientsJunk(t *testing.T) {
	l := encodeClients([]Client{{ID: "a"}, {ID: "b"}})
	good := (&envelope{ID: 1, From: "x", encoded: &l}).encode()
	if _, err := decodeEnvelope(good); err != nil {
		t.Fatal(err)
	}
	head := good[:bytes.IndexByte(good, '\n')]
	for name, b := range map[string][]byte{
		"one missing":      good[:bytes.LastIndexByte(good, '\n')],
		"one more":         append(bytes.Clone(good), "\n{\"id\":\"c\"}"...),
		"not an object":    append(bytes.Clone(head), "\nxx\n{\"id\":\"b\"}"...),
		"empty line":       append(bytes.Clone(head), "\n\n{\"id\":\"b\"}"...),
		"out of order":     append(bytes.Clone(head), "\n{\"id\":\"b\"}\n{\"id\":\"a\"}"...),
		"trailing newline": append(bytes.Clone(good), '\n'),
		"none, one listed": append(bytes.Clone(head[:len(head)-1]), `,"x":1}`...),
		"negative listed":  append(bytes.Clone(head[:len(head)-1]), `,"x":-1}`...),
	} {
		if _, err := decodeEnvelope(b); err == nil {
			t.Errorf("%s: accepted %q", name, b)
		}
	}
}

// sessionClients are n clients with IDs as the node makes them: 16
// characters of base64 from a hash.
func sessionClients(r *rand.Rand, n int, node string) []Client {
	out := make([]Client, n)
	for i := range out {
		var id [12]byte
		for j := range id {
			id[j] = byte(r.Uint32())
		}
		out[i] = Client{ID: base64.RawURLEncoding.EncodeToString(id[:]), Node: node, Transport: "sse",
			Since: time.Unix(1_800_000_000, int64(r.IntN(1e9))).UTC()}
	}
	return out
}

func BenchmarkPresenceAnswer(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	local := sessionClients(r, 3334, "a")
	var wire [][]byte
	for k := 1; k < 3; k++ {
		l := encodeClients(sessionClients(r, 3333, string(rune('a'+k))))
		wire = append(wire, (&envelope{ID: 1, From: "x", encoded: &l}).encode())
	}
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		lists := []ClientList{encodeClients(slices.Clone(local))}
		for _, w := range wire {
			e, err := decodeEnvelope(w)
			if err != nil {
				b.Fatal(err)
			}
			lists = append(lists, clientsOf(e))
		}
		m := mergeClients(lists)
		out = m.AppendJSON(out[:0])
	}
	b.SetBytes(int64(len(out)))
}
