package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"time"
)

// Scenarios.
const (
	ScenarioLoad        = "load"
	ScenarioResume      = "resume"
	ScenarioFanoutFloor = "fanout-floor"
	ScenarioIdleMemory  = "idle-memory"
	ScenarioDrain       = "drain"
	ScenarioStorm       = "storm"
	ScenarioPresence    = "presence"
	ScenarioBurst       = "burst"
	ScenarioConnect     = "connect"
)

// Publish paths.
const (
	ViaXADD = "xadd"
	ViaHTTP = "http"
)

// Defaults for Config.
const (
	DefaultURL            = "http://127.0.0.1:6788"
	DefaultPrefix         = "push:"
	DefaultChannels       = "hot"
	DefaultChannelBase    = "bench"
	DefaultRamp           = 500.0
	DefaultPublishRate    = 100.0
	DefaultPayload        = 100
	DefaultDuration       = 30 * time.Second
	DefaultWarmup         = 5 * time.Second
	DefaultDrain          = 5 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultReadyTimeout   = 60 * time.Second
	DefaultSettle         = 3 * time.Second
	DefaultBehind         = 100
	DefaultCatchupTimeout = 60 * time.Second
	DefaultMaxLen         = 10_000
	DefaultPublishWorkers = 4
	DefaultLocalSources   = "127.0.0.2-127.0.0.20"
	DefaultNodeIPs        = "127.0.0.101-127.0.0.103"
	DefaultGossipPort     = 7946
	DefaultDrainTimeout   = 25 * time.Second
	DefaultDrainBaseline  = time.Millisecond
	DefaultQueries        = 50
	DefaultRounds         = 1
)

// Config is one run of the tool. Zero values mean the defaults above where
// a field says so.
type Config struct {
	// Scenario is what to measure: ScenarioLoad (default), ScenarioResume,
	// ScenarioFanoutFloor, ScenarioIdleMemory, ScenarioDrain, ScenarioStorm,
	// ScenarioPresence, ScenarioBurst or ScenarioConnect.
	Scenario string
	// URL is the node's base URL. Defaults to DefaultURL; -start-node replaces it.
	URL string
	// RedisURL is where XADD publishes go, and the Redis a started node uses.
	RedisURL string
	// Prefix is the stream key prefix: channel C is the stream <Prefix>C.
	// Defaults to DefaultPrefix.
	Prefix string
	// SSE and WS are how many clients of each transport to open.
	SSE, WS int
	// Transport is how the clients counted by SSE connect: "sse" (the
	// default) or "poll" (long polling). With poll, fanout-floor and
	// idle-memory measure the same clients over SSE too, in the same run,
	// and compare.
	Transport string
	// Ramp is how many connections to start per second; 0 means all at once.
	Ramp float64
	// Channels spreads the clients: "hot", "many:N" or "skewed:N".
	// Defaults to DefaultChannels.
	Channels ChannelSpec
	// ChannelBase names the channels: <base>-hot, <base>-0, <base>-1, …
	// Defaults to DefaultChannelBase.
	ChannelBase string
	// PublishRate is messages per second over all channels.
	PublishRate float64
	// Payload is the size of each message's data in bytes; at least what the
	// timestamp and sequence number need.
	Payload int
	// Via is how to publish: ViaXADD (default) or ViaHTTP.
	Via string
	// MaxLen trims each stream with XADD MAXLEN ~ N; 0 means no trimming.
	MaxLen int64
	// PublishWorkers publish concurrently; a channel always goes through the
	// same one, so each channel's messages stay in order.
	PublishWorkers int
	// Duration is the measured window; Warmup comes before it and Drain
	// bounds the wait for deliveries after it.
	Duration, Warmup, Drain time.Duration
	// ConnectTimeout bounds one connection attempt up to its first event;
	// ReadyTimeout bounds the wait for every client to connect.
	ConnectTimeout, ReadyTimeout time.Duration
	// Sources are the local addresses connections are spread over; empty
	// lets the OS choose.
	Sources []netip.Addr
	// Behind is how many messages per channel the resume scenario publishes
	// while its clients are away; CatchupTimeout bounds their catch-up.
	Behind         int
	CatchupTimeout time.Duration
	// Settle is how long idle-memory waits after the last connection before
	// reading RSS.
	Settle time.Duration
	// NodePID is the target node's process, for CPU and RSS from /proc.
	NodePID int
	// StartNode builds ./cmd/node and runs it on a free loopback port with
	// RedisURL, instead of using URL.
	StartNode bool
	// NodeBin is the node binary StartNode and the cluster scenarios run;
	// empty means build ./cmd/node.
	NodeBin string
	// NodeIPs are the loopback addresses of the nodes the cluster scenarios
	// (drain, presence) start, one node each, gossiping on GossipPort and
	// serving HTTP on a free port. The first is the one drained (drain) and
	// asked (presence).
	NodeIPs    []netip.Addr
	GossipPort int
	// DrainTimeout is the started nodes' -drain-timeout in the drain
	// scenario; when DrainBaseline is positive the scenario then runs again
	// with that timeout (all at once), for comparison.
	DrainTimeout, DrainBaseline time.Duration
	// Queries is how many times the presence scenario asks each question.
	Queries int
	// Steps are client counts the presence scenario also measures at, on
	// its way up to SSE+WS, in increasing order.
	Steps []int
	// Bursts are the shapes the burst scenario publishes, each as one
	// pipelined batch of XADDs; parsed from DefaultBursts when not given.
	Bursts []BurstShape
	// Rounds repeats each burst row; the table shows medians. Defaults to
	// DefaultRounds.
	Rounds int
	// ProfileDir, when set, receives the started node's heap and allocs
	// profiles from just before and just after each burst.
	ProfileDir string
	// JSONPath receives the summary as JSON; "-" means stdout (the table
	// then goes to stderr).
	JSONPath string
	// PlotPath receives an SVG chart of latency and throughput per second.
	PlotPath string
	// Seed makes channel assignment and publishing choices repeatable.
	Seed uint64
	// Progress receives the per-second line and step notes; nil discards.
	Progress io.Writer
	// Logger receives diagnostics; nil discards.
	Logger *slog.Logger
}

