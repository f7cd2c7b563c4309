// Package metrics exposes a node's counters in the Prometheus format at
// /metrics. The parts keep plain atomic counters on their hot paths; this
// package reads them once per scrape.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pushcluster/pushcluster/pkg/api"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/events"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/transport"
)

const namespace = "pushcluster"

// Metrics is a node's Prometheus registry.
type Metrics struct {
	reg      *prometheus.Registry
	readTime prometheus.Histogram
	src      Sources
}

// Sources are the counters of a node's parts, read once per scrape. Each
// must be safe for concurrent use; all are required.
type Sources struct {
	Hub       func() hub.Stats
	Transport func() transport.Stats
	API       func() api.Stats
	Auth      func() auth.Stats
	Cluster   func() cluster.Stats
	// Listener counts the connections the node's listener refused.
	Listener func() uint64
	// Events and Webhooks, when set, count the lifecycle events and their
	// delivery.
	Events   func() events.Stats
	Webhooks func() events.WebhookStats
}

// New returns a registry with the Go runtime and process collectors.
// Attach the node's parts with Watch before serving.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.readTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "redis_read_seconds",
		Help:    "Round trip of one pipelined read of the channels that moved.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
	})
	m.reg.MustRegister(m.readTime,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveRead records one read's round trip; it is the hub's ReadLatency hook.
func (m *Metrics) ObserveRead(d time.Duration) { m.readTime.Observe(d.Seconds()) }

// Watch makes the registry report the parts' counters. Call it once,
// before serving.
func (m *Metrics) Watch(src Sources) {
	m.src = src
	m.reg.MustRegister(m)
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

type desc struct {
	*prometheus.Desc
	kind prometheus.ValueType
}

func newDesc(name, help string, kind prometheus.ValueType, labels ...string) desc {
	return desc{prometheus.NewDesc(namespace+"_"+name, help, labels, nil), kind}
}

var (
	descConnections   = newDesc("connections", "Open client connections.", prometheus.GaugeValue, "transport")
	descSubscriptions = newDesc("subscriptions", "Live subscriptions on this node.", prometheus.GaugeValue)
	descChannels      = newDesc("channels_of_interest", "Channels with at least one local subscriber.", prometheus.GaugeValue)
	descNotified      = newDesc("doorbell_notified", "1 when keyspace notifications are proven to arrive; 0 while polling.", prometheus.GaugeValue)
	descDeliveries    = newDesc("deliveries_total", "Messages queued to connections by live fan-out.", prometheus.CounterValue)
	descSlow          = newDesc("slow_consumer_disconnects_total", "Connections cut off because their queue filled.", prometheus.CounterValue)
	descReplays       = newDesc("replays_total", "Subscriptions that resumed from a position.", prometheus.CounterValue)
	descReplayed      = newDesc("replayed_entries_total", "Entries sent by replays.", prometheus.CounterValue)
	descGaps          = newDesc("gaps_total", "Gaps signalled to subscribers, by reason.", prometheus.CounterValue, "reason")
	descWakeups       = newDesc("wakeups_total", "Doorbell rings for one channel.", prometheus.CounterValue)
	descSweeps        = newDesc("catchup_sweeps_total", "Rings for every channel of interest: reconnects, failed probes, polls.", prometheus.CounterValue)
	descChecked       = newDesc("channels_checked_total", "Channels suspected of moving (after a lost wake-up, a resubscription, a poll) checked in bulk before any read.", prometheus.CounterValue)
	descReads         = newDesc("redis_reads_total", "Pipelined reads of the channels that moved.", prometheus.CounterValue)
	descReadErrors    = newDesc("redis_read_errors_total", "Failed reads (whole pipelines or single channels).", prometheus.CounterValue)
	descPublishes     = newDesc("publishes_total", "Publishes through this node, by interface.", prometheus.CounterValue, "via")
	descRefused       = newDesc("connections_refused_total", "Connections refused at a limit: streams (SSE, WebSocket) over -max-connections (503), streams from one address over -max-connections-per-ip (429, limit=\"per_ip\"), or connections of any kind beyond the spare ones (503).", prometheus.CounterValue, "limit")
	descAuthFailed    = newDesc("auth_failures_total", "Requests and WebSocket auth frames refused for a missing, invalid or expired credential (401).", prometheus.CounterValue)
	descForbidden     = newDesc("forbidden_total", "Subscribes, history reads and publishes a valid credential does not allow (403, WebSocket forbidden frames).", prometheus.CounterValue)
	descRateLimited   = newDesc("publishes_rate_limited_total", "Publishes refused over their rate, by interface: per API key, user or address over HTTP (429), per connection over WebSocket.", prometheus.CounterValue, "via")
	descExpired       = newDesc("token_expired_disconnects_total", "Connections ended because their token expired.", prometheus.CounterValue)
	descSentOn        = newDesc("streams_sent_on_total", "New streams a draining or isolated node ended right after their handshake, so that their clients reconnect to another node.", prometheus.CounterValue)
	descGossip        = newDesc("gossip_problems_total", "Errors and warnings of the gossip layer: packets refused (junk, another key or label) and failed connections; logged at most once per 10 s.", prometheus.CounterValue)
	descJoinFailures  = newDesc("cluster_join_failures_total", "Attempts to join the configured peers that reached none of them.", prometheus.CounterValue)
	descRefusedAsks   = newDesc("cluster_questions_refused_total", "Cluster questions not acted on because the member asking runs without authentication while this one requires it.", prometheus.CounterValue)
	descEvents        = newDesc("lifecycle_changes_total", "Lifecycle changes of this node's connections and channels, by outcome: recorded in the events stream's state, or dropped because the queue of changes was full.", prometheus.CounterValue, "outcome")
	descReaped        = newDesc("lifecycle_nodes_reaped_total", "Dead nodes whose connections and channels this node reported lost.", prometheus.CounterValue)
	descWebhooks      = newDesc("webhook_events_total", "Lifecycle events sent to the webhook by this node, by outcome: delivered (acknowledged by a 2xx), dropped (refused for longer than -webhook-retry-for).", prometheus.CounterValue, "outcome")
	descWebhookFails  = newDesc("webhook_failures_total", "Webhook POSTs that failed and were retried.", prometheus.CounterValue)
	descWebhookWait   = newDesc("webhook_pending_events", "Lifecycle events not yet delivered to the webhook, as the delivering node last saw them.", prometheus.GaugeValue)
	descWebhookAge    = newDesc("webhook_oldest_pending_seconds", "Age of the oldest lifecycle event not yet delivered to the webhook (0: none).", prometheus.GaugeValue)
	descHooks         = newDesc("hook_calls_total", "Calls of the connect and subscribe hooks, by outcome: admitted (it answered 200), refused (it answered 401 or 403), failed (a timeout, an error or another status: the request was refused with 503).", prometheus.CounterValue, "outcome")
)

var allDescs = []desc{
	descConnections, descSubscriptions, descChannels, descNotified, descDeliveries,
	descSlow, descReplays, descReplayed, descGaps, descWakeups, descSweeps,
	descChecked, descReads, descReadErrors, descPublishes, descRefused,
	descAuthFailed, descForbidden, descRateLimited, descExpired, descSentOn,
	descGossip, descJoinFailures, descRefusedAsks, descHooks,
	descEvents, descReaped, descWebhooks, descWebhookFails, descWebhookWait, descWebhookAge,
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d.Desc
	}
}

// Collect implements prometheus.Collector, reading each part's counters once.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	h, s, a, au, c := m.src.Hub(), m.src.Transport(), m.src.API(), m.src.Auth(), m.src.Cluster()
	emit := func(d desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d.Desc, d.kind, v, labels...)
	}
	for transport, n := range s.Connections {
		emit(descConnections, float64(n), transport)
	}
	emit(descSubscriptions, float64(h.Subscriptions))
	emit(descChannels, float64(h.Channels))
	emit(descNotified, boolFloat(h.Notified))
	emit(descDeliveries, float64(h.Delivered))
	emit(descSlow, float64(h.Kicked))
	emit(descReplays, float64(h.Replays))
	emit(descReplayed, float64(h.Replayed))
	emit(descGaps, float64(h.GapsTrimmed), "trimmed")
	emit(descGaps, float64(h.GapsReset), "reset")
	emit(descGaps, float64(s.GapsMalformed), "malformed")
	emit(descGaps, float64(s.GapsMismatch), "mismatch")
	emit(descWakeups, float64(h.Wakeups))
	emit(descSweeps, float64(h.Sweeps))
	emit(descChecked, float64(h.Checked))
	emit(descReads, float64(h.Reads))
	emit(descReadErrors, float64(h.ReadErrors))
	emit(descPublishes, float64(a.PublishesHTTP), "http")
	emit(descPublishes, float64(s.PublishesWS), "websocket")
	emit(descRefused, float64(s.Refused), "streams")
	emit(descRefused, float64(s.RefusedPerIP), "per_ip")
	emit(descAuthFailed, float64(au.Failed))
	emit(descForbidden, float64(au.Forbidden))
	emit(descRateLimited, float64(a.RateLimitedHTTP), "http")
	emit(descRateLimited, float64(s.RateLimitedWS), "websocket")
	emit(descExpired, float64(s.Expired))
	emit(descSentOn, float64(s.SentOn))
	emit(descRefused, float64(m.src.Listener()), "connections")
	emit(descGossip, float64(c.GossipProblems))
	emit(descJoinFailures, float64(c.JoinFailures))
	emit(descRefusedAsks, float64(c.Refused))
	emit(descHooks, float64(au.HookAdmitted), "admitted")
	emit(descHooks, float64(au.HookRefused), "refused")
	emit(descHooks, float64(au.HookFailed), "failed")
	if m.src.Events != nil {
		ev := m.src.Events()
		emit(descEvents, float64(ev.Recorded), "recorded")
		emit(descEvents, float64(ev.Dropped), "dropped")
		emit(descReaped, float64(ev.Reaped))
	}
	if m.src.Webhooks != nil {
		wh := m.src.Webhooks()
		emit(descWebhooks, float64(wh.Delivered), "delivered")
		emit(descWebhooks, float64(wh.Dropped), "dropped")
		emit(descWebhookFails, float64(wh.Failures))
		emit(descWebhookWait, float64(wh.Pending))
		emit(descWebhookAge, wh.OldestPending.Seconds())
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
