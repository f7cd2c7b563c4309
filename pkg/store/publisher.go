package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Defaults for PublisherConfig.
const (
	DefaultPublishWorkers = 4
	DefaultPublishBatch   = 256
	DefaultPublishQueue   = 4096
)

// ErrPublisherClosed is returned by Publish once the publisher has stopped.
var ErrPublisherClosed = errors.New("store: publisher stopped")

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Store is where messages go. Required.
	Store *Store
	// Workers is how many pipelines may be in flight at once.
	// Defaults to DefaultPublishWorkers.
	Workers int
	// MaxBatch bounds the XADDs sent in one pipeline.
	// Defaults to DefaultPublishBatch.
	MaxBatch int
	// Queue bounds the publishes waiting for a pipeline; beyond it Publish
	// waits. Defaults to DefaultPublishQueue.
	Queue int
}

// Publisher sends concurrent publishes to Redis in pipelines: while one
// pipeline is in flight the next ones gather, so under load one round trip
// and one system call carry many XADDs, and an idle publish waits for no
// one. Create it with NewPublisher and start it with Run.
type Publisher struct {
	cfg     PublisherConfig
	queue   chan *publishReq
	stopped chan struct{} // closed when the workers have exited

	// closing is held for reading while a request is being queued, and set
	// under the write lock once no request can be queued any more, so that
	// nothing is queued after the final drain.
	closing sync.RWMutex
	closed  bool
	once    sync.Once
}

type publishReq struct {
	ctx     context.Context
	channel string
	msg     Message
	key     string // idempotency key; "" for none
	id      protocol.ID
	dup     bool
	err     error
	done    chan struct{}
}

// NewPublisher returns a publisher for cfg.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Store == nil {
		return nil, errors.New("store: publisher needs a store")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultPublishWorkers
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultPublishBatch
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultPublishQueue
	}
	return &Publisher{cfg: cfg, queue: make(chan *publishReq, cfg.Queue), stopped: make(chan struct{})}, nil
}

// Publish appends m to channel, in a pipeline with whatever else is being
// published, and returns its entry ID. Publishes from one caller keep
// their order only if the caller waits for each.
func (p *Publisher) Publish(ctx context.Context, channel string, m Message) (protocol.ID, error) {
	if err := validate(channel, m); err != nil {
		return protocol.ID{}, err
	}
	r := &publishReq{ctx: ctx, channel: channel, msg: m, done: make(chan struct{})}
	return r.id, p.wait(ctx, r)
}

// PublishOnce is Store.PublishOnce in a shared round trip.
func (p *Publisher) PublishOnce(ctx context.Context, channel string, m Message, key string) (protocol.ID, bool, error) {
	if err := validateOnce(channel, m, key); err != nil {
		return protocol.ID{}, false, err
	}
	if _, err := p.cfg.Store.IdempotencyRecord(channel, key); err != nil {
		return protocol.ID{}, false, err
	}
	r := &publishReq{ctx: ctx, channel: channel, msg: m, key: key, done: make(chan struct{})}
	err := p.wait(ctx, r)
	return r.id, r.dup, err
}

// wait queues r and waits for its answer.
func (p *Publisher) wait(ctx context.Context, r *publishReq) error {
	if err := p.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue queues r, or fails once the publisher has stopped: a request is
// either queued before the final drain, which answers it, or refused.
func (p *Publisher) enqueue(ctx context.Context, r *publishReq) error {
	p.closing.RLock()
	defer p.closing.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	select {
	case p.queue <- r:
		return nil
	case <-p.stopped:
		return ErrPublisherClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run sends pipelines until ctx ends, then fails what is still queued and
// returns once its workers have exited. Publish fails fast from then on.
func (p *Publisher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range p.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx)
		}()
	}
	wg.Wait()
	p.once.Do(func() {
		close(p.stopped) // wakes publishers waiting for room, so the lock comes free
		p.closing.Lock()
		p.closed = true
		p.closing.Unlock()
	})
	for {
		select {
		case r := <-p.queue:
			fail([]*publishReq{r}, ErrPublisherClosed)
		default:
			return nil
		}
	}
}

func fail(batch []*publishReq, err error) {
	for _, r := range batch {
		r.err = err
		close(r.done)
	}
}

func (p *Publisher) work(ctx context.Context) {
	batch := make([]*publishReq, 0, p.cfg.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-p.queue:
			batch = append(batch[:0], r)
		}
	gather:
		for len(batch) < p.cfg.MaxBatch {
			select {
			case r := <-p.queue:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		if ctx.Err() != nil { // taken as the publisher stopped: never sent
			fail(batch, ErrPublisherClosed)
			return
		}
		p.send(ctx, batch)
	}
}

// send executes one pipeline and answers every request in it. Requests
// whose caller has given up are left out. Each channel's upkeep follows its
// XADDs once per pipeline, however many publishes it carries.
func (p *Publisher) send(ctx context.Context, batch []*publishReq) {
	s := p.cfg.Store
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(batch))
	once := make([]*redis.Cmd, len(batch))
	for i, r := range batch {
		switch {
		case r.ctx.Err() != nil:
		case r.key != "":
			keys, argv, _ := s.onceArgs(r.channel, &r.msg, r.key) // checked by PublishOnce
			once[i] = idempotentAdd.Eval(ctx, pipe, keys, argv...)
		default:
			cmds[i] = pipe.XAdd(ctx, s.addArgs(r.channel, &r.msg))
		}
	}
	if s.upkept() {
		now := time.Now()
		kept := make(map[string]bool, 1)
		for i, r := range batch {
			if (cmds[i] != nil || once[i] != nil) && !kept[r.channel] {
				kept[r.channel] = true
				s.upkeep(ctx, pipe, r.channel, now)
			}
		}
	}
	pipe.Exec(ctx)
	for i, r := range batch {
		switch {
		case once[i] != nil:
			r.id, r.dup, r.err = s.addedOnce(r.channel, once[i])
		case cmds[i] != nil:
			r.id, r.err = s.added(r.channel, cmds[i])
		default:
			r.err = r.ctx.Err()
		}
		close(r.done)
	}
}
