package auth

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Tokens are untrusted bytes: nothing that is not signed with the secret
// passes, whatever its shape, and nothing panics.
func FuzzVerify(f *testing.F) {
	a, err := New(Config{Secret: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	good := sign(f, jwt.SigningMethodHS256, testSecret, claims("alice", time.Hour), "")
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwiZXhwIjo5OTk5OTk5OTk5fQ.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		p, err := a.Verify(context.Background(), token)
		if err != nil {
			return
		}
		if p.Subject == "" || p.Expires.IsZero() {
			t.Fatalf("accepted without sub or exp: %+v", p)
		}
		if token != good {
			// A different string may still verify (base64 padding bits);
			// it must carry the very claims that were signed.
			if p.Subject != "alice" {
				t.Fatalf("forged token accepted: %q", token)
			}
		}
	})
}

// What Redis holds under a ticket is decoded defensively.
func FuzzDecodeTicket(f *testing.F) {
	f.Add([]byte(`{"sub":"alice","channels":["news","room.*"],"publish":["room.1"],"exp":1900000000000}`))
	f.Add([]byte(`{"sub":""}`))
	f.Add([]byte(`{"sub":"a","exp":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeTicket(b)
		if err != nil {
			return
		}
		if p.Subject == "" || p.Admin() {
			t.Fatalf("decoded %+v", p)
		}
		again, err := decodeTicket(encodeTicket(p))
		if err != nil || again.Subject != p.Subject || !again.Expires.Equal(p.Expires) {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}
