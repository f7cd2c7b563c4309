package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ticketBytes is a ticket's randomness: guessing one is hopeless.
const ticketBytes = 24

// tickets are short-lived single-use credentials kept in Redis, so that a
// ticket issued by one node is redeemed by any: SET with PX when issued,
// GETDEL when used, so a second use finds nothing. Redis holds the verified
// claims under a digest of the ticket, never the token nor the ticket.
type tickets struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

func (t *tickets) key(ticket string) string {
	sum := sha256.Sum256([]byte(ticket))
	return t.prefix + "$ticket:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// issue stores p's claims under a new ticket, for the ticket lifetime or
// until p's token expires, whichever is first.
func (t *tickets) issue(ctx context.Context, p *Principal, now time.Time) (string, time.Duration, error) {
	ttl := t.ttl
	if !p.Expires.IsZero() {
		ttl = min(ttl, p.Expires.Sub(now))
	}
	if ttl < time.Millisecond {
		return "", 0, ErrTokenExpired
	}
	var b [ticketBytes]byte
	rand.Read(b[:])
	ticket := base64.RawURLEncoding.EncodeToString(b[:])
	if err := t.rdb.Set(ctx, t.key(ticket), encodeTicket(p), ttl).Err(); err != nil {
		return "", 0, fmt.Errorf("%w: failed to store a ticket: %w", ErrUnavailable, err)
	}
	return ticket, ttl, nil
}

// redeem consumes ticket and returns the claims it was issued with.
func (t *tickets) redeem(ctx context.Context, ticket string) (*Principal, error) {
	if len(ticket) != base64.RawURLEncoding.EncodedLen(ticketBytes) {
		return nil, ErrInvalidTicket
	}
	b, err := t.rdb.GetDel(ctx, t.key(ticket)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, ErrInvalidTicket
	case err != nil:
		return nil, fmt.Errorf("%w: failed to redeem a ticket: %w", ErrUnavailable, err)
	}
	p, err := decodeTicket(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTicket, err)
	}
	if !p.Expires.IsZero() && !time.Now().Before(p.Expires) {
		return nil, ErrTokenExpired
	}
	return p, nil
}
