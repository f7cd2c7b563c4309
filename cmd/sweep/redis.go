package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/rediscluster"
	"github.com/pushcluster/pushcluster/internal/redisproc"
)

// server is the Redis under measurement: one given by URL, or a
// redis-server process that sweep started and owns.
type server struct {
	opt   *redis.Options
	admin *redis.Client     // INFO, CLIENT LIST, cleanup
	proc  *redisproc.Server // nil unless sweep started the server
	// In a Redis Cluster, shards are the admin clients of each primary
	// (admin is the first); elsewhere, admin alone.
	shards  []*redis.Client
	cluster *rediscluster.Cluster
}

// openRedis connects to url, or starts a redis-server when url is empty,
// or a Redis Cluster of three primaries with a replica each when cluster.
func openRedis(ctx context.Context, url string, cluster bool) (*server, error) {
	if cluster {
		return openCluster(ctx)
	}
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
	s.admin = redis.NewClient(s.options("sweep-admin", 4))
	s.shards = []*redis.Client{s.admin}
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

// openCluster starts a Redis Cluster on loopback ports.
func openCluster(ctx context.Context) (*server, error) {
	c, err := rediscluster.StartCluster(ctx)
	if err != nil {
		return nil, fmt.Errorf("sweep: failed to start a Redis Cluster: %w", err)
	}
	s := &server{cluster: c, opt: &redis.Options{}}
	primaries, err := c.Primaries(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	for _, addr := range primaries {
		s.shards = append(s.shards, redis.NewClient(&redis.Options{Addr: addr, ClientName: "sweep-admin", PoolSize: 4}))
	}
	s.admin = s.shards[0]
	return s, nil
}

// Close disconnects and stops the server if sweep started it. It is safe to
// call more than once.
func (s *server) Close() {
	for _, c := range s.shards {
		c.Close()
	}
	s.shards, s.admin = nil, nil
	if s.proc != nil {
		s.proc.Close()
		s.proc = nil
	}
	if s.cluster != nil {
		s.cluster.Close()
		s.cluster = nil
	}
}

// owned reports whether sweep started the server, so it may flush it.
func (s *server) owned() bool { return s.proc != nil || s.cluster != nil }

// client returns a new client of the server whose connections carry name
// (CLIENT SETNAME), so they can be found in CLIENT LIST: a cluster client
// in a Redis Cluster.
func (s *server) client(name string, pool int) redis.UniversalClient {
	if s.cluster != nil {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: s.cluster.Seeds(), ClientName: name, PoolSize: pool})
	}
	return redis.NewClient(s.options(name, pool))
}

func (s *server) options(name string, pool int) *redis.Options {
	opt := *s.opt
	opt.ClientName = name
	opt.PoolSize = pool
	return &opt
}

// clean deletes the keys of one run: the whole database when sweep owns
// the server, else every key under prefix.
func (s *server) clean(ctx context.Context, prefix string) error {
	if s.owned() {
		for _, c := range s.shards {
			if err := c.FlushDB(ctx).Err(); err != nil {
				return err
			}
		}
		return nil
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

// redisUsage is a snapshot of Redis's own accounting: of every primary
// together, in a Redis Cluster.
type redisUsage struct {
	CPU      float64 // used_cpu_sys + used_cpu_user, seconds
	Commands map[string]cmdStat
	// Shards is each primary's own, in a Redis Cluster.
	Shards []redisUsage
	Addr   string // the primary's, in Shards
}

func readUsage(ctx context.Context, srv *server) (redisUsage, error) {
	if len(srv.shards) == 1 {
		return readShardUsage(ctx, srv.admin)
	}
	sum := redisUsage{Commands: map[string]cmdStat{}}
	for _, c := range srv.shards {
		u, err := readShardUsage(ctx, c)
		if err != nil {
			return sum, err
		}
		sum.CPU += u.CPU
		for name, st := range u.Commands {
			t := sum.Commands[name]
			t.Calls, t.Usec = t.Calls+st.Calls, t.Usec+st.Usec
			sum.Commands[name] = t
		}
		u.Addr = c.Options().Addr
		sum.Shards = append(sum.Shards, u)
	}
	return sum, nil
}

func readShardUsage(ctx context.Context, rdb *redis.Client) (redisUsage, error) {
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
	ID    string
	Subs  int
	shard *redis.Client
}

// pubsubClients lists the pub/sub connections whose name is name, on
// every primary.
func pubsubClients(ctx context.Context, srv *server, name string) ([]pubsubClient, error) {
	var out []pubsubClient
	for _, c := range srv.shards {
		cs, err := shardPubsubClients(ctx, c, name)
		if err != nil {
			return nil, err
		}
		for i := range cs {
			cs[i].shard = c
		}
		out = append(out, cs...)
	}
	return out, nil
}

func shardPubsubClients(ctx context.Context, rdb *redis.Client, name string) ([]pubsubClient, error) {
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
func killPubSub(ctx context.Context, srv *server, name string) (int, error) {
	clients, err := pubsubClients(ctx, srv, name)
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, c := range clients {
		n, err := c.shard.Do(ctx, "CLIENT", "KILL", "ID", c.ID).Int()
		if err != nil {
			return killed, fmt.Errorf("failed to kill client %s: %w", c.ID, err)
		}
		killed += n
	}
	return killed, nil
}
