package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/ratelog"
)

// Defaults for Config.
const (
	DefaultCookie    = "push_token"
	DefaultTicketTTL = 30 * time.Second
	// DefaultJWKSRefresh is how often the JWKS is fetched again anyway.
	DefaultJWKSRefresh = time.Hour
	// DefaultJWKSUnknownKIDInterval is the least time between two fetches
	// caused by tokens with a kid the cached set lacks (a key rotation).
	DefaultJWKSUnknownKIDInterval = 30 * time.Second
	// MinSecretBytes is the shortest HS256 secret accepted (RFC 7518
	// §3.2: a key of at least the hash's size).
	MinSecretBytes = 32
	// verifiedTokens is how many verified tokens are remembered, and
	// verifiedFor for how long at most: a token presented again within
	// it (another tab, a reconnect, a node's clients resuming here after
	// it died) is not parsed and verified again, and every connection
	// that presents it shares one Principal. Only with a secret or a
	// public key, which change with a restart; never with a JWKS.
	verifiedTokens = 4096
	verifiedFor    = time.Minute
)

// Errors a request can be refused with. All but ErrUnavailable mean 401.
var (
	ErrNoCredentials = errors.New("auth: no token, ticket or API key")
	ErrInvalidToken  = errors.New("auth: invalid token")
	ErrTokenExpired  = errors.New("auth: token expired")
	ErrInvalidTicket = errors.New("auth: invalid, used or expired ticket")
	ErrInvalidKey    = errors.New("auth: invalid API key")
	// ErrUnavailable: tickets cannot be issued or redeemed (Redis is away).
	ErrUnavailable = errors.New("auth: ticket store unavailable")
)

// Config configures an Auth. With no secret, public key, JWKS URL or API
// key, the Auth is open: every request is Open.
type Config struct {
	// Secret verifies HS256 tokens; at least MinSecretBytes. Nil means none.
	Secret []byte
	// PublicKeyPEM verifies RS256 (an RSA key) or ES256 (a P-256 key)
	// tokens: a PEM public key or certificate. Nil means none.
	PublicKeyPEM []byte
	// JWKSURL is a JSON Web Key Set verifying RS256 and ES256 tokens by
	// their kid. Empty means none.
	JWKSURL string
	// JWKSClient fetches the JWKS. Nil means a client with a 10 s timeout.
	JWKSClient *http.Client
	// JWKSRefresh defaults to DefaultJWKSRefresh.
	JWKSRefresh time.Duration
	// JWKSUnknownKIDInterval defaults to DefaultJWKSUnknownKIDInterval.
	JWKSUnknownKIDInterval time.Duration
	// Audience and Issuer, when set, must be a token's aud and iss.
	Audience, Issuer string
	// Leeway tolerates clock skew on exp and nbf. Zero means none.
	Leeway time.Duration
	// APIKeys are accepted as "Authorization: Bearer <key>" with full
	// access. Nil means none.
	APIKeys []string
	// Cookie is the cookie a token may come in. Defaults to DefaultCookie.
	Cookie string
	// Redis keeps tickets. Required with tokens; nil means no tickets.
	Redis redis.UniversalClient
	// Prefix is put before ticket keys (the node's stream prefix).
	Prefix string
	// TicketTTL is a ticket's lifetime. Defaults to DefaultTicketTTL.
	TicketTTL time.Duration
	// Hooks ask the application's backend who connects and what they may
	// subscribe to. Zero means none.
	Hooks Hooks
	// Logger receives JWKS refresh failures and failed hooks. Nil means
	// discard.
	Logger *slog.Logger
}

// Auth authenticates requests. It is safe for concurrent use.
type Auth struct {
	cfg     Config
	tokens  *verifier
	keys    apiKeys
	tickets *tickets
	hooks   *hooks
	hookLog *ratelog.Limiter
	counts  counters
	// verified maps a token's SHA-256 to its Principal (see verifiedFor).
	verified *lru.Cache[[sha256.Size]byte, verifiedToken]
}

