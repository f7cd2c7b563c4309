package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/redis/go-redis/v9"
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

// httpSink publishes with POST /api/publish on a node.
type httpSink struct {
	client *http.Client
	url    string
}

var _ sink = (*httpSink)(nil)

func newHTTPSink(base string, conns int) *httpSink {
	tr := &http.Transport{MaxIdleConnsPerHost: conns + 2, DisableCompression: true}
	return &httpSink{client: &http.Client{Transport: tr}, url: strings.TrimSuffix(base, "/") + "/api/publish"}
}

type publishBody struct {
	Channel string `json:"channel"`
	Data    string `json:"data"`
}

func (s *httpSink) publish(ctx context.Context, channel string, data []byte) error {
	body, err := json.Marshal(publishBody{Channel: channel, Data: string(data)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: publish answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func (s *httpSink) close() error {
	s.client.CloseIdleConnections()
	return nil
}

// newSink returns the sink -via names.
func newSink(cfg Config, baseURL string) (sink, error) {
	if cfg.Via == ViaHTTP {
		return newHTTPSink(baseURL, cfg.PublishWorkers), nil
	}
	return newXaddSink(cfg.RedisURL, cfg.Prefix, cfg.MaxLen, cfg.PublishWorkers)
}
