package auth

import "testing"

func TestRules(t *testing.T) {
	t.Parallel()
	alice := &Principal{Subject: "alice", Channels: Patterns{"news", "room.*", "inbox#*"}, Publish: Patterns{"room.1"}}
	star := &Principal{Subject: "bob", Channels: Patterns{"*"}}
	cases := []struct {
		p    *Principal
		ch   string
		want bool
	}{
		{alice, "news", true},
		{alice, "news2", false},
		{alice, "room.", true},
		{alice, "room.x", true},
		{alice, "room", false},
		{alice, "news.presence", true},
		{alice, "room.x.presence", true},
		{alice, "other.presence", false},
		{alice, "inbox#alice", true},
		{alice, "inbox#bob", false},
		{alice, "inbox#alice.presence", true},
		{alice, "inbox#", false},
		{star, "anything", true},
		{star, "inbox#alice", false},
		{star, "inbox#bob", true},
		{star, "a#b#bob", true},
		{star, "a#bob#c", false},
		{Open, "inbox#alice", true},
	}
	for _, c := range cases {
		if got := c.p.CanRead(c.ch); got != c.want {
			t.Errorf("%s CanRead(%q) = %v, want %v", c.p.Subject, c.ch, got, c.want)
		}
	}
	if !alice.CanPublish("room.1") || alice.CanPublish("room.2") || alice.CanPublishDirect() {
		t.Error("publish rules")
	}
}

// Patterns never panic and "*" only acts at the end.
func FuzzPatterns(f *testing.F) {
	f.Add("news*", "news.a")
	f.Add("*", "")
	f.Add("a*b", "a*b")
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		m := Patterns{pattern}.Match(channel)
		if pattern == channel && !m {
			t.Fatal("an exact name does not match itself")
		}
		Owner(channel)
	})
}
