// Command node runs one pushcluster node: SSE and WebSocket push relayed
// through Redis Streams. Every flag can also be set with the environment
// variable PUSH_<FLAG>, e.g. PUSH_REDIS_URL for -redis-url.
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pushcluster/pushcluster/pkg/events"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/store"
	"github.com/pushcluster/pushcluster/pkg/transport"
)

// version is stamped at build time: -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	// Not flags: a PUSH_VERSION in someone's environment must not stop a node.
	switch {
	case len(args) > 0 && args[0] == "healthcheck":
		return runHealthcheck(args[1:])
	case len(args) == 1 && (args[0] == "-version" || args[0] == "--version"):
		fmt.Println(version)
		return nil
	case len(args) == 1 && args[0] == "-print-config-doc":
		fs, _ := newFlagSet(&node.Config{})
		return writeConfigDoc(os.Stdout, fs)
	}
	var cfg node.Config
	fs, x := newFlagSet(&cfg)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if err := checkNumbers(fs); err != nil {
		return err
	}
	logger, err := newLogger(x.logLevel, x.logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.Version = version
	if cfg.Rebalance.Factor == 0 {
		cfg.Rebalance.Factor = -1 // 0 on the command line turns it off
	}
	if cfg.ReplayCacheBytes == 0 {
		cfg.ReplayCacheBytes = -1 // 0 on the command line keeps nothing
	}
	if cfg.IsolationTimeout == 0 {
		cfg.IsolationTimeout = -1 // 0 on the command line: never
	}
	if cfg.Transport.PresenceChannels, err = splitList(x.presence); err != nil {
		return err
	}
	if cfg.Events.Kinds, err = splitList(x.eventKinds); err != nil {
		return err
	}
	if cfg.Events.Channels, err = splitList(x.eventChannels); err != nil {
		return err
	}
	if cfg.Webhooks.Kinds, err = splitList(x.webhookKinds); err != nil {
		return err
	}
	if x.webhookSecretFile != "" {
		b, err := os.ReadFile(x.webhookSecretFile)
		if err != nil {
			return fmt.Errorf("failed to read -webhook-secret-file: %w", err)
		}
		cfg.Webhooks.Secret = strings.TrimSpace(string(b))
	}
	if cfg.Cluster.Join, err = splitList(x.join); err != nil {
		return err
	}
	if cfg.Cluster.Key, err = clusterKey(x.key, x.keyFile); err != nil {
		return err
	}
	if cfg.Redis.Cluster, err = splitList(x.rcluster); err != nil {
		return err
	}
	if cfg.Redis.Sentinel, err = splitList(x.rsentinel); err != nil {
		return err
	}
	if cfg.Redis.Password, err = secretFile(cfg.Redis.Password, x.passFile, "-redis-password-file"); err != nil {
		return err
	}
	if cfg.Redis.SentinelPassword, err = secretFile(cfg.Redis.SentinelPassword, x.sentinelPassFile, "-redis-sentinel-password-file"); err != nil {
		return err
	}
	if err := x.sec.apply(&cfg); err != nil {
		return err
	}
	node.SetRedisLogger(logger)
	logger.Info("pushcluster node", "version", version)
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return n.Run(ctx)
}

// envName returns the environment variable that sets flag name.
func envName(name string) string {
	return "PUSH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if ok && !given[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", envName(f.Name), e)
			}
		}
	})
	return err
}

