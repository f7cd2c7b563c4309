package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Defaults for WebhookConfig.
const (
	DefaultWebhookRetryFor = 24 * time.Hour
	DefaultWebhookBatch    = 100
	DefaultWebhookTimeout  = 10 * time.Second
	// webhookGroup and webhookConsumer read the events stream for the
	// webhooks: one consumer name, so whichever node delivers next finds
	// what the last one had not delivered in its pending entries, first.
	webhookGroup    = "pushcluster-webhooks"
	webhookConsumer = "deliverer"
	// The delivering node holds a lock it renews; a node that dies lets
	// it lapse and another takes over.
	webhookLockTTL = 5 * time.Second
)

// WebhookConfig configures webhook delivery of the lifecycle events.
type WebhookConfig struct {
	// URL receives the events. Required.
	URL string
	// Secret signs them, as the Standard Webhooks specification says:
	// "whsec_" and the base64 of the key. Required.
	Secret string
	// Kinds are the kinds sent (KindChannel, KindClient,
	// KindSubscription). Nil means all.
	Kinds []string
	// RetryFor is how long an event is retried while the receiver fails;
	// then it is dropped and counted. Zero means DefaultWebhookRetryFor.
	RetryFor time.Duration
	// Batch bounds the events of one POST. Zero means DefaultWebhookBatch.
	Batch int
	// Timeout bounds one POST. Zero means DefaultWebhookTimeout.
	Timeout time.Duration
	// Client makes the POSTs. Nil means a client of its own.
	Client *http.Client
	// MinBackoff and MaxBackoff pace the retries (full jitter). Zero means
	// 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
}

// ParseWebhookSecret reads a Standard Webhooks secret, "whsec_<base64>".
func ParseWebhookSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), "whsec_")
	if !ok {
		return nil, errors.New("events: a webhook secret is whsec_ and the base64 of its key")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 24 {
		return nil, errors.New("events: a webhook secret's key must be base64 of at least 24 bytes")
	}
	return key, nil
}

// Sign returns the webhook-signature header of a message: "v1," and the
// base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" (Standard Webhooks).
func Sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// WebhookBody is what one POST carries: events in stream order, each the
// stream entry's fields and its entry ID.
type WebhookBody struct {
	Events []map[string]string `json:"events"`
}

// Webhooks delivers the events stream to a URL: at least once, in stream
// order (so per channel), from whichever node holds the delivery lock,
// retrying while the receiver fails.
type Webhooks struct {
	cfg    WebhookConfig
	key    []byte
	rdb    redis.UniversalClient
	stream string
	lock   string
	me     string
	kinds  map[string]bool
	log    *slog.Logger

	delivered, dropped, failures atomic.Uint64
	pending                      atomic.Int64
	oldestMs                     atomic.Int64 // entry time of the oldest undelivered, Unix ms
}

// NewWebhooks returns the deliverer of the recorder's stream.
func (r *Recorder) NewWebhooks(cfg WebhookConfig) (*Webhooks, error) {
	key, err := ParseWebhookSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, errors.New("events: a webhook URL is required")
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultWebhookRetryFor
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultWebhookBatch
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	w := &Webhooks{cfg: cfg, key: key, rdb: r.cfg.Client, stream: r.cfg.Stream, lock: r.base + ":webhook-lock",
		me: r.cfg.Node + "/" + newID(), log: r.cfg.Logger}
	if w.kinds, err = kindSet(cfg.Kinds); err != nil {
		return nil, err
	}
	return w, nil
}

