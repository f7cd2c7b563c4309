package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/pushcluster/pushcluster/internal/hist"
)

// Report is everything a run measured; it renders as a table and as JSON.
// Sections a scenario does not measure are nil.
type Report struct {
	Scenario    string          `json:"scenario"`
	Target      string          `json:"target"`
	Started     time.Time       `json:"started"`
	Settings    Settings        `json:"settings"`
	Connections *ConnReport     `json:"connections,omitempty"`
	Delivery    *DeliveryReport `json:"delivery,omitempty"`
	Node        *ProcReport     `json:"node,omitempty"`
	Resume      *ResumeReport   `json:"resume,omitempty"`
	Floor       *FloorReport    `json:"fanout_floor,omitempty"`
	Memory      []MemoryRow     `json:"idle_memory,omitempty"`
	Drain       []DrainReport   `json:"drain,omitempty"`
	Presence    []PresenceRow   `json:"presence,omitempty"`
	Bursts      []BurstRow      `json:"bursts,omitempty"`
	Connects    []ConnectRow    `json:"connects,omitempty"`
	Timeline    []second        `json:"timeline,omitempty"`
	Notes       []string        `json:"notes,omitempty"`
}

// Settings echo what was asked for.
type Settings struct {
	SSE         int      `json:"sse"`
	WS          int      `json:"ws"`
	Transport   string   `json:"transport,omitempty"` // of the SSE clients, when not sse
	Channels    string   `json:"channels"`
	Ramp        float64  `json:"ramp_per_s"`
	PublishRate float64  `json:"publish_rate"`
	Payload     int      `json:"payload_bytes"`
	Via         string   `json:"via"`
	Duration    string   `json:"duration"`
	Warmup      string   `json:"warmup"`
	Sources     string   `json:"sources"`
	Behind      int      `json:"behind,omitempty"`
	Bursts      []string `json:"bursts,omitempty"`
	Rounds      int      `json:"rounds,omitempty"`
}

// Percentiles summarize a histogram, in milliseconds.
type Percentiles struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func percentiles(s *hist.Snapshot) Percentiles {
	return Percentiles{
		Count: s.Count(), Mean: s.Mean() / 1e6,
		P50: ms(s.Quantile(0.5)), P90: ms(s.Quantile(0.9)), P99: ms(s.Quantile(0.99)),
		P999: ms(s.Quantile(0.999)), Max: ms(s.Max()),
	}
}

// ConnReport is how connecting went.
type ConnReport struct {
	Target      int         `json:"target"`
	Established int64       `json:"established"`
	Failed      int64       `json:"failed_attempts"`
	ConnectMs   Percentiles `json:"connect_ms"`
}

// DeliveryReport is what the measured window delivered. Expected counts,
// per channel, the messages published in the window times the subscribers
// of that channel that stayed subscribed through it; Received counts what
// those subscribers got of them, each message once.
type DeliveryReport struct {
	Published     int64       `json:"published"`
	PublishFailed int64       `json:"publish_failed"`
	Overrun       int64       `json:"publish_overrun"`
	Deliveries    int64       `json:"deliveries"`
	PerSecond     float64     `json:"deliveries_per_s"`
	Expected      int64       `json:"expected"`
	Received      int64       `json:"received"`
	Missing       int64       `json:"missing"`
	Duplicates    int64       `json:"duplicates"`
	Skipped       int64       `json:"sequence_skips"`
	Gaps          int64       `json:"gaps"`
	Errors        int64       `json:"errors"`
	Reconnects    int64       `json:"reconnects"`
	Foreign       int64       `json:"foreign"`
	Steady        int         `json:"steady_clients"`
	LatencyMs     Percentiles `json:"latency_ms"`
}

// ProcReport is a process's cost from /proc over the measured window.
type ProcReport struct {
	PID              int     `json:"pid"`
	CPUSeconds       float64 `json:"cpu_s"`
	CPUUsPerDelivery float64 `json:"cpu_us_per_delivery"`
	RSSBytes         int64   `json:"rss_bytes"`
}

// ResumeReport is the reconnect storm.
type ResumeReport struct {
	Clients       int         `json:"clients"`
	Behind        int         `json:"behind_per_channel"`
	Published     int64       `json:"published_while_away"`
	PublishSecs   float64     `json:"publish_s"`
	CaughtUp      int         `json:"caught_up"`
	CatchupMs     Percentiles `json:"catchup_ms"`
	AllCaughtUpMs float64     `json:"all_caught_up_ms"`
	ReconnectMs   Percentiles `json:"reconnect_ms"`
	Replayed      int64       `json:"replayed"`
	ReplayPerSec  float64     `json:"replayed_per_s"`
	Expected      int64       `json:"expected"`
	Missing       int64       `json:"missing"`
	Duplicates    int64       `json:"duplicates"`
	Gaps          int64       `json:"gaps"`
	Errors        int64       `json:"errors"`
	FailedConns   int64       `json:"failed_attempts"`
}

// FloorReport compares the node's CPU per delivered message with a bare
// write loop's.
type FloorReport struct {
	Subscribers int       `json:"subscribers"`
	Node        FloorSide `json:"node"`
	Floor       FloorSide `json:"floor"`
	Ratio       float64   `json:"ratio"`
	// Poll is the node with the same subscribers long-polling
	// (-transport poll), and PollRatio its CPU per delivery over the
	// node's on SSE.
	Poll      *FloorSide `json:"poll,omitempty"`
	PollRatio float64    `json:"poll_ratio,omitempty"`
}

