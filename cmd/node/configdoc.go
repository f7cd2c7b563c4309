package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagSection is one part of docs/CONFIG.md: a title, a sentence on what
// the flags are for, and the flags, in the order shown.
type flagSection struct {
	title, intro string
	flags        []string
}

// flagSections lays out docs/CONFIG.md. Every flag is in exactly one
// section (TestConfigDocIsCurrent).
var flagSections = []flagSection{
	{"Node", "Where the node listens, what it is called, how it logs.", []string{
		"listen", "node-name", "log-level", "log-format", "debug-listen"}},
	{"Redis", "Which Redis holds the streams: one server (a URL), a Redis Cluster or a Sentinel group, with their credentials and TLS. Without any, the node runs an embedded development store on a free loopback port.", []string{
		"redis-url", "redis-cluster", "redis-sentinel", "redis-master",
		"redis-username", "redis-password", "redis-password-file",
		"redis-sentinel-username", "redis-sentinel-password", "redis-sentinel-password-file",
		"redis-tls", "redis-tls-ca", "redis-tls-cert", "redis-tls-key", "redis-tls-server-name", "redis-tls-insecure"}},
	{"Channels and retention", "How channels map to streams and how long the node's own publishes keep them.", []string{
		"prefix", "max-len", "max-age", "channel-ttl", "idempotency-window", "presence-channels"}},
	{"Connections", "What a connection may hold and how it is kept alive.", []string{
		"retry", "heartbeat", "queue-bytes", "max-payload", "max-channels", "max-connections",
		"idle-timeout", "read-timeout", "fanout-workers", "replay-cache-bytes"}},
	{"Cluster", "Gossip between nodes, and how a node leaves, sheds load and notices it is cut off.", []string{
		"cluster-bind", "cluster-join", "cluster-advertise", "cluster-key", "cluster-key-file", "cluster-insecure",
		"cluster-profile", "drain-timeout", "rebalance-factor", "rebalance-after", "rebalance-rate", "isolation-timeout"}},
	{"Security", "Who may connect and publish, from where, how often (docs/SECURITY.md).", []string{
		"jwt-secret", "jwt-secret-file", "jwt-public-key", "jwks-url", "jwt-audience", "jwt-issuer", "jwt-cookie",
		"ticket-ttl", "api-key", "api-key-file", "allowed-origins", "trusted-proxies",
		"max-connections-per-ip", "conn-publish-rate", "key-publish-rate", "max-header-bytes", "read-header-timeout"}},
	{"Lifecycle events", "A Redis stream of what happens on the push side, for the application (docs/PROTOCOL.md, Lifecycle events).", []string{
		"events-stream", "events", "events-channels", "vacate-delay",
		"webhook-url", "webhook-secret", "webhook-secret-file", "webhook-events", "webhook-retry-for"}},
	{"Hooks", "Your backend decides who connects and what they may subscribe to (docs/SECURITY.md, Hooks).", []string{
		"connect-hook", "connect-hook-headers", "subscribe-hook", "subscribe-hook-channels", "hook-timeout", "hook-max-concurrent"}},
}

// writeConfigDoc writes docs/CONFIG.md for the flags of fs.
func writeConfigDoc(w io.Writer, fs *flag.FlagSet) error {
	fmt.Fprint(w, `# Configuration

Every flag of the node, generated from the node's own flag set by
`+"`go run ./cmd/node -print-config-doc > docs/CONFIG.md`"+` (a test fails when
this file and the flags disagree). Every flag is also read from the
environment variable named beside it, where the command line does not
give it. A number that means nothing (a zero that would only mean "the
default", a negative duration) is refused at start with a message naming
the flag; where 0 or a negative value means something, the flag says
what.
`)
	for _, sec := range flagSections {
		fmt.Fprintf(w, "\n## %s\n\n%s\n\n| flag | environment | default | |\n|---|---|---|---|\n", sec.title, sec.intro)
		for _, name := range sec.flags {
			f := fs.Lookup(name)
			if f == nil {
				return fmt.Errorf("config doc: no flag -%s", name)
			}
			def := "`" + f.DefValue + "`"
			if f.DefValue == "" {
				def = "none"
			}
			fmt.Fprintf(w, "| `-%s` | `%s` | %s | %s |\n", f.Name, envName(f.Name), def, mdCell(f.Usage))
		}
	}
	return nil
}

// mdCell escapes text for a Markdown table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