func usage(fs *flag.FlagSet) {
	out := fs.Output()
	fmt.Fprintf(out, "Usage: node [flags]\n       node healthcheck [-listen addr] [-path /healthz]\n       node -version\n\nRuns a pushcluster node. Every flag can also be set by its environment variable.\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(out, "  -%s (env %s)\n    \t%s", f.Name, envName(f.Name), f.Usage)
		if f.DefValue != "" {
			fmt.Fprintf(out, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(out)
	})
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("bad -log-format %q: want text or json", format)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out, nil
}

// clusterKey decodes the gossip key from the flag or from a file.
func clusterKey(key, file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("failed to read -cluster-key-file: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return nil, fmt.Errorf("bad cluster key: want base64 of 16, 24 or 32 bytes: %w", err)
	}
	return b, nil
}

// secretFile returns the secret in file, without its trailing line break,
// or value when file is empty.
func secretFile(value, file, flag string) (string, error) {
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("failed to read %s: %w", flag, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// flagValues are the flags that need reading or checking before they go
// into a node.Config.
type flagValues struct {
	rcluster, rsentinel, passFile, sentinelPassFile string
	join, key, keyFile, presence                    string
	eventKinds, eventChannels                       string
	webhookSecretFile, webhookKinds                 string
	logLevel, logFormat                             string
	sec                                             *securityFlags
}

// newFlagSet returns the node's flags, bound to cfg and the values it
// returns.
func newFlagSet(cfg *node.Config) (*flag.FlagSet, *flagValues) {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	x := &flagValues{}
	fs.StringVar(&cfg.Listen, "listen", node.DefaultListen, "HTTP listen address")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "Redis URL, redis://[user:password@]host:port/db or rediss:// for TLS (empty, with no -redis-cluster or -redis-sentinel: an embedded development store on a free loopback port)")
	fs.StringVar(&x.rcluster, "redis-cluster", "", "Redis Cluster (or Valkey cluster) seed addresses, comma-separated host:port, or redis[s]://[user:password@]host:port URLs; the node finds the other nodes")
	fs.StringVar(&x.rsentinel, "redis-sentinel", "", "Sentinel addresses, comma-separated host:port, watching the master named by -redis-master")
	fs.StringVar(&cfg.Redis.Master, "redis-master", "", "name of the master the Sentinels watch")
	fs.StringVar(&cfg.Redis.Username, "redis-username", "", "Redis ACL user name (empty: the URL's, or the default user)")
	fs.StringVar(&cfg.Redis.Password, "redis-password", "", "Redis password (prefer -redis-password-file or the environment)")
	fs.StringVar(&x.passFile, "redis-password-file", "", "file holding the Redis password")
	fs.StringVar(&cfg.Redis.SentinelUsername, "redis-sentinel-username", "", "user name for the Sentinels themselves, when they require one")
	fs.StringVar(&cfg.Redis.SentinelPassword, "redis-sentinel-password", "", "password for the Sentinels themselves, when they require one")
	fs.StringVar(&x.sentinelPassFile, "redis-sentinel-password-file", "", "file holding the Sentinels' password")
	fs.BoolVar(&cfg.Redis.TLS, "redis-tls", false, "connect to Redis over TLS (a rediss:// URL does too)")
	fs.StringVar(&cfg.Redis.TLSCA, "redis-tls-ca", "", "PEM file of the CAs that sign the Redis servers' certificates (empty: the system's roots)")
	fs.StringVar(&cfg.Redis.TLSCert, "redis-tls-cert", "", "PEM client certificate, for servers that require one (tls-auth-clients)")
	fs.StringVar(&cfg.Redis.TLSKey, "redis-tls-key", "", "PEM key of -redis-tls-cert")
	fs.StringVar(&cfg.Redis.TLSServerName, "redis-tls-server-name", "", "name the servers' certificates must hold (empty: the host dialled)")
	fs.BoolVar(&cfg.Redis.TLSInsecure, "redis-tls-insecure", false, "accept any Redis certificate: encrypted but not authenticated, for trials only")
	fs.StringVar(&cfg.Prefix, "prefix", store.DefaultPrefix, "stream key prefix: channel C is the stream <prefix>C")
	fs.StringVar(&cfg.Name, "node-name", "", "node name shown to clients (default: the host name)")
	fs.Int64Var(&cfg.MaxLen, "max-len", store.DefaultMaxLen, "approximate entries kept per stream on the node's own publishes (negative: no trimming)")
	fs.DurationVar(&cfg.MaxAge, "max-age", 0, "on the node's own publishes, also trim entries older than this (0: no age bound)")
	fs.DurationVar(&cfg.ChannelTTL, "channel-ttl", store.DefaultChannelTTL, "a channel's stream expires this long after the node's last publish to it (negative: never)")
	fs.DurationVar(&cfg.IdempotencyWindow, "idempotency-window", store.DefaultIdempotencyWindow, "how long a publish's idempotency key is remembered: a publish with the same key and channel within it, on any node, stores nothing and answers the first one's id")
	fs.DurationVar(&cfg.Transport.Retry, "retry", transport.DefaultRetry, "SSE reconnection time sent to browsers")
	fs.DurationVar(&cfg.Transport.Heartbeat, "heartbeat", transport.DefaultHeartbeat, "keep-alive interval for idle connections")
	fs.IntVar(&cfg.Transport.QueueBytes, "queue-bytes", transport.DefaultQueueBytes, "per-connection queue bound; a client that fills it is disconnected as a slow consumer")
	fs.IntVar(&cfg.Transport.MaxPayload, "max-payload", transport.DefaultMaxPayload, "largest publish payload in bytes")
	fs.IntVar(&cfg.Transport.MaxChannels, "max-channels", transport.DefaultMaxChannels, "channels one connection may subscribe to")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", node.DefaultIdleTimeout, "close keep-alive connections idle this long (streams are not idle connections)")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", node.DefaultReadTimeout, "longest time to read one request, body included")
	fs.IntVar(&cfg.Transport.MaxConnections, "max-connections", 0, "SSE and WebSocket connections held; more are refused with 503 (0: what the open-file limit allows)")
	fs.IntVar(&cfg.FanoutWorkers, "fanout-workers", 0, "goroutines writing one large channel's messages (0: one per CPU)")
	fs.Int64Var(&cfg.ReplayCacheBytes, "replay-cache-bytes", hub.DefaultRecentBytes, "entry data, all channels together, kept of what was just delivered (its frames, one per transport in use, come on top) until 30 s after it was last replayed, so clients a burst cuts off resume from it without a Redis read each (0: none)")
	fs.StringVar(&cfg.DebugListen, "debug-listen", "", "address serving net/http/pprof profiles (empty: off; keep it private)")
	fs.StringVar(&x.presence, "presence-channels", "", "channels whose joins and leaves are published to <channel>.presence: comma-separated names, or prefixes ending in *")
	fs.StringVar(&cfg.Events.Stream, "events-stream", "", "Redis stream key the lifecycle events go to, outside -prefix (empty: none); read it with XREADGROUP (docs/PROTOCOL.md, Lifecycle events)")
	fs.StringVar(&x.eventKinds, "events", "channel,client,subscription", "the kinds of lifecycle events recorded, comma-separated: channel (occupied, vacated), client (connected, disconnected), subscription (added, removed)")
	fs.StringVar(&x.eventChannels, "events-channels", "", "channels whose channel and subscription events are recorded: comma-separated names, or prefixes ending in * (empty: every channel)")
	fs.DurationVar(&cfg.Events.VacateDelay, "vacate-delay", events.DefaultVacateDelay, "a channel is vacated this long after its last subscriber on a node leaves, so a client that reconnects at once does not flap it")
	fs.StringVar(&cfg.Webhooks.URL, "webhook-url", "", "URL the lifecycle events are POSTed to, in signed batches (Standard Webhooks), at least once and in order; needs -events-stream (empty: none)")
	fs.StringVar(&cfg.Webhooks.Secret, "webhook-secret", "", "the webhooks' signing secret, whsec_ and the base64 of at least 24 random bytes (prefer -webhook-secret-file or the environment)")
	fs.StringVar(&x.webhookSecretFile, "webhook-secret-file", "", "file holding the webhooks' signing secret")
	fs.StringVar(&x.webhookKinds, "webhook-events", "channel,client,subscription", "the kinds of lifecycle events sent to the webhook, comma-separated")
	fs.DurationVar(&cfg.Webhooks.RetryFor, "webhook-retry-for", events.DefaultWebhookRetryFor, "how long events are retried while the webhook's receiver fails or is down; then they are dropped and counted")
	fs.StringVar(&cfg.Cluster.Bind, "cluster-bind", "", "gossip address host:port, TCP and UDP (memberlist's usual port is 7946; empty: run alone)")
	fs.StringVar(&cfg.Cluster.Advertise, "cluster-advertise", "", "gossip address peers use, host:port (default: the bind address)")
	fs.StringVar(&x.join, "cluster-join", "", "peers to join: comma-separated host:port, or a DNS name resolving to every peer (a Kubernetes headless service, a compose service); resolved again while the node has no peers")
	fs.StringVar(&x.key, "cluster-key", "", "gossip encryption key, base64 of 16, 24 or 32 bytes (prefer -cluster-key-file or the environment)")
	fs.StringVar(&x.keyFile, "cluster-key-file", "", "file holding the gossip encryption key")
	fs.BoolVar(&cfg.Cluster.Insecure, "cluster-insecure", false, "allow gossip without -cluster-key on a node with authentication on: only on a network that nothing but the nodes reaches")
	fs.StringVar(&cfg.Cluster.Profile, "cluster-profile", "lan", "gossip timers: lan, wan, or local (one host: failures seen in seconds)")
	fs.DurationVar(&cfg.IsolationTimeout, "isolation-timeout", node.DefaultIsolationTimeout, "a node in a cluster that reaches neither Redis nor any member for this long ends its connections, so their clients move to nodes that can serve them (0: never)")
	fs.DurationVar(&cfg.Transport.DrainTimeout, "drain-timeout", transport.DefaultDrainTimeout, "on SIGTERM, spread closing the connections over this long (fits Kubernetes' 30 s grace period)")
	fs.Float64Var(&cfg.Rebalance.Factor, "rebalance-factor", node.DefaultRebalanceFactor, "shed connections while more than a handful (4) above the cluster mean times this (0: off)")
	fs.DurationVar(&cfg.Rebalance.After, "rebalance-after", node.DefaultRebalanceAfter, "how long a node must be over before it sheds")
	fs.Float64Var(&cfg.Rebalance.Rate, "rebalance-rate", node.DefaultRebalanceRate, "most connections shed per second, as a fraction of the node's")
	x.sec = addSecurityFlags(fs, cfg)
	fs.StringVar(&x.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&x.logFormat, "log-format", "text", "log format: text or json")
	fs.Usage = func() { usage(fs) }
	return fs, x
}