// FloorSide is one side of the fan-out comparison.
type FloorSide struct {
	PID              int         `json:"pid"`
	Messages         int64       `json:"messages"`
	Deliveries       int64       `json:"deliveries"`
	Expected         int64       `json:"expected"`
	CPUSeconds       float64     `json:"cpu_s"`
	CPUUsPerDelivery float64     `json:"cpu_us_per_delivery"`
	LatencyMs        Percentiles `json:"latency_ms"`
}

// MemoryRow is one idle-memory measurement: the node against a bare server
// holding the same connections, or, for long polling, against the node
// holding them as SSE streams (Bare is then the node's SSE figure).
type MemoryRow struct {
	Transport   string  `json:"transport"`
	Connections int     `json:"connections"`
	NodeBytes   int64   `json:"node_rss_delta_bytes"`
	BareBytes   int64   `json:"bare_rss_delta_bytes"`
	NodePerConn float64 `json:"node_bytes_per_conn"`
	BarePerConn float64 `json:"bare_bytes_per_conn"`
	Ratio       float64 `json:"ratio"`
}

// DrainReport is one drain of the node every client was on. Times are
// from the SIGTERM, as the clients saw them.
type DrainReport struct {
	// Signal is what the first node got: SIGTERM (a drain) or SIGKILL (a
	// storm). Empty means SIGTERM.
	Signal       string `json:"signal,omitempty"`
	DrainTimeout string `json:"drain_timeout"`
	Clients      int    `json:"clients"`
	Nodes        int    `json:"nodes"`
	// Closed streams of the drained node; SpreadMs is when the last ended.
	Closed       int     `json:"closed"`
	FirstCloseMs float64 `json:"first_close_ms"`
	SpreadMs     float64 `json:"spread_ms"`
	ExitMs       float64 `json:"exit_ms"`
	// Reconnected to another node; resumed once caught up with everything
	// published before that reconnect.
	Reconnected      int         `json:"reconnected"`
	FirstReconnectMs float64     `json:"first_reconnect_ms"`
	Resumed          int         `json:"resumed"`
	AllResumedMs     float64     `json:"all_resumed_ms"`
	ResumeMs         Percentiles `json:"resume_ms"`
	OutageMs         Percentiles `json:"outage_ms"` // per client: stream ended → resumed
	// BeyondBackoffMs is each outage less the client's own backoff in it;
	// WithinBackoffBound counts the clients whose is at most resumeBound.
	BeyondBackoffMs        Percentiles `json:"beyond_backoff_ms"`
	WithinBackoffBound     int         `json:"within_backoff_bound"`
	PeakClosesPerSec       int         `json:"peak_closes_per_s"`
	PeakReconnectsPerSec   int         `json:"peak_reconnects_per_s"`
	PeakReconnectsPer100ms int         `json:"peak_reconnects_per_100ms"`
	ReconnectsPerSec       []int       `json:"reconnects_per_s"`
	FailedConns            int64       `json:"failed_attempts"`
	// The other nodes' CPU from the signal until every client resumed,
	// beyond their idle rate before it, and that per resumed client.
	SurvivorCPUMs          float64     `json:"survivor_cpu_ms"`
	SurvivorCPUUsPerResume float64     `json:"survivor_cpu_us_per_resume"`
	Redis                  RedisWindow `json:"redis"`
	// Over the whole round, publishing included.
	Published     int64 `json:"published"`
	PublishFailed int64 `json:"publish_failed"`
	Missing       int64 `json:"missing"`
	Skipped       int64 `json:"sequence_skips"`
	Duplicates    int64 `json:"duplicates"`
	Gaps          int64 `json:"gaps"`
	Errors        int64 `json:"errors"`
	Foreign       int64 `json:"foreign"`
	EarlyEnds     int64 `json:"ended_before_sigterm"`
}

// RedisWindow is what Redis did from the SIGTERM until every client had
// resumed (INFO commandstats and cpu). LiveEstimate is the reads live
// delivery would have made anyway, at the steady rate per watching node;
// ResumeReads is the rest.
type RedisWindow struct {
	WindowMs           float64 `json:"window_ms"`
	XRange             int64   `json:"xrange"`
	XRevRange          int64   `json:"xrevrange"`
	XRead              int64   `json:"xread"`
	XInfo              int64   `json:"xinfo_stream"`
	XAdd               int64   `json:"xadd"`
	CPUMs              float64 `json:"cpu_ms"`
	SteadyXRangePerSec float64 `json:"steady_xrange_per_s_per_node"`
	LiveEstimate       float64 `json:"live_xrange_estimate"`
	ResumeReads        float64 `json:"resume_xrange"`
	ReadsPerClient     float64 `json:"resume_xrange_per_client"`
}

// PresenceRow is one cluster question asked Queries times of the first
// node, with Clients idle clients spread over the nodes.
type PresenceRow struct {
	Clients  int    `json:"clients"`
	Question string `json:"question"`
	// Listed is how many clients the last answer listed; Expected how many
	// it should have.
	Listed    int         `json:"listed"`
	Expected  int         `json:"expected"`
	Partial   int         `json:"partial_answers"`
	Failed    int         `json:"failed"`
	Bytes     int         `json:"response_bytes"`
	LatencyMs Percentiles `json:"latency_ms"`
	// CPU per query beyond the nodes' idle rate: the node asked, and the
	// others together.
	AskedCPUUs float64 `json:"asked_cpu_us_per_query"`
	PeersCPUUs float64 `json:"peers_cpu_us_per_query"`
}

// writeJSON writes r, indented.
func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
