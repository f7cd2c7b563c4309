package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"

	"github.com/pushcluster/pushcluster/internal/ratelog"
)

// Limits of the question channel between members.
const (
	inboxSize      = 1024 // messages received and not yet handled
	rpcWorkers     = 4
	maxSendsInFly  = 256 // answers and questions being sent at once
	wireVersion    = 1
	wireMagic      = 'P'
	maxQueryClient = 10_000 // clients one member lists in one answer
)

// Operations a member can be asked.
const (
	opPresence   = "presence"
	opCount      = "count"
	opClients    = "clients"
	opDeliver    = "deliver"
	opDisconnect = "disconnect"
)

var errWire = errors.New("cluster: malformed message")

// envelope is a question or an answer between members.
type envelope struct {
	ID   uint64 `json:"i"`
	From string `json:"f"`
	// Op is set on questions; answers leave it empty.
	Op      string  `json:"o,omitempty"`
	Channel string  `json:"c,omitempty"`
	Client  string  `json:"l,omitempty"`
	After   string  `json:"a,omitempty"`
	Limit   int     `json:"n,omitempty"`
	Direct  *Direct `json:"d,omitempty"`
	// Encoded, on a presence or clients question, asks for the clients
	// encoded (see ClientList): Listed of them follow the answer's JSON,
	// a line each. A member that does not know it answers with Clients.
	Encoded bool `json:"e,omitempty"`
	// Answers.
	Clients []Client `json:"cs,omitempty"`
	Listed  int      `json:"x,omitempty"`
	Count   int      `json:"k,omitempty"`
	// IDs and Users answer a count: the distinct clients and users, each
	// an 8-byte hash, packed and base64-encoded, so that the member that
	// asked counts them once however many members hold them.
	IDs   string `json:"h,omitempty"`
	Users string `json:"u,omitempty"`
	// Refused answers a question the member would not act on (see
	// Config.AuthRequired).
	Refused bool `json:"r,omitempty"`

	encoded *ClientList // the clients that follow the JSON
}

func (e *envelope) encode() []byte {
	if e.encoded != nil {
		e.Listed = e.encoded.Len()
	}
	j, _ := json.Marshal(e)
	n := 2 + len(j)
	if e.encoded != nil {
		n += e.encoded.Size()
	}
	b := append(make([]byte, 0, n), wireMagic, wireVersion)
	b = append(b, j...)
	if e.encoded != nil {
		b = e.encoded.appendItems(b)
	}
	return b
}

func decodeEnvelope(b []byte) (*envelope, error) {
	if len(b) < 2 || b[0] != wireMagic || b[1] != wireVersion {
		return nil, errWire
	}
	b = b[2:]
	var items []byte
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b, items = b[:i], b[i:]
	}
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil || e.ID == 0 || e.From == "" || e.Listed < 0 {
		return nil, errWire
	}
	if e.Listed > 0 || items != nil {
		l, ok := splitItems(items, e.Listed)
		if !ok {
			return nil, errWire
		}
		e.encoded = &l
	}
	switch e.Op {
	case "", opPresence, opCount, opClients, opDeliver, opDisconnect:
		return &e, nil
	}
	return nil, errWire
}

// rpc asks members questions over memberlist's reliable channel and
// answers theirs. memberlist hands messages over on its own goroutines,
// which must not block, so they go through a bounded inbox; a full inbox
// drops the message, and the member that asked lists this one as missing.
type rpc struct {
	c     *Cluster
	inbox chan []byte
	sends chan struct{} // semaphore of sends in flight
	next  atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan *envelope
	closed  bool
	wg      sync.WaitGroup

	dropped, malformed, refused atomic.Uint64
	refusedLog                  *ratelog.Limiter
}

func (r *rpc) init(c *Cluster) {
	r.c = c
	r.inbox = make(chan []byte, inboxSize)
	r.sends = make(chan struct{}, maxSendsInFly)
	r.pending = make(map[uint64]chan *envelope)
	r.refusedLog = ratelog.New(problemLogEvery)
}

// receive queues a message from memberlist; it never blocks.
func (r *rpc) receive(b []byte) {
	select {
	case r.inbox <- append([]byte(nil), b...):
	default:
		r.dropped.Add(1)
	}
}

// serve handles received messages until ctx ends.
func (r *rpc) serve(ctx context.Context) {
	var wg sync.WaitGroup
	for range rpcWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case b := <-r.inbox:
					r.handle(b)
				}
			}
		}()
	}
	wg.Wait()
}

func (r *rpc) handle(b []byte) {
	e, err := decodeEnvelope(b)
	if err != nil {
		r.malformed.Add(1)
		return
	}
	if e.Op == "" {
		r.answered(e)
		return
	}
	var ans envelope
	if r.c.trusts(e.From) {
		ans = r.c.answer(e)
	} else {
		ans.Refused = true
		r.refused.Add(1)
		if n, ok := r.refusedLog.Allow(); ok {
			r.c.log.Warn("refused cluster questions from a member that runs without authentication: give every member the same authentication, or none",
				"member", e.From, "op", e.Op, "count", n)
		}
	}
	ans.ID, ans.From = e.ID, r.c.cfg.Name
	if to := r.c.view.node(e.From); to != nil {
		r.send(to, ans.encode(), nil)
	}
}

func (r *rpc) answered(e *envelope) {
	r.mu.Lock()
	ch := r.pending[e.ID]
	delete(r.pending, e.ID)
	r.mu.Unlock()
	if ch != nil {
		ch <- e // buffered: never blocks
	}
}

// send sends b to a member on a tracked goroutine; failed, if set, is
// told when it could not be sent. Sends beyond the limit in flight fail.
func (r *rpc) send(to *memberlist.Node, b []byte, failed func()) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		if failed != nil {
			failed()
		}
		return
	}
	select {
	case r.sends <- struct{}{}:
	default:
		r.mu.Unlock()
		r.dropped.Add(1)
		if failed != nil {
			failed()
		}
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() { <-r.sends }()
		if err := r.c.mlp.Load().SendReliable(to, b); err != nil {
			r.c.log.Debug("failed to send to member", "member", to.Name, "err", err)
			if failed != nil {
				failed()
			}
		}
	}()
}

// ask puts q to every node in parallel and returns the answers that came
// before ctx ended, and the names of the nodes that gave none.
func (r *rpc) ask(ctx context.Context, nodes []*memberlist.Node, q envelope) (answers []*envelope, missing []string) {
	type call struct {
		node string
		ch   chan *envelope
		id   uint64
	}
	calls := make([]call, len(nodes))
	for i, n := range nodes {
		q := q
		q.ID, q.From = r.next.Add(1), r.c.cfg.Name
		ch := make(chan *envelope, 2)
		r.mu.Lock()
		r.pending[q.ID] = ch
		r.mu.Unlock()
		calls[i] = call{node: n.Name, ch: ch, id: q.ID}
		r.send(n, q.encode(), func() { ch <- nil })
	}
	for _, cl := range calls {
		var e *envelope
		select {
		case e = <-cl.ch:
		case <-ctx.Done():
			select { // an answer already here counts, whatever select chose
			case e = <-cl.ch:
			default:
			}
		}
		if e != nil {
			answers = append(answers, e)
			continue
		}
		r.mu.Lock()
		delete(r.pending, cl.id)
		r.mu.Unlock()
		missing = append(missing, cl.node)
	}
	return answers, missing
}

// close stops sending and waits for the sends in flight.
func (r *rpc) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
}
