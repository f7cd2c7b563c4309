package auth

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushcluster/pushcluster/internal/testredis"
)

// A ticket carries its token's claims, works once, on any node (any Auth
// on the same Redis), and not after its lifetime.
func TestTickets(t *testing.T) {
	t.Parallel()
	rdb, prefix := testredis.Client(t), testredis.Prefix(t)
	a := newAuth(t, Config{Secret: testSecret, Redis: rdb, Prefix: prefix, TicketTTL: 300 * time.Millisecond})
	b := newAuth(t, Config{Secret: testSecret, Redis: rdb, Prefix: prefix})
	p, err := a.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", time.Minute), ""))
	if err != nil {
		t.Fatal(err)
	}
	ticket, ttl, err := a.IssueTicket(t.Context(), p)
	if err != nil || ttl != 300*time.Millisecond {
		t.Fatal(ticket, ttl, err)
	}
	got, err := b.Authenticate(t.Context(), httptest.NewRequest("GET", "/sse?ticket="+ticket, nil))
	if err != nil || got.Subject != "alice" || !got.CanRead("news") || got.CanRead("other") || got.Via != "ticket" ||
		got.Expires.UnixMilli() != p.Expires.UnixMilli() {
		t.Fatalf("redeemed on another node: %+v %v", got, err)
	}
	if _, err := a.Redeem(t.Context(), ticket); !errors.Is(err, ErrInvalidTicket) {
		t.Errorf("second use: %v", err)
	}
	late, _, _ := a.IssueTicket(t.Context(), p)
	keys, _ := rdb.Keys(t.Context(), prefix+"$ticket:*").Result()
	for _, k := range keys {
		if v, _ := rdb.Get(t.Context(), k).Result(); len(v) > 0 && (strings.Contains(v, late) || strings.Contains(k, late)) {
			t.Error("Redis holds the ticket itself")
		}
	}
	checkUntil(t, 5*time.Second, func() bool { return rdb.Exists(t.Context(), keys...).Val() == 0 })
	if _, err := b.Redeem(t.Context(), late); !errors.Is(err, ErrInvalidTicket) {
		t.Errorf("late use: %v", err)
	}
	if _, _, err := a.IssueTicket(t.Context(), &Principal{Via: "api-key", KeyID: 1, all: true}); err == nil {
		t.Error("a ticket for an API key")
	}
	if _, err := a.Redeem(t.Context(), "short"); !errors.Is(err, ErrInvalidTicket) {
		t.Errorf("malformed ticket: %v", err)
	}
}

func checkUntil(t *testing.T, total time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
