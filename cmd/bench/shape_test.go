package main

import (
	"slices"
	"testing"
	"time"
)

func TestMaxInWindow(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		times []time.Duration
		w     time.Duration
		want  int
	}{
		{"none", nil, time.Second, 0},
		{"one", ms(5), time.Second, 1},
		{"all at once", ms(3, 1, 2, 2, 0), time.Second, 5},
		{"spread", ms(0, 1000, 2000, 3000), time.Second, 1},
		{"window is half-open", ms(0, 999, 1000), time.Second, 2},
		{"peak in the middle", ms(0, 1500, 1600, 1700, 2400, 4000), time.Second, 4},
		{"unsorted", ms(1700, 0, 2400, 1500, 4000, 1600), time.Second, 4},
	} {
		if got := maxInWindow(tc.times, tc.w); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestPerInterval(t *testing.T) {
	t.Parallel()
	s := time.Second
	got := perInterval([]time.Duration{-s / 10, 0, s / 2, s, 3*s + s/2}, s)
	if want := []int{3, 1, 0, 1}; !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if perInterval(nil, s) != nil {
		t.Fatal("no times: no intervals")
	}
}

func TestParseRedisStats(t *testing.T) {
	t.Parallel()
	info := "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:0.750000\r\nused_cpu_sys_children:9.0\r\n\r\n" +
		"# Commandstats\r\ncmdstat_xrange:calls=120,usec=900,usec_per_call=7.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setname:calls=3,usec=1,usec_per_call=0.33,rejected_calls=0,failed_calls=0\r\n"
	s, err := parseRedisStats(info)
	if err != nil {
		t.Fatal(err)
	}
	if s.cpu != 2*time.Second || s.calls["xrange"] != 120 || s.calls["client|setname"] != 3 || len(s.calls) != 2 {
		t.Fatalf("cpu %v calls %v", s.cpu, s.calls)
	}
	later := redisStats{calls: map[string]int64{"xrange": 150, "xread": 2}}
	if later.since(s, "xrange") != 30 || later.since(s, "xread") != 2 || later.since(s, "xinfo|stream") != 0 {
		t.Fatalf("since: %d %d", later.since(s, "xrange"), later.since(s, "xread"))
	}
	for _, bad := range []string{"used_cpu_sys:1\r\n", "used_cpu_sys:x\r\nused_cpu_user:1\r\n", "used_cpu_sys:1\r\nused_cpu_user:1\r\ncmdstat_get:calls=x\r\n"} {
		if _, err := parseRedisStats(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