// renewLock takes or keeps the delivery lock: one atomic step.
var renewLock = redis.NewScript(`
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

// Run delivers while this node holds the lock, and waits for it
// otherwise, until ctx ends.
func (w *Webhooks) Run(ctx context.Context) error {
	err := w.rdb.XGroupCreateMkStream(ctx, w.stream, webhookGroup, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		w.log.Warn("webhooks: failed to create the consumer group; retrying", "err", err)
	}
	t := time.NewTicker(webhookLockTTL / 5)
	defer t.Stop()
	for {
		held, err := renewLock.Run(ctx, w.rdb, []string{w.lock}, w.me, webhookLockTTL.Milliseconds()).Int()
		if err == nil && held == 1 {
			w.deliverWhileHeld(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// deliverWhileHeld delivers until the lock is lost or ctx ends.
func (w *Webhooks) deliverWhileHeld(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // keeps the lock, or stops the delivery when it is lost
		t := time.NewTicker(webhookLockTTL / 5)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				held, err := renewLock.Run(ctx, w.rdb, []string{w.lock}, w.me, webhookLockTTL.Milliseconds()).Int()
				if err != nil || held == 0 {
					cancel()
					return
				}
			}
		}
	}()
	b := backoff.New(w.cfg.MinBackoff, w.cfg.MaxBackoff)
	for ctx.Err() == nil {
		batch, err := w.next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Debug("webhooks: failed to read the events", "err", err)
				b.Sleep(ctx)
			}
			continue
		}
		if len(batch) == 0 {
			continue
		}
		for ctx.Err() == nil {
			err := w.post(ctx, batch)
			if err == nil {
				w.ack(ctx, batch, &w.delivered)
				b.Reset()
				break
			}
			w.failures.Add(1)
			if oldest := msOf(batch[0].ID); time.Since(time.UnixMilli(oldest)) > w.cfg.RetryFor {
				w.log.Warn("webhooks: dropping events the receiver refused for longer than -webhook-retry-for",
					"events", len(batch), "first", batch[0].ID, "err", err)
				w.ack(ctx, batch, &w.dropped)
				break
			}
			w.log.Debug("webhooks: delivery failed; retrying", "events", len(batch), "err", err)
			b.Sleep(ctx)
		}
	}
}

// next returns the oldest undelivered events: the pending ones first (a
// delivery that did not finish), then new ones. Events of kinds not sent
// are acknowledged without a POST.
func (w *Webhooks) next(ctx context.Context) ([]redis.XMessage, error) {
	for _, from := range []string{"0", ">"} {
		args := &redis.XReadGroupArgs{Group: webhookGroup, Consumer: webhookConsumer, Streams: []string{w.stream, from}, Count: int64(w.cfg.Batch)}
		if from == ">" {
			args.Block = time.Second
		}
		res, err := w.rdb.XReadGroup(ctx, args).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), "NOGROUP") {
				w.rdb.XGroupCreateMkStream(ctx, w.stream, webhookGroup, "0")
			}
			return nil, err
		}
		if len(res) == 0 || len(res[0].Messages) == 0 {
			continue
		}
		var send, skip []redis.XMessage
		for _, m := range res[0].Messages {
			typ, _ := m.Values["type"].(string)
			kind, _, _ := strings.Cut(typ, ".")
			if w.kinds[kind] {
				send = append(send, m)
			} else {
				skip = append(skip, m)
			}
		}
		w.ack(ctx, skip, nil)
		w.refreshPending(ctx)
		return send, nil
	}
	w.refreshPending(ctx)
	return nil, nil
}

func (w *Webhooks) ack(ctx context.Context, ms []redis.XMessage, count *atomic.Uint64) {
	if len(ms) == 0 {
		return
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	if err := w.rdb.XAck(ctx, w.stream, webhookGroup, ids...).Err(); err != nil {
		w.log.Debug("webhooks: failed to acknowledge delivered events: they will be sent again", "err", err)
		return
	}
	if count != nil {
		count.Add(uint64(len(ms)))
	}
}

// post sends one batch, signed.
func (w *Webhooks) post(ctx context.Context, batch []redis.XMessage) error {
	body := WebhookBody{Events: make([]map[string]string, len(batch))}
	for i, m := range batch {
		e := map[string]string{"id": m.ID}
		for k, v := range m.Values {
			e[k], _ = v.(string)
		}
		body.Events[i] = e
	}
	b, _ := json.Marshal(body)
	id := "msg_" + batch[0].ID + "_" + batch[len(batch)-1].ID
	ts := time.Now().Unix()
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", Sign(w.key, id, ts, b))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// refreshPending reads how many events wait and how old the oldest is.
func (w *Webhooks) refreshPending(ctx context.Context) {
	p, err := w.rdb.XPending(ctx, w.stream, webhookGroup).Result()
	if err != nil {
		return
	}
	n := p.Count
	oldest := int64(0)
	if n > 0 {
		oldest = msOf(p.Lower)
	}
	// Entries not yet read by the group wait too.
	if info, err := w.rdb.XInfoGroups(ctx, w.stream).Result(); err == nil {
		for _, g := range info {
			if g.Name == webhookGroup && g.Lag > 0 {
				n += g.Lag
			}
		}
	}
	w.pending.Store(n)
	w.oldestMs.Store(oldest)
}

func msOf(id string) int64 {
	pid, err := protocol.ParseID(id)
	if err != nil {
		return 0
	}
	return int64(pid.Ms)
}

// WebhookStats are the webhooks' counts.
type WebhookStats struct {
	Delivered, Dropped, Failures uint64
	Pending                      int64
	// OldestPending is the age of the oldest undelivered event; zero
	// when none waits.
	OldestPending time.Duration
}

// Stats returns the counts so far.
func (w *Webhooks) Stats() WebhookStats {
	st := WebhookStats{Delivered: w.delivered.Load(), Dropped: w.dropped.Load(), Failures: w.failures.Load(), Pending: w.pending.Load()}
	if ms := w.oldestMs.Load(); ms > 0 && st.Pending > 0 {
		st.OldestPending = time.Since(time.UnixMilli(ms))
	}
	return st
}
