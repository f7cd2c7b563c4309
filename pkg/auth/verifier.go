package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// maxTokenBytes bounds a token before any parsing: a JWT that carries a
// few hundred channel patterns is still far below it.
const maxTokenBytes = 8 << 10

// verifier checks tokens with golang-jwt. The algorithms it accepts follow
// from the keys it holds (WithValidMethods), and each algorithm is given
// only its own kind of key, so neither "alg":"none" nor a token signed
// with HS256 using the RSA public key as the secret can pass.
type verifier struct {
	secret []byte
	rsaKey *rsa.PublicKey
	ecKey  *ecdsa.PublicKey
	jwks   keyfunc.Keyfunc
	parser *jwt.Parser
	stop   context.CancelFunc
}

func newVerifier(cfg Config) (*verifier, error) {
	v := &verifier{secret: cfg.Secret}
	var methods []string
	if len(cfg.Secret) > 0 {
		if len(cfg.Secret) < MinSecretBytes {
			return nil, fmt.Errorf("auth: the JWT secret must be at least %d bytes", MinSecretBytes)
		}
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if len(cfg.PublicKeyPEM) > 0 {
		if err := v.parsePublicKey(cfg.PublicKeyPEM); err != nil {
			return nil, err
		}
	}
	if cfg.JWKSURL != "" {
		if err := v.openJWKS(cfg); err != nil {
			return nil, err
		}
	}
	if v.rsaKey != nil || v.jwks != nil {
		methods = append(methods, jwt.SigningMethodRS256.Alg())
	}
	if v.ecKey != nil || v.jwks != nil {
		methods = append(methods, jwt.SigningMethodES256.Alg())
	}
	if len(methods) == 0 {
		return nil, nil
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithLeeway(cfg.Leeway)}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func (v *verifier) parsePublicKey(raw []byte) error {
	block, _ := pem.Decode(raw)
	if block == nil {
		return errors.New("auth: the JWT public key is not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return fmt.Errorf("auth: PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return fmt.Errorf("auth: failed to parse the JWT public key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return errors.New("auth: RSA keys under 2048 bits are refused")
		}
		v.rsaKey = k
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return errors.New("auth: ES256 needs a P-256 key")
		}
		v.ecKey = k
	default:
		return fmt.Errorf("auth: unsupported public key type %T: want RSA (RS256) or P-256 (ES256)", key)
	}
	return nil
}

// openJWKS fetches the key set once and keeps it fresh: every
// JWKSRefresh, and on a token whose kid it does not know, at most once per
// JWKSUnknownKIDInterval (a flood of made-up kids costs one fetch per
// interval and no waiting). keyfunc does the caching and the refreshes.
func (v *verifier) openJWKS(cfg Config) error {
	ctx, cancel := context.WithCancel(context.Background())
	log := cfg.Logger
	override := keyfunc.Override{
		Client:            cfg.JWKSClient,
		HTTPTimeout:       10 * time.Second,
		RefreshInterval:   cfg.JWKSRefresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.JWKSUnknownKIDInterval), 1),
		// A token is there or it is not (the interval is long); the wait
		// only has to outlast the call itself, which 1 ms did not always
		// under -race on a loaded machine (TestJWKSRotation).
		RateLimitWaitMax: 100 * time.Millisecond,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) { log.Warn("failed to refresh the JWKS", "err", err) }
		},
	}
	if override.Client == nil {
		override.Client = &http.Client{Timeout: 10 * time.Second}
	}
	jwks, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, override)
	if err != nil {
		cancel()
		return fmt.Errorf("auth: failed to open the JWKS: %w", err)
	}
	v.jwks, v.stop = jwks, cancel
	return nil
}

func (v *verifier) close() {
	if v != nil && v.stop != nil {
		v.stop()
	}
}

// verify parses and checks token: signature, algorithm, exp (required),
// nbf, aud and iss when configured, and a non-empty sub.
func (v *verifier) verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, maxTokenBytes)
	}
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, v.keyFor(ctx))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	case c.Subject == "":
		return nil, fmt.Errorf("%w: no sub claim", ErrInvalidToken)
	}
	return &c, nil
}

// keyFor gives each algorithm only a key of its own kind.
func (v *verifier) keyFor(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		switch t.Method {
		case jwt.SigningMethodHS256:
			if len(v.secret) > 0 {
				return v.secret, nil
			}
		case jwt.SigningMethodRS256:
			if v.rsaKey != nil {
				return v.rsaKey, nil
			}
			return v.fromJWKS(ctx, t, func(k any) bool { _, ok := k.(*rsa.PublicKey); return ok })
		case jwt.SigningMethodES256:
			if v.ecKey != nil {
				return v.ecKey, nil
			}
			return v.fromJWKS(ctx, t, func(k any) bool { _, ok := k.(*ecdsa.PublicKey); return ok })
		}
		return nil, errors.New("no key for this algorithm")
	}
}

func (v *verifier) fromJWKS(ctx context.Context, t *jwt.Token, fits func(any) bool) (any, error) {
	if v.jwks == nil {
		return nil, errors.New("no key for this algorithm")
	}
	key, err := v.jwks.KeyfuncCtx(ctx)(t)
	if err != nil {
		return nil, err
	}
	if set, ok := key.(jwt.VerificationKeySet); ok { // a token without kid
		var fit jwt.VerificationKeySet
		for _, k := range set.Keys {
			if fits(k) {
				fit.Keys = append(fit.Keys, k)
			}
		}
		if len(fit.Keys) == 0 {
			return nil, errors.New("no key of this type in the JWKS")
		}
		return fit, nil
	}
	if !fits(key) {
		return nil, errors.New("the JWKS key for this kid is of another type")
	}
	return key, nil
}
