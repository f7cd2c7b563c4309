package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func claims(sub string, ttl time.Duration) Claims {
	now := time.Now()
	return Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), IssuedAt: jwt.NewNumericDate(now)},
		Channels:         Patterns{"news", "room.*"},
		Publish:          Patterns{"room.*"},
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c Claims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newAuth(t testing.TB, cfg Config) *Auth {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func rsaPEM(t testing.TB, k *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testRSA(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() { rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	return rsaKey
}

func TestVerifyHS256(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{Secret: testSecret})
	p, err := a.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", time.Minute), ""))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "alice" || !p.CanRead("news") || !p.CanRead("room.1") || p.CanRead("other") ||
		!p.CanPublish("room.2") || p.CanPublish("news") || p.Admin() || p.Expires.IsZero() {
		t.Errorf("principal %+v", p)
	}
}

// Every way a token can be wrong is refused.
func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	rk := testRSA(t)
	a := newAuth(t, Config{Secret: testSecret, Audience: "push", Issuer: "https://id.example"})
	ok := claims("alice", time.Minute)
	ok.Audience, ok.Issuer = jwt.ClaimStrings{"push"}, "https://id.example"
	if _, err := a.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, testSecret, ok, "")); err != nil {
		t.Fatalf("a good token: %v", err)
	}
	good := sign(t, jwt.SigningMethodHS256, testSecret, ok, "")
	parts := strings.Split(good, ".")
	with := func(f func(*Claims)) string {
		c := ok
		f(&c)
		return sign(t, jwt.SigningMethodHS256, testSecret, c, "")
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, ok).SignedString(jwt.UnsafeAllowNoneSignatureType)
	// alg confusion: HS256 with the RSA public key's PEM as the secret, on
	// a verifier that has that RSA key.
	rsaOnly := newAuth(t, Config{PublicKeyPEM: rsaPEM(t, rk)})
	confused := sign(t, jwt.SigningMethodHS256, rsaPEM(t, rk), ok, "")

	cases := []struct {
		name  string
		a     *Auth
		token string
		want  error
	}{
		{"forged signature", a, parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte("forged-signature-forged-signature")), ErrInvalidToken},
		{"other secret", a, sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), ok, ""), ErrInvalidToken},
		{"tampered claims", a, parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":9999999999,"aud":"push","iss":"https://id.example","channels":["*"]}`)) + "." + parts[2], ErrInvalidToken},
		{"alg none", a, none, ErrInvalidToken},
		{"HS256 signed with the RSA public key", rsaOnly, confused, ErrInvalidToken},
		{"RS256 on an HS256 node", a, sign(t, jwt.SigningMethodRS256, rk, ok, ""), ErrInvalidToken},
		{"wrong audience", a, with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} }), ErrInvalidToken},
		{"no audience", a, with(func(c *Claims) { c.Audience = nil }), ErrInvalidToken},
		{"wrong issuer", a, with(func(c *Claims) { c.Issuer = "https://evil.example" }), ErrInvalidToken},
		{"expired", a, with(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Second)) }), ErrTokenExpired},
		{"no exp", a, with(func(c *Claims) { c.ExpiresAt = nil }), ErrInvalidToken},
		{"not yet valid", a, with(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Minute)) }), ErrInvalidToken},
		{"no sub", a, with(func(c *Claims) { c.Subject = "" }), ErrInvalidToken},
		{"garbage", a, "not.a.jwt", ErrInvalidToken},
		{"huge", a, strings.Repeat("a", maxTokenBytes+1), ErrInvalidToken},
	}
	for _, tc := range cases {
		p, err := tc.a.Verify(t.Context(), tc.token)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, %+v; want %v", tc.name, err, p, tc.want)
		}
	}
}

func TestVerifyPublicKeys(t *testing.T) {
	t.Parallel()
	rk := testRSA(t)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	rs := newAuth(t, Config{PublicKeyPEM: rsaPEM(t, rk)})
	es := newAuth(t, Config{PublicKeyPEM: ecPEM})
	if _, err := rs.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, rk, claims("a", time.Minute), "")); err != nil {
		t.Errorf("RS256: %v", err)
	}
	if _, err := es.Verify(t.Context(), sign(t, jwt.SigningMethodES256, ek, claims("a", time.Minute), "")); err != nil {
		t.Errorf("ES256: %v", err)
	}
	if _, err := rs.Verify(t.Context(), sign(t, jwt.SigningMethodES256, ek, claims("a", time.Minute), "")); err == nil {
		t.Error("ES256 accepted by an RSA key")
	}
	if _, err := es.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, ecPEM, claims("a", time.Minute), "")); err == nil {
		t.Error("HS256 with the EC key's PEM accepted")
	}
	if _, err := New(Config{PublicKeyPEM: []byte("junk")}); err == nil {
		t.Error("a junk PEM accepted")
	}
	if _, err := New(Config{Secret: []byte("short")}); err == nil {
		t.Error("a short secret accepted")
	}
}