// Validate reports every problem with cfg at once.
func (cfg Config) Validate() error {
	var errs []error
	switch cfg.Scenario {
	case ScenarioLoad, ScenarioResume, ScenarioFanoutFloor, ScenarioIdleMemory, ScenarioDrain, ScenarioStorm, ScenarioPresence, ScenarioBurst, ScenarioConnect:
	default:
		errs = append(errs, fmt.Errorf("bench: unknown scenario %q", cfg.Scenario))
	}
	if _, err := url.Parse(cfg.URL); err != nil {
		errs = append(errs, fmt.Errorf("bench: bad -url: %w", err))
	}
	if cfg.SSE < 0 || cfg.WS < 0 || cfg.SSE+cfg.WS == 0 {
		errs = append(errs, errors.New("bench: -sse and -ws must not be negative, and not both 0"))
	}
	switch cfg.Transport {
	case "", transportSSE:
	case transportPoll:
		if cfg.Scenario == ScenarioBurst || cfg.Scenario == ScenarioPresence || cfg.Scenario == ScenarioConnect {
			errs = append(errs, fmt.Errorf("bench: -transport poll does not apply to %s", cfg.Scenario))
		}
	default:
		errs = append(errs, fmt.Errorf("bench: -transport %q: want sse or poll", cfg.Transport))
	}
	if cfg.Via != ViaXADD && cfg.Via != ViaHTTP {
		errs = append(errs, fmt.Errorf("bench: -via %q: want xadd or http", cfg.Via))
	}
	if cfg.Via == ViaXADD && cfg.RedisURL == "" && cfg.Scenario != ScenarioIdleMemory {
		errs = append(errs, errors.New("bench: -via xadd needs -redis-url"))
	}
	if cfg.StartNode && cfg.RedisURL == "" {
		errs = append(errs, errors.New("bench: -start-node needs -redis-url"))
	}
	if cfg.StartNode && cfg.NodePID != 0 {
		errs = append(errs, errors.New("bench: -start-node and -node-pid exclude each other"))
	}
	if cfg.PublishRate <= 0 || cfg.Ramp < 0 || cfg.Payload < 0 || cfg.PublishWorkers <= 0 {
		errs = append(errs, errors.New("bench: -publish-rate and -publish-workers must be positive, -ramp and -payload not negative"))
	}
	if cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Drain < 0 || cfg.Settle < 0 {
		errs = append(errs, errors.New("bench: -duration must be positive, -warmup, -drain and -settle not negative"))
	}
	if cfg.Scenario == ScenarioResume && cfg.Behind <= 0 {
		errs = append(errs, errors.New("bench: -behind must be positive"))
	}
	if (cfg.Scenario == ScenarioFanoutFloor || cfg.Scenario == ScenarioIdleMemory || cfg.Scenario == ScenarioBurst) && cfg.NodePID == 0 && !cfg.StartNode {
		errs = append(errs, fmt.Errorf("bench: %s needs -node-pid or -start-node", cfg.Scenario))
	}
	if cfg.Scenario == ScenarioConnect && (!cfg.StartNode || cfg.RedisURL == "" || cfg.Rounds <= 0 || cfg.SSE <= 0) {
		errs = append(errs, errors.New("bench: connect needs -start-node (it starts each variant of the node), -redis-url, -rounds and -sse connects per round"))
	}
	errs = append(errs, cfg.validateBurst()...)
	errs = append(errs, cfg.validateCluster()...)
	return errors.Join(errs...)
}

