package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/pushcluster/pushcluster/pkg/api"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/transport"
)

// listFlag is a flag that may be repeated, each value a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	items, _ := splitList(v)
	*l = append(*l, items...)
	return nil
}

// securityFlags are the flags of authentication, browser rules and limits.
type securityFlags struct {
	secret, secretFile, publicKey, apiKeyFile, trusted string
	apiKeys, origins, hookHeaders, hookChannels        listFlag
	connRate, keyRate                                  float64
}

func addSecurityFlags(fs *flag.FlagSet, cfg *node.Config) *securityFlags {
	f := &securityFlags{}
	fs.StringVar(&f.secret, "jwt-secret", "", "HS256 secret verifying tokens, at least 32 bytes, used as the text given (base64 text is not decoded); prefer -jwt-secret-file or the environment")
	fs.StringVar(&f.secretFile, "jwt-secret-file", "", "file holding the HS256 secret: its text, surrounding white space trimmed, not decoded (base64 text is the key as is)")
	fs.StringVar(&f.publicKey, "jwt-public-key", "", "PEM file of the RSA (RS256) or P-256 (ES256) public key verifying tokens")
	fs.StringVar(&cfg.Auth.JWKSURL, "jwks-url", "", "JWKS URL whose keys verify RS256 and ES256 tokens by kid; refreshed hourly and on an unknown kid")
	fs.StringVar(&cfg.Auth.Audience, "jwt-audience", "", "required aud of tokens (empty: not checked)")
	fs.StringVar(&cfg.Auth.Issuer, "jwt-issuer", "", "required iss of tokens (empty: not checked)")
	fs.StringVar(&cfg.Auth.Cookie, "jwt-cookie", auth.DefaultCookie, "cookie a token may come in")
	fs.DurationVar(&cfg.Auth.TicketTTL, "ticket-ttl", auth.DefaultTicketTTL, "lifetime of a single-use ticket from POST /api/ticket")
	fs.Var(&f.apiKeys, "api-key", "API key for the publish, history and admin APIs, sent as Authorization: Bearer; repeat or comma-separate for rotation (prefer -api-key-file)")
	fs.StringVar(&f.apiKeyFile, "api-key-file", "", "file of API keys, one per line")
	fs.Var(&f.origins, "allowed-origins", "origins (scheme://host[:port]) allowed to open WebSockets and read SSE and the API cross-origin, comma-separated; * for any (without credentials); empty: same origin only")
	fs.IntVar(&cfg.Transport.MaxConnectionsPerIP, "max-connections-per-ip", transport.DefaultMaxConnectionsPerIP, "SSE and WebSocket connections from one client address; more get 429 (0: no bound)")
	fs.StringVar(&f.trusted, "trusted-proxies", "", "proxies whose X-Forwarded-For gives the client address: comma-separated CIDRs or addresses (empty: none)")
	fs.Float64Var(&f.connRate, "conn-publish-rate", transport.DefaultPublishRate, "WebSocket publishes per second per connection, bursts of twice as many (0: no bound)")
	fs.Float64Var(&f.keyRate, "key-publish-rate", api.DefaultKeyPublishRate, "HTTP publishes per second per API key, user or (open node) address (0: no bound)")
	fs.StringVar(&cfg.Auth.Hooks.ConnectURL, "connect-hook", "", "URL your backend answers: every request without a token, ticket or API key (SSE, WebSocket and long-poll connections, tickets, the API) is described to it in a POST, and it answers 200 with the rights a token would carry, or 401/403 (docs/SECURITY.md); empty: none")
	fs.Var(&f.hookHeaders, "connect-hook-headers", "request headers passed on to the connect hook, comma-separated (cookies always are)")
	fs.StringVar(&cfg.Auth.Hooks.SubscribeURL, "subscribe-hook", "", "URL your backend answers for each subscription to a channel -subscribe-hook-channels names: 200 allows, 403 refuses; empty: none")
	fs.Var(&f.hookChannels, "subscribe-hook-channels", "channels the subscribe hook decides on: names, or prefixes ending in * (empty: every channel)")
	fs.DurationVar(&cfg.Auth.Hooks.Timeout, "hook-timeout", auth.DefaultHookTimeout, "longest a hook call may take, the wait for a free slot included; a hook that does not answer in time refuses the request (503)")
	fs.IntVar(&cfg.Auth.Hooks.MaxConcurrent, "hook-max-concurrent", auth.DefaultHookMaxConcurrent, "hook calls in flight at most; more wait for a slot within -hook-timeout")
	fs.IntVar(&cfg.MaxHeaderBytes, "max-header-bytes", node.DefaultMaxHeaderBytes, "largest request header; more gets 431")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", node.DefaultReadHeaderTimeout, "longest time to read a request header, and so a handshake")
	return f
}

// apply reads the key files and turns 0 ("no bound" on the command line)
// into the negative values the config uses for it.
func (f *securityFlags) apply(cfg *node.Config) error {
	var errs []error
	secret, err := secretValue(f.secret, f.secretFile)
	errs = append(errs, err)
	if secret != "" {
		cfg.Auth.Secret = []byte(secret)
	}
	if f.publicKey != "" {
		cfg.Auth.PublicKeyPEM, err = os.ReadFile(f.publicKey)
		errs = append(errs, wrap(err, "failed to read -jwt-public-key"))
	}
	cfg.Auth.APIKeys = f.apiKeys
	if f.apiKeyFile != "" {
		b, err := os.ReadFile(f.apiKeyFile)
		errs = append(errs, wrap(err, "failed to read -api-key-file"))
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				cfg.Auth.APIKeys = append(cfg.Auth.APIKeys, line)
			}
		}
	}
	cfg.Transport.AllowedOrigins = f.origins
	cfg.Auth.Hooks.ConnectHeaders = f.hookHeaders
	if len(f.hookChannels) > 0 {
		cfg.Auth.Hooks.SubscribeChannels = auth.Patterns(f.hookChannels)
	}
	proxies, _ := splitList(f.trusted)
	cfg.Transport.TrustedProxies, err = limit.ParsePrefixes(proxies)
	errs = append(errs, err)
	cfg.Transport.PublishRate, cfg.KeyPublishRate = noBound(f.connRate), noBound(f.keyRate)
	if cfg.Transport.MaxConnectionsPerIP == 0 {
		cfg.Transport.MaxConnectionsPerIP = -1
	}
	return errors.Join(errs...)
}

func noBound(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

func secretValue(v, file string) (string, error) {
	if file == "" {
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("failed to read -jwt-secret-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func wrap(err error, msg string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", msg, err)
}