// jwksServer serves a key set that the test can rotate, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]*rsa.PrivateKey
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{keys: map[string]*rsa.PrivateKey{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range s.keys {
			set.Keys = append(set.Keys, map[string]string{
				"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString([]byte{1, 0, 1}),
			})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys map[string]*rsa.PrivateKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

// A JWKS is fetched once, refreshed when a token names a kid it lacks (a
// rotation), and a flood of unknown kids costs at most one fetch per interval.
func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2 := testRSA(t)
	srv := newJWKSServer(t)
	srv.set(map[string]*rsa.PrivateKey{"k1": k1})
	a := newAuth(t, Config{JWKSURL: srv.URL, JWKSUnknownKIDInterval: time.Hour, JWKSClient: srv.Client()})
	ctx := t.Context()
	if _, err := a.Verify(ctx, sign(t, jwt.SigningMethodRS256, k1, claims("a", time.Minute), "k1")); err != nil {
		t.Fatalf("k1: %v", err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("%d fetches after the first token, want 1 (cached)", n)
	}
	srv.set(map[string]*rsa.PrivateKey{"k2": k2}) // rotate: k1 retired, k2 in
	if _, err := a.Verify(ctx, sign(t, jwt.SigningMethodRS256, k2, claims("a", time.Minute), "k2")); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if _, err := a.Verify(ctx, sign(t, jwt.SigningMethodRS256, k1, claims("a", time.Minute), "k1")); err == nil {
		t.Error("the retired k1 still accepted")
	}
	before := srv.fetches.Load()
	for i := range 50 {
		kid := "made-up-" + string(rune('a'+i%26))
		if _, err := a.Verify(ctx, sign(t, jwt.SigningMethodRS256, k2, claims("a", time.Minute), kid)); err == nil {
			t.Fatal("an unknown kid accepted")
		}
	}
	if n := srv.fetches.Load() - before; n > 1 {
		t.Errorf("unknown kids caused %d fetches, want at most 1 per interval", n)
	}
	// HS256 with the JWKS key as secret is refused: no secret configured.
	if _, err := a.Verify(ctx, sign(t, jwt.SigningMethodHS256, testSecret, claims("a", time.Minute), "k2")); err == nil {
		t.Error("HS256 accepted by a JWKS verifier")
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{APIKeys: []string{"old-key-0123456789", "new-key-0123456789"}})
	for i, k := range []string{"old-key-0123456789", "new-key-0123456789"} {
		r := httptest.NewRequest("POST", "/api/publish", nil)
		r.Header.Set("Authorization", "Bearer "+k)
		p, err := a.Authenticate(t.Context(), r)
		if err != nil || !p.Admin() || p.KeyID != i+1 {
			t.Errorf("key %d: %+v %v", i, p, err)
		}
	}
	r := httptest.NewRequest("POST", "/api/publish", nil)
	r.Header.Set("Authorization", "Bearer wrong-key-0123456789")
	if _, err := a.Authenticate(t.Context(), r); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := a.Authenticate(t.Context(), httptest.NewRequest("GET", "/sse?token=old-key-0123456789", nil)); err == nil {
		t.Error("an API key in the query string accepted")
	}
	if _, err := New(Config{APIKeys: []string{"short"}}); err == nil {
		t.Error("a short API key accepted")
	}
}

func TestAuthenticateSources(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{Secret: testSecret, Cookie: "tok"})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", time.Minute), "")
	reqs := map[string]*http.Request{
		"header": httptest.NewRequest("GET", "/sse", nil),
		"query":  httptest.NewRequest("GET", "/sse?token="+tok, nil),
		"cookie": httptest.NewRequest("GET", "/sse", nil),
	}
	reqs["header"].Header.Set("Authorization", "Bearer "+tok)
	reqs["cookie"].AddCookie(&http.Cookie{Name: "tok", Value: tok})
	for name, r := range reqs {
		if p, err := a.Authenticate(t.Context(), r); err != nil || p.Subject != "alice" {
			t.Errorf("%s: %+v %v", name, p, err)
		}
	}
	if _, err := a.Authenticate(t.Context(), httptest.NewRequest("GET", "/sse", nil)); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("nothing: %v", err)
	}
	open := newAuth(t, Config{})
	if p, err := open.Authenticate(t.Context(), httptest.NewRequest("GET", "/sse", nil)); err != nil || p != Open || open.Mode() != "open" {
		t.Errorf("open: %v %v", p, err)
	}
}

func TestRedactQuery(t *testing.T) {
	t.Parallel()
	got := RedactQuery("channel=a&token=SECRET1&ticket=SECRET2&session=SECRET3")
	if strings.Contains(got, "SECRET") || !strings.Contains(got, "channel=a") {
		t.Errorf("redacted: %s", got)
	}
}

// A token presented again is not verified again: its connections share one
// Principal. An expired one is refused as expired although it was admitted
// before, and a refused token is never remembered.
func TestVerifiedTokensAreShared(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{Secret: testSecret})
	ctx := t.Context()
	alice := sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", time.Minute), "")
	p1, err1 := a.Verify(ctx, alice)
	p2, err2 := a.Verify(ctx, alice)
	if err1 != nil || err2 != nil || p1 != p2 {
		t.Fatalf("same token twice: %p %v, %p %v; want one principal", p1, err1, p2, err2)
	}
	bob, err := a.Verify(ctx, sign(t, jwt.SigningMethodHS256, testSecret, claims("bob", time.Minute), ""))
	if err != nil || bob == p1 || bob.Subject != "bob" {
		t.Fatalf("another token: %+v %v", bob, err)
	}

	// exp has a one-second resolution: a token for 2 s (at least 1) is
	// admitted, then refused once exp has passed, cached or not.
	start := time.Now()
	short := sign(t, jwt.SigningMethodHS256, testSecret, claims("carol", 2*time.Second), "")
	if _, err := a.Verify(ctx, short); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(start.Truncate(time.Second).Add(3 * time.Second)))
	if _, err := a.Verify(ctx, short); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired token: %v, want %v", err, ErrTokenExpired)
	}

	forged := sign(t, jwt.SigningMethodHS256, []byte("another secret, also 32 bytes long"), claims("mallory", time.Minute), "")
	for range 2 {
		if _, err := a.Verify(ctx, forged); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("forged token: %v", err)
		}
	}
}