// validateBurst checks what the burst scenario needs.
func (cfg Config) validateBurst() (errs []error) {
	if cfg.Scenario != ScenarioBurst {
		return nil
	}
	if cfg.RedisURL == "" {
		errs = append(errs, errors.New("bench: burst needs -redis-url: it publishes with XADD and the bare relay reads the stream"))
	}
	if len(cfg.Bursts) == 0 || cfg.Rounds <= 0 || cfg.CatchupTimeout <= 0 {
		errs = append(errs, errors.New("bench: burst needs -bursts, a positive -rounds and -catchup-timeout"))
	}
	if cfg.ProfileDir != "" && !cfg.StartNode {
		errs = append(errs, errors.New("bench: -profile-dir needs -start-node: the tool gives the node it starts a debug listener"))
	}
	return errs
}

// validateCluster checks what the cluster scenarios need.
func (cfg Config) validateCluster() (errs []error) {
	if !cfg.clustered() {
		return nil
	}
	if cfg.RedisURL == "" {
		errs = append(errs, fmt.Errorf("bench: %s needs -redis-url", cfg.Scenario))
	}
	if cfg.NodePID != 0 {
		errs = append(errs, fmt.Errorf("bench: %s starts its own nodes; -node-pid does not apply", cfg.Scenario))
	}
	if len(cfg.NodeIPs) < 2 {
		errs = append(errs, errors.New("bench: -node-ips must name at least two addresses"))
	}
	for _, a := range cfg.NodeIPs {
		if !a.IsLoopback() {
			errs = append(errs, fmt.Errorf("bench: node address %s is not a loopback address", a))
		}
	}
	if cfg.GossipPort <= 0 || cfg.GossipPort > 65535 {
		errs = append(errs, errors.New("bench: -gossip-port must be a port number"))
	}
	if cfg.DrainTimeout <= 0 || cfg.DrainBaseline < 0 || cfg.Queries <= 0 {
		errs = append(errs, errors.New("bench: -drain-timeout and -queries must be positive, -drain-baseline not negative"))
	}
	for i, n := range cfg.Steps {
		if n <= 0 || n >= cfg.clients() || (i > 0 && n <= cfg.Steps[i-1]) {
			errs = append(errs, fmt.Errorf("bench: -steps must increase, each between 0 and the %d clients", cfg.clients()))
			break
		}
	}
	return errs
}

// clustered reports whether the scenario starts a cluster of nodes.
func (cfg Config) clustered() bool {
	return cfg.Scenario == ScenarioDrain || cfg.Scenario == ScenarioStorm || cfg.Scenario == ScenarioPresence
}

// clients returns how many clients the run opens.
func (cfg Config) clients() int { return cfg.SSE + cfg.WS }

// streams is the transport of the clients counted by SSE.
func (cfg Config) streams() string {
	if cfg.Transport == "" {
		return transportSSE
	}
	return cfg.Transport
}
