package transport

import (
	"net/url"
	"testing"
)

func TestSessionIdentity(t *testing.T) {
	t.Parallel()
	token, id := newSession()
	again, err := parseSession(token)
	if err != nil || again != id {
		t.Fatalf("parseSession(%q) = %q, %v; want %q", token, again, err, id)
	}
	other, otherID := newSession()
	if other == token || otherID == id {
		t.Fatal("two sessions collided")
	}
	for _, bad := range []string{"x", token + "A", token[:len(token)-1], "!!!!!!!!!!!!!!!!!!!!!!!!", id} {
		if _, err := parseSession(bad); err == nil {
			t.Errorf("parseSession(%q) accepted", bad)
		}
	}
	_, fresh, err := requestSession(url.Values{})
	if err != nil || fresh == "" || fresh == id {
		t.Fatalf("no session: %q %v", fresh, err)
	}
}

func FuzzParseSession(f *testing.F) {
	token, _ := newSession()
	f.Add(token)
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseSession(s)
		if err != nil {
			return
		}
		if len(id) != 16 {
			t.Fatalf("id %q of session %q", id, s)
		}
		if again, _ := parseSession(s); again != id {
			t.Fatalf("session %q gave %q then %q", s, id, again)
		}
	})
}
