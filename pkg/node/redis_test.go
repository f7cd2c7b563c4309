package node

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Each way of naming Redis builds the client go-redis has for it, with
// the flags' credentials and TLS over the URL's.
func TestRedisClients(t *testing.T) {
	t.Parallel()
	build := func(cfg Config) *redisClient {
		t.Helper()
		rc, err := newRedisClient(&cfg, cfg.RedisURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.rdb.Close() })
		return rc
	}
	c := build(Config{RedisURL: "rediss://u:p@redis.example:6380/3", Redis: RedisConfig{Password: "flag"}})
	opt := c.rdb.(*redis.Client).Options()
	if opt.Username != "u" || opt.Password != "flag" || opt.TLSConfig == nil || c.db != 3 || c.cli != "-h redis.example -p 6380 -n 3 --tls" {
		t.Errorf("URL client: user %q password %q TLS %v db %d cli %q", opt.Username, opt.Password, opt.TLSConfig != nil, c.db, c.cli)
	}

	c = build(Config{Redis: RedisConfig{Cluster: []string{"127.0.0.1:7000", "rediss://acl:pw@127.0.0.1:7001?addr=127.0.0.1:7002"}, TLSInsecure: true}})
	copt := c.rdb.(*redis.ClusterClient).Options()
	if strings.Join(copt.Addrs, ",") != "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002" || copt.Username != "acl" || copt.Password != "pw" ||
		copt.TLSConfig == nil || !copt.TLSConfig.InsecureSkipVerify || copt.TLSConfig.ServerName != "" {
		t.Errorf("cluster client: %+v", copt)
	}
	if !strings.HasPrefix(c.cli, "-c ") {
		t.Errorf("redis-cli for a cluster needs -c: %q", c.cli)
	}

	c = build(Config{Redis: RedisConfig{Sentinel: []string{"127.0.0.1:26379"}, Master: "mymaster", Username: "u", Password: "p"}})
	if _, ok := c.rdb.(*redis.Client); !ok || c.server != "sentinel master mymaster" {
		t.Errorf("Sentinel client: %T %q", c.rdb, c.server)
	}
}

func TestRedisConfigProblems(t *testing.T) {
	t.Parallel()
	cfg := Config{RedisURL: "redis://x:1", Redis: RedisConfig{
		Cluster: []string{"a:1"}, Sentinel: []string{"nope"}, TLSCert: "c.pem",
	}}
	err := cfg.validateRedis()
	for _, want := range []string{"one of", "master's name", "needs its key", `"nope"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems %v: missing %q", err, want)
		}
	}
	cfg = Config{Redis: RedisConfig{Master: "m"}}
	if err := cfg.validateRedis(); err == nil {
		t.Error("a master name without Sentinels accepted")
	}
}
