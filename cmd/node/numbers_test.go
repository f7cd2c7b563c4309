package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/pushcluster/pushcluster/pkg/node"
)

// nodeFlags returns the node's flag set, as run builds it.
func nodeFlags() *flag.FlagSet {
	fs, _ := newFlagSet(&node.Config{})
	fs.SetOutput(io.Discard)
	return fs
}

// Every numeric flag says which of its values mean nothing: a flag added
// without a rule fails here.
func TestEveryNumericFlagHasARule(t *testing.T) {
	fs := nodeFlags()
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := numberOf(f); !ok {
			return
		}
		if _, ok := numberRules[f.Name]; !ok {
			t.Errorf("-%s is numeric and has no entry in numberRules", f.Name)
		}
	})
	for name := range numberRules {
		if fs.Lookup(name) == nil {
			t.Errorf("numberRules names -%s, which is no flag", name)
		}
	}
}

func TestCheckNumbers(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" for none
	}{
		{nil, ""},
		{[]string{"-max-connections", "0", "-fanout-workers", "0", "-replay-cache-bytes", "0", "-rebalance-factor", "0", "-conn-publish-rate", "0", "-max-age", "0", "-isolation-timeout", "0"}, ""},
		{[]string{"-max-len", "-1", "-channel-ttl", "-1s", "-replay-cache-bytes", "-1"}, ""},
		{[]string{"-rebalance-factor", "-3"}, "-rebalance-factor -3: must not be negative"},
		{[]string{"-rebalance-factor", "0.9"}, "-rebalance-factor 0.9: must be 1 or more"},
		{[]string{"-max-channels", "0"}, "-max-channels 0: must be positive"},
		{[]string{"-heartbeat", "-1s"}, "-heartbeat -1s: must be positive"},
		{[]string{"-max-connections-per-ip", "-1"}, "-max-connections-per-ip -1: must not be negative"},
		{[]string{"-rebalance-rate", "1.5"}, "-rebalance-rate 1.5: is a fraction"},
		{[]string{"-max-len", "0"}, "-max-len 0: 0 is no bound"},
	} {
		fs := nodeFlags()
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := checkNumbers(fs)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// docs/CONFIG.md is what -print-config-doc writes, and lists every flag
// once: regenerate it with go run ./cmd/node -print-config-doc >
// docs/CONFIG.md.
func TestConfigDocIsCurrent(t *testing.T) {
	fs := nodeFlags()
	seen := map[string]int{}
	for _, sec := range flagSections {
		for _, name := range sec.flags {
			seen[name]++
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if seen[f.Name] != 1 {
			t.Errorf("-%s is in %d sections of docs/CONFIG.md, want 1", f.Name, seen[f.Name])
		}
	})
	var want strings.Builder
	if err := writeConfigDoc(&want, fs); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Errorf("docs/CONFIG.md is not what the flags say: run go run ./cmd/node -print-config-doc > docs/CONFIG.md")
	}
}
