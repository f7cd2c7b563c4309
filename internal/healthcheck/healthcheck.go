// Package healthcheck probes a node from its own host. The node's image is
// FROM scratch, with no shell and no curl, so the binary is its own health
// check command: `node healthcheck` GETs a probe path and exits 0 or 1.
package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Defaults for Probe.
const (
	DefaultPath    = "/healthz"
	DefaultTimeout = 2 * time.Second
)

// ErrUnhealthy reports a probe answered with a status other than 200.
var ErrUnhealthy = errors.New("healthcheck: not healthy")

// URL returns the URL that reaches path on a server listening on listen
// from the same host: an unspecified or empty host (":6788", "0.0.0.0:6788",
// "[::]:6788") is reached on the loopback address.
func URL(listen, path string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("healthcheck: bad listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// Probe GETs url within timeout (zero means DefaultTimeout) and returns nil
// when it answers 200, else an error that says what it got.
func Probe(ctx context.Context, url string, timeout time.Duration) (err error) {
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// A fresh transport: no proxy from the environment, no pooled connections.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: failed to GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: %s %s", ErrUnhealthy, url, resp.Status, body)
	}
	return nil
}
