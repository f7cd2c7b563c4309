package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisConfig says which Redis deployment the node uses beyond a URL: a
// Redis Cluster, a Sentinel group, and the credentials and TLS of either
// (or of Config.RedisURL). Valkey speaks the same protocol: every field
// works for it unchanged. The zero value adds nothing to RedisURL.
type RedisConfig struct {
	// Cluster are seed addresses (host:port) of a Redis Cluster; the node
	// learns the other nodes from them. An item may be a URL,
	// redis[s]://[user:password@]host:port, whose credentials and TLS
	// apply when the fields below leave them out. Empty means not a cluster.
	Cluster []string
	// Sentinel are addresses (host:port) of the Sentinels watching Master.
	// Empty means no Sentinel.
	Sentinel []string
	// Master is the name of the Sentinel group's master. Required with Sentinel.
	Master string
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// themselves, when they require it. Empty means none.
	SentinelUsername, SentinelPassword string
	// Username and Password authenticate to Redis (an ACL user, or the
	// default user's requirepass with an empty Username). Empty means
	// those of the URL, or none.
	Username, Password string
	// TLS turns TLS on (a rediss:// URL does too).
	TLS bool
	// TLSCA is a PEM file of the certificate authorities that sign the
	// servers' certificates. Empty means the system's roots.
	TLSCA string
	// TLSCert and TLSKey are PEM files of a client certificate and its key,
	// for servers that ask for one (Redis's tls-auth-clients). Empty means none.
	TLSCert, TLSKey string
	// TLSServerName is the name the servers' certificates must hold. Empty
	// means the host dialled: in a cluster, the addresses the nodes announce.
	TLSServerName string
	// TLSInsecure accepts any certificate. It keeps the traffic encrypted
	// but not authenticated: anyone on the path can pose as Redis. For
	// trials only; prefer TLSCA and TLSServerName.
	TLSInsecure bool
}

// redisMode returns which deployment cfg names.
func (cfg *Config) redisMode() string {
	switch {
	case len(cfg.Redis.Cluster) > 0:
		return "cluster"
	case len(cfg.Redis.Sentinel) > 0:
		return "sentinel"
	case cfg.RedisURL != "":
		return "url"
	}
	return "embedded"
}

// validateRedis reports every problem with the Redis settings at once.
func (cfg *Config) validateRedis() error {
	var errs []error
	r := cfg.Redis
	n := 0
	for _, set := range []bool{cfg.RedisURL != "", len(r.Cluster) > 0, len(r.Sentinel) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("node: give one of a Redis URL, a cluster's seeds and Sentinels"))
	}
	if len(r.Sentinel) > 0 && r.Master == "" {
		errs = append(errs, errors.New("node: Sentinels need the master's name (-redis-master)"))
	}
	if r.Master != "" && len(r.Sentinel) == 0 {
		errs = append(errs, errors.New("node: a master name needs Sentinels (-redis-sentinel)"))
	}
	if (r.TLSCert == "") != (r.TLSKey == "") {
		errs = append(errs, errors.New("node: a TLS client certificate needs its key, and the key its certificate"))
	}
	for _, addr := range r.Sentinel {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("node: Sentinel address %q: %w", addr, err))
		}
	}
	return errors.Join(errs...)
}

// redisClient is a connected deployment: the client, and how to name it.
type redisClient struct {
	rdb redis.UniversalClient
	db  int
	// server names a deployment that is not a cluster, for readiness.
	server string
	// cli is what redis-cli needs to reach it, for the demo page.
	cli string
	// conns is about how many connections the client may hold.
	conns int
}

// newRedisClient builds the client cfg names; url is the URL to use when
// cfg names no cluster or Sentinels.
func newRedisClient(cfg *Config, url string) (*redisClient, error) {
	if err := cfg.validateRedis(); err != nil {
		return nil, err
	}
	r := cfg.Redis
	switch {
	case len(r.Cluster) > 0:
		return newClusterClient(r)
	case len(r.Sentinel) > 0:
		return newFailoverClient(r)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("node: bad Redis URL: %w", err)
	}
	if err := r.apply(&opt.Username, &opt.Password, &opt.TLSConfig); err != nil {
		return nil, err
	}
	c := redis.NewClient(opt)
	return &redisClient{rdb: c, db: opt.DB, server: opt.Addr, cli: redisCLIArgs(opt.Addr, opt.DB, opt.TLSConfig != nil), conns: c.Options().PoolSize}, nil
}

func newClusterClient(r RedisConfig) (*redisClient, error) {
	opt := &redis.ClusterOptions{}
	for _, seed := range r.Cluster {
		if !strings.Contains(seed, "://") {
			opt.Addrs = append(opt.Addrs, seed)
			continue
		}
		u, err := redis.ParseClusterURL(seed)
		if err != nil {
			return nil, fmt.Errorf("node: bad Redis Cluster URL: %w", err)
		}
		opt.Addrs = append(opt.Addrs, u.Addrs...)
		opt.Username, opt.Password = cmpOr(opt.Username, u.Username), cmpOr(opt.Password, u.Password)
		if opt.TLSConfig == nil {
			opt.TLSConfig = u.TLSConfig
		}
	}
	if err := r.apply(&opt.Username, &opt.Password, &opt.TLSConfig); err != nil {
		return nil, err
	}
	c := redis.NewClusterClient(opt)
	// Each primary's pool, and as many again while slots move or replicas
	// are promoted; at least three primaries.
	conns := 2 * max(3, len(opt.Addrs)) * c.Options().PoolSize
	return &redisClient{rdb: c, cli: "-c " + redisCLIArgs(opt.Addrs[0], 0, opt.TLSConfig != nil), conns: conns}, nil
}

func newFailoverClient(r RedisConfig) (*redisClient, error) {
	opt := &redis.FailoverOptions{
		MasterName: r.Master, SentinelAddrs: r.Sentinel,
		SentinelUsername: r.SentinelUsername, SentinelPassword: r.SentinelPassword,
	}
	if err := r.apply(&opt.Username, &opt.Password, &opt.TLSConfig); err != nil {
		return nil, err
	}
	c := redis.NewFailoverClient(opt)
	return &redisClient{rdb: c, server: "sentinel master " + r.Master, conns: c.Options().PoolSize + len(r.Sentinel)}, nil
}

// apply sets credentials and TLS from r over what a URL gave.
func (r RedisConfig) apply(user, pass *string, tc **tls.Config) error {
	*user, *pass = cmpOr(r.Username, *user), cmpOr(r.Password, *pass)
	if !r.TLS && *tc == nil && r.TLSCA == "" && r.TLSCert == "" && !r.TLSInsecure {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if *tc != nil {
		cfg = (*tc).Clone()
		cfg.ServerName = "" // ParseURL sets the URL's host; a cluster's nodes have their own
	}
	cfg.ServerName = cmpOr(r.TLSServerName, cfg.ServerName)
	cfg.InsecureSkipVerify = r.TLSInsecure
	if r.TLSCA != "" {
		pem, err := os.ReadFile(r.TLSCA)
		if err != nil {
			return fmt.Errorf("node: failed to read the Redis TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("node: no PEM certificate in the Redis TLS CA file %s", r.TLSCA)
		}
		cfg.RootCAs = pool
	}
	if r.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(r.TLSCert, r.TLSKey)
		if err != nil {
			return fmt.Errorf("node: failed to load the Redis TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	*tc = cfg
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
