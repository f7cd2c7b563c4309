package store

import "testing"

// The check value of CRC-16/XMODEM, and slots the cluster specification
// and redis-cli agree on (CLUSTER KEYSLOT).
func TestSlot(t *testing.T) {
	t.Parallel()
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for key, want := range map[string]int{
		"":                 0,
		"foo":              12182,
		"bar":              5061,
		"{user1000}.a":     Slot("user1000"),
		"{user1000}.b":     Slot("user1000"),
		"foo{}{bar}":       Slot("foo{}{bar}"), // empty first tag: whole key
		"foo{{bar}}zap":    Slot("{bar"),
		"foo{bar}{zap}":    Slot("bar"),
		"push:news":        Slot("push:news"),
		"{":                Slot("{"),
		"abc{def":          Slot("abc{def"),
		"__keyspace@0__:x": Slot("__keyspace@0__:x"),
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	if Slot("foo{}{bar}") == Slot("bar") {
		t.Error("an empty first tag must hash the whole key")
	}
}

func TestTagIn(t *testing.T) {
	t.Parallel()
	for _, slot := range []int{0, 1, 8000, SlotCount - 1} {
		tag, ok := tagIn(func(s int) bool { return s == slot })
		if !ok || Slot("{"+tag+"}probe") != slot {
			t.Errorf("tag for slot %d: %q %v (slot %d)", slot, tag, ok, Slot("{"+tag+"}"))
		}
	}
	if _, ok := tagIn(func(int) bool { return false }); ok {
		t.Error("a tag found for no slot")
	}
}
