package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/redisproc"
)

// server is the Redis under measurement: one given by URL, or a
// redis-server process that sweep started and owns.
type server struct {
	opt   *redis.Options
	admin *redis.Client     // INFO, CLIENT LIST, cleanup
	proc  *redisproc.Server // nil unless sweep started the server
}

// openRedis connects to url, or starts a redis-server when url is empty.
func openRedis(ctx context.Context, url string) (*server, error) {
	s := &server{}
	if url == "" {
		var err error
		if url, err = s.start(ctx); err != nil {
			return nil, err
		}
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sweep: bad Redis URL: %w", err)
	}
	s.opt = opt
	s.admin = s.client("sweep-admin", 4)
	if err := s.admin.Ping(ctx).Err(); err != nil {
		s.Close()
		return nil, fmt.Errorf("sweep: failed to reach Redis at %s: %w", url, err)
	}
	return s, nil
}

// start runs redis-server from PATH on a free loopback port without
// persistence, and returns its URL once it answers.
func (s *server) start(context.Context) (url string, err error) {
	if s.proc, err = redisproc.Start(); err != nil {
		return "", fmt.Errorf("sweep: no -redis-url, and %w", err)
	}
	return s.proc.URL(), nil
}

// Close disconnects and stops the server if sweep started it. It is safe to
// call more than once.
func (s *server) Close() {
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
	if s.proc != nil {
		s.proc.Close()
		s.proc = nil
	}
}

// owned reports whether sweep started the server, so it may flush it.
func (s *server) owned() bool { return s.proc != nil }

// client returns a new client of the server whose connections carry name
// (CLIENT SETNAME), so they can be found in CLIENT LIST.
func (s *server) client(name string, pool int) *redis.Client {
	opt := *s.opt
	opt.ClientName = name
	opt.PoolSize = pool
	return redis.NewClient(&opt)
}

// clean deletes the keys of one run: the whole database when sweep owns
// the server, else every key under prefix.
func (s *server) clean(ctx context.Context, prefix string) error {
	if s.owned() {
		return s.admin.FlushDB(ctx).Err()
	}
	iter := s.admin.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			if err := s.admin.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := s.admin.Unlink(ctx, batch...).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s)
}

// cmdStat is one line of INFO commandstats.
type cmdStat struct {
	Calls int64
	Usec  int64
}

// redisUsage is a snapshot of Redis's own accounting.
type redisUsage struct {
	CPU      float64 // used_cpu_sys + used_cpu_user, seconds
	Commands map[string]cmdStat
}

func readUsage(ctx context.Context, rdb *redis.Client) (redisUsage, error) {
	text, err := rdb.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return redisUsage{}, fmt.Errorf("failed to read INFO: %w", err)
	}
	return parseUsage(text)
}

func parseUsage(text string) (redisUsage, error) {
	u := redisUsage{Commands: map[string]cmdStat{}}
	var seen int
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		switch {
		case !ok:
		case key == "used_cpu_sys" || key == "used_cpu_user":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return u, fmt.Errorf("bad %s %q", key, val)
			}
			u.CPU += f
			seen++
		case strings.HasPrefix(key, "cmdstat_"):
			u.Commands[strings.TrimPrefix(key, "cmdstat_")] = parseCmdStat(val)
		}
	}
	if seen != 2 {
		return u, errors.New("INFO cpu lacks used_cpu_sys or used_cpu_user")
	}
	return u, nil
}

// parseCmdStat parses "calls=3,usec=10,usec_per_call=3.33,...".
func parseCmdStat(val string) cmdStat {
	var c cmdStat
	for f := range strings.SplitSeq(val, ",") {
		k, v, _ := strings.Cut(f, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "calls":
			c.Calls = n
		case "usec":
			c.Usec = n
		}
	}
	return c
}

// pubsubClient is one pub/sub connection in CLIENT LIST.
type pubsubClient struct {
	ID   string
	Subs int
}

// pubsubClients lists the pub/sub connections whose name is name.
func pubsubClients(ctx context.Context, rdb *redis.Client, name string) ([]pubsubClient, error) {
	text, err := rdb.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		return nil, fmt.Errorf("failed to list pub/sub clients: %w", err)
	}
	var out []pubsubClient
	for line := range strings.Lines(text) {
		f := clientFields(line)
		if f["name"] != name {
			continue
		}
		subs, _ := strconv.Atoi(f["sub"])
		out = append(out, pubsubClient{ID: f["id"], Subs: subs})
	}
	return out, nil
}

func clientFields(line string) map[string]string {
	f := map[string]string{}
	for kv := range strings.FieldsSeq(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			f[k] = v
		}
	}
	return f
}

// killPubSub cuts off the pub/sub connections named name, as a network
// failure or an output buffer limit would, and returns how many it killed.
func killPubSub(ctx context.Context, rdb *redis.Client, name string) (int, error) {
	clients, err := pubsubClients(ctx, rdb, name)
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, c := range clients {
		n, err := rdb.Do(ctx, "CLIENT", "KILL", "ID", c.ID).Int()
		if err != nil {
			return killed, fmt.Errorf("failed to kill client %s: %w", c.ID, err)
		}
		killed += n
	}
	return killed, nil
}
