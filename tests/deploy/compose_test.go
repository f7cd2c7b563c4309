package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yml with compose-go, the loader Compose
// v2 (and testcontainers' compose module) uses: it validates against the
// Compose schema, so an unknown key or a wrong type fails, interpolates
// ${VAR:-default} from env alone (not the test's environment) and checks
// references between services, networks and volumes.
func loadCompose(t *testing.T, env ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithName("pushcluster"), cli.WithWorkingDirectory(root), cli.WithEnv(env),
		cli.WithInterpolation(true), cli.WithConsistency(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

var nodeServices = []string{"node1", "node2", "node3"}

func TestComposeLoadsStrictly(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	want := append([]string{"haproxy", "redis"}, nodeServices...)
	got := p.ServiceNames()
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}
}

// TestComposeImagesDefaultToPublicNames: a user with a registry needs
// nothing else, and scripts/standin-images builds the same names here.
func TestComposeImagesDefaultToPublicNames(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	script := string(readFile(t, "scripts/standin-images"))
	for svc, env := range map[string]string{"redis": "REDIS_IMAGE", "haproxy": "HAPROXY_IMAGE", "node1": "NODE_IMAGE"} {
		image := p.Services[svc].Image
		if svc != "node1" && !strings.Contains(script, env+":-"+image+"}") {
			t.Errorf("%s's default image %s is not what scripts/standin-images builds as $%s", svc, image, env)
		}
		if over := loadCompose(t, env+"=example/other:1"); over.Services[svc].Image != "example/other:1" {
			t.Errorf("%s does not take its image from $%s", svc, env)
		}
	}
	if !strings.Contains(string(readFile(t, "Makefile")), "NODE_IMAGE ?= "+p.Services["node1"].Image) {
		t.Errorf("make images does not build the node image the compose file runs, %s", p.Services["node1"].Image)
	}
}

func TestComposeNodes(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for _, name := range nodeServices {
		s := p.Services[name]
		if s.Hostname != name {
			t.Errorf("%s: hostname %q; the node names itself after its host name, which clients see in push.welcome", name, s.Hostname)
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		if env["PUSH_REDIS_URL"] != "redis://redis:6379/0" {
			t.Errorf("%s: PUSH_REDIS_URL=%q", name, env["PUSH_REDIS_URL"])
		}
		for _, k := range []string{"PUSH_CLUSTER_BIND", "PUSH_CLUSTER_JOIN", "PUSH_DRAIN_TIMEOUT"} {
			if env[k] == "" {
				t.Errorf("%s: no %s", name, k)
			}
		}
		// The join name must be one every node answers to.
		joinHost, _, _ := strings.Cut(env["PUSH_CLUSTER_JOIN"], ":")
		if net := s.Networks["default"]; joinHost != name && (net == nil || !slices.Contains(net.Aliases, joinHost)) {
			t.Errorf("%s: PUSH_CLUSTER_JOIN=%s names a host %s does not answer to", name, env["PUSH_CLUSTER_JOIN"], name)
		}
		drain, err := time.ParseDuration(env["PUSH_DRAIN_TIMEOUT"])
		if err != nil {
			t.Errorf("%s: PUSH_DRAIN_TIMEOUT: %v", name, err)
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= drain {
			t.Errorf("%s: stop_grace_period %v does not exceed the drain timeout %v: Docker would SIGKILL mid-drain", name, s.StopGracePeriod, drain)
		}
		hc := s.HealthCheck
		if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" || hc.Test[1] != "/node" {
			t.Fatalf("%s: healthcheck %v; the image has no shell: want [CMD /node healthcheck ...]", name, hc)
		}
		path := "/healthz"
		if i := slices.Index(hc.Test, "-path"); i > 0 && i+1 < len(hc.Test) {
			path = hc.Test[i+1]
		}
		if status := servedStatus(t, path); status != 200 {
			t.Errorf("%s: healthcheck path %s: the node answers %d", name, path, status)
		}
	}
}

func TestComposeRedisPersists(t *testing.T) {
	t.Parallel()
	r := loadCompose(t).Services["redis"]
	cmd := strings.Join(r.Command, " ")
	if !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("redis command %q: want --appendonly yes", cmd)
	}
	if len(r.Volumes) == 0 || r.Volumes[0].Target != "/data" || r.Volumes[0].Type != types.VolumeTypeVolume {
		t.Errorf("redis keeps /data in no named volume: %v", r.Volumes)
	}
}

// TestComposeHAProxyReachesEveryNode: the load balancer's backends name
// every node service on the port it listens on, checked on /readyz, and
// HAProxy listens where the compose file publishes.
func TestComposeHAProxyReachesEveryNode(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	h := p.Services["haproxy"]
	var cfgFile string
	for _, v := range h.Volumes {
		if v.Target == "/usr/local/etc/haproxy/haproxy.cfg" {
			cfgFile = v.Source
		}
	}
	if cfgFile == "" {
		t.Fatal("haproxy mounts no /usr/local/etc/haproxy/haproxy.cfg")
	}
	b, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	var published bool
	for _, p := range h.Ports {
		if !regexp.MustCompile(`(?m)^\s*bind\s+:` + strconv.FormatUint(uint64(p.Target), 10) + `\s*$`).MatchString(cfg) {
			t.Errorf("haproxy.cfg binds no :%d, a port the compose file publishes", p.Target)
		}
		published = published || p.Published == "6788" && p.Target == 6788
	}
	if !published {
		t.Errorf("haproxy publishes %v, want host port 6788 by default", h.Ports)
	}
	for _, want := range []string{`balance\s+leastconn`, `option\s+httpchk`, `uri\s+/readyz`, `timeout\s+tunnel`} {
		if !regexp.MustCompile(want).MatchString(cfg) {
			t.Errorf("haproxy.cfg has no %s", want)
		}
	}
	for _, bad := range []string{`(?m)^\s*cookie\s`, `(?m)^\s*stick\s`, `(?m)^\s*option\s+http-buffer-request`, `(?m)^\s*compression\s`} {
		if regexp.MustCompile(bad).MatchString(cfg) {
			t.Errorf("haproxy.cfg has %s: no stickiness, no buffering", bad)
		}
	}
	for _, n := range nodeServices {
		if !regexp.MustCompile(`(?m)^\s*server\s+\S+\s+` + n + `:6788\b`).MatchString(cfg) {
			t.Errorf("haproxy.cfg has no server %s:6788", n)
		}
	}
}

// TestComposeFileWorksWithComposeV1: docker-compose 1.29 validates against
// its own schema; a key only Compose v2 knows fails here. Skipped where
// the command is not installed.
func TestComposeFileWorksWithComposeV1(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose (v1) not installed")
	}
	cmd := exec.Command(bin, "-f", filepath.Join(repoRoot(t), "docker-compose.yml"), "config", "-q")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker-compose config: %v\n%s", err, out)
	}
}
