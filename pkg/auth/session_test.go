package auth

import "testing"

// The client ID depends on the user as well as the session: another user
// presenting the same session token is another client. Without a user it
// is what it always was.
func TestSessionClientByUser(t *testing.T) {
	token, anon := NewSession("")
	if id, err := SessionClient(token, ""); err != nil || id != anon {
		t.Fatalf("open node: %q %v, want %q", id, err, anon)
	}
	alice, _ := SessionClient(token, "alice")
	bob, _ := SessionClient(token, "bob")
	if alice == bob || alice == anon {
		t.Errorf("ids: anonymous %q, alice %q, bob %q", anon, alice, bob)
	}
}

// Session tokens come from clients: any string either parses to a client
// ID or is refused, without panicking.
func FuzzParseSession(f *testing.F) {
	token, _ := NewSession("")
	f.Add(token, "alice")
	f.Add("", "")
	f.Add("!!!!", "x")
	f.Fuzz(func(t *testing.T, token, user string) {
		id, err := SessionClient(token, user)
		if err == nil && len(id) != 16 {
			t.Fatalf("client ID %q", id)
		}
	})
}
