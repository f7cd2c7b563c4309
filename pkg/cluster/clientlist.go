package cluster

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// ClientList is a list of clients in ID order (then node), each held as
// the JSON object the API answers with. Members send their part of a
// presence or clients answer already encoded and sorted, and the member
// asked merges the parts and writes them out: a list of 10,000 clients is
// never decoded into structs, sorted whole, and encoded again.
type ClientList struct {
	items [][]byte
	// heads[i] is the head of items[i]'s key (see key), read once, in the
	// lists that are merged: it orders random IDs alone, and the whole
	// key is read again only when two heads tie. A merged list, which is
	// only written out, has none.
	heads []uint64
}

// Len is the number of clients in the list.
func (l ClientList) Len() int { return len(l.items) }

// Size is the length of the list as a JSON array.
func (l ClientList) Size() int {
	n := 2
	for _, it := range l.items {
		n += len(it) + 1
	}
	return n
}

// AppendJSON appends the list to b as a JSON array.
func (l ClientList) AppendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, it := range l.items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

// MarshalJSON makes the list a JSON array wherever it is encoded.
func (l ClientList) MarshalJSON() ([]byte, error) {
	return l.AppendJSON(make([]byte, 0, l.Size())), nil
}

// Decode returns the clients as structs.
func (l ClientList) Decode() ([]Client, error) {
	out := make([]Client, len(l.items))
	for i, it := range l.items {
		if err := json.Unmarshal(it, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LastID is the ID of the last client, or "" for an empty list.
func (l ClientList) LastID() string {
	if len(l.items) == 0 {
		return ""
	}
	return string(itemKey(l.items[len(l.items)-1]).id)
}

// truncate keeps the first n clients.
func (l ClientList) truncate(n int) ClientList {
	if len(l.items) > n {
		l.items = l.items[:n]
		l.heads = l.heads[:min(n, len(l.heads))]
	}
	return l
}

// encodeClients encodes each of cs as the API's JSON object, in list
// order. It sorts where each client's object lies in one buffer, by its
// key's head: 16 bytes a client, compared as integers.
func encodeClients(cs []Client) ClientList {
	n := 0
	for _, c := range cs {
		n += len(c.ID) + len(c.Node) + len(c.Transport) + clientJSONOverhead
	}
	buf := make([]byte, 0, n)
	type span struct {
		head       uint64
		start, end int32
	}
	spans := make([]span, len(cs))
	for i, c := range cs {
		start := len(buf)
		buf = appendClient(buf, c)
		spans[i] = span{head: itemKey(buf[start:]).head, start: int32(start), end: int32(len(buf))}
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.head != b.head {
			return cmp.Compare(a.head, b.head)
		}
		return compareItems(buf[a.start:a.end], a.head, buf[b.start:b.end], b.head)
	})
	l := ClientList{items: make([][]byte, len(cs)), heads: make([]uint64, len(cs))}
	for i, s := range spans {
		l.items[i], l.heads[i] = buf[s.start:s.end:s.end], s.head
	}
	return l
}

// clientJSONOverhead is the bytes of one client's JSON object beyond its
// strings: the keys, quotes and a nanosecond RFC 3339 time.
const clientJSONOverhead = len(`{"id":"","node":"","transport":"","since":"2006-01-02T15:04:05.999999999Z07:00"}`)

// appendClient appends c as encoding/json writes a Client: the fields in
// its order, its time as time.Time's MarshalJSON writes it. It is written
// by hand because encoding a presence list of 10,000 clients through
// reflection costs more than the rest of the answer.
func appendClient(b []byte, c Client) []byte {
	b = append(b, `{"id":`...)
	b = protocol.AppendJSONString(b, c.ID)
	b = append(b, `,"node":`...)
	b = protocol.AppendJSONString(b, c.Node)
	b = append(b, `,"transport":`...)
	b = protocol.AppendJSONString(b, c.Transport)
	b = append(b, `,"since":"`...)
	b = c.Since.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// key is what a list is ordered by: the ID, then the node. head holds
// the ID's first 8 bytes, big-endian and zero-padded, which decide most
// comparisons of random IDs in one integer compare.
type key struct {
	head     uint64
	id, node []byte
}

func newKey(id, node []byte) key {
	var h [8]byte
	copy(h[:], id)
	return key{head: binary.BigEndian.Uint64(h[:]), id: id, node: node}
}

// compareItems orders two encoded clients whose keys' heads are ah and
// bh.
func compareItems(a []byte, ah uint64, b []byte, bh uint64) int {
	if ah != bh {
		if ah < bh {
			return -1
		}
		return 1
	}
	return itemKey(a).compare(itemKey(b))
}

func (k key) compare(o key) int {
	if k.head != o.head {
		if k.head < o.head {
			return -1
		}
		return 1
	}
	if r := bytes.Compare(k.id, o.id); r != 0 {
		return r
	}
	return bytes.Compare(k.node, o.node)
}

// itemKey reads the ID and node of an encoded client. Those appendClient
// writes come first, unescaped when plain; anything else is decoded.
func itemKey(it []byte) key {
	id, rest, ok := plainField(it, `{"id":"`)
	if ok {
		var node []byte
		if node, _, ok = plainField(rest, `,"node":"`); ok {
			return newKey(id, node)
		}
	}
	var c Client
	_ = json.Unmarshal(it, &c)
	return newKey([]byte(c.ID), []byte(c.Node))
}

// plainField returns the string after prefix when it holds no escape.
func plainField(b []byte, prefix string) (value, rest []byte, ok bool) {
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return nil, nil, false
	}
	b = b[len(prefix):]
	end := bytes.IndexByte(b, '"')
	if end < 0 || bytes.IndexByte(b[:end], '\\') >= 0 {
		return nil, nil, false
	}
	return b[:end], b[end+1:], true
}

// mergeClients merges sorted lists into one.
func mergeClients(lists []ClientList) ClientList {
	lists = slices.DeleteFunc(slices.Clone(lists), func(l ClientList) bool { return len(l.items) == 0 })
	switch len(lists) {
	case 0:
		return ClientList{}
	case 1:
		return lists[0]
	}
	n := 0
	for _, l := range lists {
		n += len(l.items)
	}
	out := ClientList{items: make([][]byte, 0, n)}
	for len(lists) > 0 {
		best := 0
		for i := 1; i < len(lists); i++ {
			h, bh := lists[i].heads[0], lists[best].heads[0]
			if h < bh || h == bh && compareItems(lists[i].items[0], h, lists[best].items[0], bh) < 0 {
				best = i
			}
		}
		l := &lists[best]
		out.items = append(out.items, l.items[0])
		if l.items, l.heads = l.items[1:], l.heads[1:]; len(l.items) == 0 {
			lists = slices.Delete(lists, best, best+1)
		}
	}
	return out
}

// The wire form of an encoded list: each client on a line of its own after
// the envelope's JSON, which encoding/json never breaks over lines.

// appendItems appends the list's clients to an encoded envelope.
func (l ClientList) appendItems(b []byte) []byte {
	for _, it := range l.items {
		b = append(b, '\n')
		b = append(b, it...)
	}
	return b
}

// splitItems parses the clients after an envelope: want of them, each a
// JSON object, in order; ok is false when they are not that.
func splitItems(b []byte, want int) (l ClientList, ok bool) {
	if want == 0 {
		return ClientList{}, len(b) == 0
	}
	l.items, l.heads = make([][]byte, 0, want), make([]uint64, 0, want)
	for len(b) > 0 {
		if b[0] != '\n' {
			return ClientList{}, false
		}
		b = b[1:]
		end := bytes.IndexByte(b, '\n')
		if end < 0 {
			end = len(b)
		}
		it := b[:end:end]
		if len(it) < 2 || it[0] != '{' || it[len(it)-1] != '}' || len(l.items) == want {
			return ClientList{}, false
		}
		h := itemKey(it).head
		if n := len(l.items); n > 0 && compareItems(l.items[n-1], l.heads[n-1], it, h) > 0 {
			return ClientList{}, false
		}
		l.items, l.heads = append(l.items, it), append(l.heads, h)
		b = b[end:]
	}
	return l, len(l.items) == want
}

// clientsOf is the list a member's answer holds: encoded after its
// envelope, or, from a member that sends structs, encoded here.
func clientsOf(e *envelope) ClientList {
	if e.encoded != nil {
		return *e.encoded
	}
	return encodeClients(e.Clients)
}

// sortClients orders cs as lists are ordered: by ID, then node.
func sortClients(cs []Client) {
	slices.SortFunc(cs, func(a, b Client) int {
		if r := strings.Compare(a.ID, b.ID); r != 0 {
			return r
		}
		return strings.Compare(a.Node, b.Node)
	})
}
