package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// No more than MaxConcurrent calls are in flight: the rest wait for a slot
// (within the timeout), and call once one is free.
func TestHookBoundsCallsInFlight(t *testing.T) {
	var in, most atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := in.Add(1)
		defer in.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		w.Write([]byte(`{"user":"u","channels":["a"]}`))
	}))
	defer srv.Close()
	a, err := New(Config{Hooks: Hooks{ConnectURL: srv.URL, Timeout: 20 * time.Second, MaxConcurrent: 8}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for range 50 {
		wg.Go(func() {
			p, err := a.Authenticate(context.Background(), httptest.NewRequest("GET", "/sse?channel=a", nil))
			if err == nil && p.Subject == "u" && p.Via == "hook" {
				admitted.Add(1)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for in.Load() < 8 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // more would have arrived by now
	if n := in.Load(); n != 8 {
		t.Fatalf("%d calls in flight, want the bound of 8", n)
	}
	close(release)
	wg.Wait()
	if most.Load() != 8 || admitted.Load() != 50 {
		t.Fatalf("at most %d in flight, %d of 50 admitted", most.Load(), admitted.Load())
	}
	if st := a.Stats(); st.HookAdmitted != 50 {
		t.Fatalf("stats %+v", st)
	}
}

// What the backend answers becomes the principal, a refusal or a failure;
// nothing but a 200 with rights admits.
func TestHookAnswers(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   error
	}{
		{200, `{"user":"u","channels":["a"],"expires":"2999-01-01T00:00:00Z"}`, nil},
		{200, `{"user":"u","channels":["a"],"expires":32472144000}`, nil},
		{200, `{"user":"u","expires":1}`, ErrTokenExpired},
		{200, `{"user":"u","expires":"tomorrow"}`, ErrHookFailed},
		{200, `not json`, ErrHookFailed},
		{401, `{"message":"sign in"}`, ErrHookRefused},
		{403, `nope`, ErrHookForbade},
		{500, ``, ErrHookFailed},
		{302, ``, ErrHookFailed},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		a, _ := New(Config{Hooks: Hooks{ConnectURL: srv.URL}})
		p, err := a.Authenticate(context.Background(), httptest.NewRequest("GET", "/sse?channel=a", nil))
		srv.Close()
		if tc.want == nil {
			if err != nil || p.Subject != "u" || !p.CanRead("a") || p.CanRead("b") || p.Expires.Year() != 2999 {
				t.Errorf("%d %s: %+v %v", tc.status, tc.body, p, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%d %s: %v, want %v", tc.status, tc.body, err, tc.want)
		}
	}
	// A backend that is not there refuses too.
	a, _ := New(Config{Hooks: Hooks{ConnectURL: "http://127.0.0.1:1/", Timeout: time.Second}})
	if _, err := a.Authenticate(context.Background(), httptest.NewRequest("GET", "/sse", nil)); !errors.Is(err, ErrHookFailed) {
		t.Errorf("no backend: %v", err)
	}
}
