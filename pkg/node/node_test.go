package node

import "testing"

func TestRedisCLIArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		db   int
		tls  bool
		want string
	}{
		{"127.0.0.1:41234", 0, false, "-p 41234"},
		{"localhost:6379", 0, false, ""},
		{"redis.internal:6380", 2, false, "-h redis.internal -p 6380 -n 2"},
		{"redis.internal:6380", 0, true, "-h redis.internal -p 6380 --tls"},
		{"[::1]:6379", 0, false, "-h ::1"},
		{"bad", 0, false, ""},
	} {
		if got := redisCLIArgs(tc.addr, tc.db, tc.tls); got != tc.want {
			t.Errorf("redisCLIArgs(%q, %d) = %q, want %q", tc.addr, tc.db, got, tc.want)
		}
	}
}
