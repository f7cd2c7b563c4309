package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/redis/go-redis/v9"

	push "github.com/pushcluster/pushcluster/pkg/client"
)

// xaddSink publishes with XADD <prefix><channel> [MAXLEN ~ n] * data <payload>,
// as any Redis client in any language would.
type xaddSink struct {
	rdb    *redis.Client
	prefix string
	maxLen int64
}

var _ sink = (*xaddSink)(nil)

func newXaddSink(redisURL, prefix string, maxLen int64, conns int) (*xaddSink, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("bench: bad -redis-url: %w", err)
	}
	opt.PoolSize = conns + 2
	opt.ClientName = "pushcluster-bench"
	return &xaddSink{rdb: redis.NewClient(opt), prefix: prefix, maxLen: maxLen}, nil
}

func (s *xaddSink) publish(ctx context.Context, channel string, data []byte) error {
	args := &redis.XAddArgs{Stream: s.prefix + channel, Values: []any{"data", data}}
	if s.maxLen > 0 {
		args.MaxLen, args.Approx = s.maxLen, true
	}
	return s.rdb.XAdd(ctx, args).Err()
}

func (s *xaddSink) close() error { return s.rdb.Close() }

// httpSink publishes with POST /api/publish on a node, through the Go
// client.
type httpSink struct {
	c *push.Client
	t *http.Transport
}

var _ sink = (*httpSink)(nil)

func newHTTPSink(base string, conns int) (*httpSink, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns + 2, DisableCompression: true}
	cfg := push.Config{URLs: []string{base}, HTTPClient: &http.Client{Transport: tr}}
	if t, _ := streamToken(); t != "" {
		cfg.Token = push.StaticToken(t)
	}
	c, err := push.New(cfg)
	if err != nil {
		return nil, err
	}
	return &httpSink{c: c, t: tr}, nil
}

func (s *httpSink) publish(ctx context.Context, channel string, data []byte) error {
	_, err := s.c.Publish(ctx, channel, string(data))
	return err
}

func (s *httpSink) close() error {
	s.t.CloseIdleConnections()
	return nil
}

// newSink returns the sink -via names.
func newSink(cfg Config, baseURL string) (sink, error) {
	if cfg.Via == ViaHTTP {
		return newHTTPSink(baseURL, cfg.PublishWorkers)
	}
	return newXaddSink(cfg.RedisURL, cfg.Prefix, cfg.MaxLen, cfg.PublishWorkers)
}