// New returns an Auth for cfg. Close it to stop refreshing a JWKS.
func New(cfg Config) (*Auth, error) {
	if cfg.Cookie == "" {
		cfg.Cookie = DefaultCookie
	}
	if cfg.TicketTTL == 0 {
		cfg.TicketTTL = DefaultTicketTTL
	}
	if cfg.JWKSRefresh == 0 {
		cfg.JWKSRefresh = DefaultJWKSRefresh
	}
	if cfg.JWKSUnknownKIDInterval == 0 {
		cfg.JWKSUnknownKIDInterval = DefaultJWKSUnknownKIDInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, k := range cfg.APIKeys {
		if len(k) < 16 {
			return nil, errors.New("auth: API keys must be at least 16 characters")
		}
	}
	a := &Auth{cfg: cfg, keys: newAPIKeys(cfg.APIKeys), hooks: newHooks(cfg.Hooks), hookLog: ratelog.New(10 * time.Second)}
	if cfg.JWKSURL == "" {
		// A JWKS rotates: a key it withdraws must stop admitting tokens at
		// once, so tokens it verifies are verified every time.
		a.verified, _ = lru.New[[sha256.Size]byte, verifiedToken](verifiedTokens) // errs only on a size ≤ 0
	}
	var err error
	if a.tokens, err = newVerifier(cfg); err != nil {
		return nil, err
	}
	if cfg.Redis != nil {
		a.tickets = &tickets{rdb: cfg.Redis, prefix: cfg.Prefix, ttl: cfg.TicketTTL}
	}
	return a, nil
}

// Close stops the JWKS refreshes. It is safe to call more than once.
func (a *Auth) Close() { a.tokens.close() }

// Enabled reports whether any authentication is configured: tokens, API
// keys or a connect hook.
func (a *Auth) Enabled() bool {
	return a.tokens != nil || len(a.keys) > 0 || a.hooks != nil && a.hooks.cfg.ConnectURL != ""
}

// Mode is "open" without authentication, else "required".
func (a *Auth) Mode() string {
	if a.Enabled() {
		return "required"
	}
	return "open"
}

// Authenticate returns who r comes from. It looks, in order, at the
// Authorization header (an API key or a token), the ticket query
// parameter, the token query parameter and the cookie. An open Auth
// returns Open. It blocks only to redeem a ticket (one Redis round trip)
// or to fetch a rotated JWKS.
func (a *Auth) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	if !a.Enabled() {
		return Open, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || cred == "" {
			return nil, ErrInvalidToken
		}
		return a.bearer(ctx, strings.TrimSpace(cred))
	}
	q, _ := url.ParseQuery(r.URL.RawQuery)
	if t := q.Get("ticket"); t != "" {
		return a.Redeem(ctx, t)
	}
	if t := q.Get("token"); t != "" {
		return a.Verify(ctx, t)
	}
	if c, err := r.Cookie(a.cfg.Cookie); err == nil && c.Value != "" {
		return a.Verify(ctx, c.Value)
	}
	if a.hooks != nil && a.hooks.cfg.ConnectURL != "" {
		// No credential: the backend decides, from the request's cookies
		// and headers. A credential that fails is the credential's error.
		return a.hooks.connect(ctx, r)
	}
	return nil, ErrNoCredentials
}

// AllowSubscribe asks the subscribe hook whether p's client may subscribe
// to channel over transport: nil without a hook, or for a channel it does
// not decide on.
func (a *Auth) AllowSubscribe(ctx context.Context, p *Principal, client, channel, transport string) error {
	h := a.hooks
	if h == nil || h.cfg.SubscribeURL == "" || (h.cfg.SubscribeChannels != nil && !h.cfg.SubscribeChannels.Match(channel)) {
		return nil
	}
	err := h.subscribe(ctx, p, client, channel, transport)
	if errors.Is(err, ErrHookFailed) {
		a.logHook("subscribe", err)
	}
	return err
}

// logHook logs a failed hook call, at most every few seconds.
func (a *Auth) logHook(hook string, err error) {
	if n, ok := a.hookLog.Allow(); ok {
		a.cfg.Logger.Warn("hook failed: the request was refused", "hook", hook, "failures", n, "err", err)
	}
}

// bearer takes an API key, or else a token.
func (a *Auth) bearer(ctx context.Context, cred string) (*Principal, error) {
	if len(a.keys) > 0 {
		if id := a.keys.match(cred); id > 0 {
			return &Principal{Via: "api-key", KeyID: id, all: true}, nil
		}
		if a.tokens == nil || strings.Count(cred, ".") != 2 {
			return nil, ErrInvalidKey
		}
	}
	return a.Verify(ctx, cred)
}

// Verify checks a token (for a WebSocket auth frame, say).
func (a *Auth) Verify(ctx context.Context, token string) (*Principal, error) {
	if a.tokens == nil {
		return nil, ErrInvalidToken
	}
	if a.verified == nil {
		return a.verify(ctx, token)
	}
	sum := sha256.Sum256([]byte(token))
	now := time.Now()
	if v, ok := a.verified.Get(sum); ok {
		p := v.p
		if now.Before(v.until) && (p.Expires.IsZero() || now.Before(p.Expires.Add(a.cfg.Leeway))) {
			return p, nil
		}
		a.verified.Remove(sum) // expired: the verifier says so, with its error
	}
	p, err := a.verify(ctx, token)
	if err == nil {
		a.verified.Add(sum, verifiedToken{p: p, until: now.Add(verifiedFor)})
	}
	return p, err
}

func (a *Auth) verify(ctx context.Context, token string) (*Principal, error) {
	c, err := a.tokens.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	return c.principal("token"), nil
}

// verifiedToken is a token's Principal and how long it may be taken
// without verifying the token again.
type verifiedToken struct {
	p     *Principal
	until time.Time
}

// Redeem consumes a ticket, on any node.
func (a *Auth) Redeem(ctx context.Context, ticket string) (*Principal, error) {
	if a.tickets == nil {
		return nil, ErrInvalidTicket
	}
	return a.tickets.redeem(ctx, ticket)
}

// IssueTicket stores p's claims under a new single-use ticket and returns
// it with its lifetime. Only a token's principal gets one: a ticket
// carries a user's claims, which an API key has none of.
func (a *Auth) IssueTicket(ctx context.Context, p *Principal) (string, time.Duration, error) {
	if a.tickets == nil || p.Subject == "" {
		return "", 0, ErrInvalidToken
	}
	return a.tickets.issue(ctx, p, time.Now())
}

// secretParams are the query parameters that carry credentials: they
// never reach a log line.
var secretParams = []string{"token", "ticket", "session"}

// RedactQuery returns raw with the values of credential parameters
// (token, ticket, session) replaced, for logging a request's URL.
func RedactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "(unparsable query)"
	}
	for _, k := range secretParams {
		if _, ok := q[k]; ok {
			q[k] = []string{"REDACTED"}
		}
	}
	return q.Encode()
}
