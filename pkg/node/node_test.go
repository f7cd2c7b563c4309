package node

import "testing"

func TestRedisCLIArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		db   int
		want string
	}{
		{"127.0.0.1:41234", 0, "-p 41234"},
		{"localhost:6379", 0, ""},
		{"redis.internal:6380", 2, "-h redis.internal -p 6380 -n 2"},
		{"[::1]:6379", 0, "-h ::1"},
		{"bad", 0, ""},
	} {
		if got := redisCLIArgs(tc.addr, tc.db); got != tc.want {
			t.Errorf("redisCLIArgs(%q, %d) = %q, want %q", tc.addr, tc.db, got, tc.want)
		}
	}
}
