//go:build integration

package integration

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go/modules/compose"
)

var nodeServices = []string{"node1", "node2", "node3"}

// stack is the compose project the suite runs, one for every fault.
type stack struct {
	compose   *compose.DockerCompose
	project   string
	base      string // http://127.0.0.1:<port>: HAProxy
	redisAddr string // 127.0.0.1:<port>: Redis, published on loopback
	stats     string // http://127.0.0.1:<port>: HAProxy's statistics
	ids       map[string]string
	network   string
}

// imageEnv passes the image names through from the environment, so the
// suite runs whatever `make images` was told to build.
func imageEnv() map[string]string {
	env := map[string]string{}
	for _, k := range []string{"NODE_IMAGE", "REDIS_IMAGE", "HAPROXY_IMAGE"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startStack brings docker-compose.yml up under a project of its own, on
// free host ports, and waits until every service is healthy.
func startStack(ctx context.Context) (s *stack, err error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	redisPort, err := freePort()
	if err != nil {
		return nil, err
	}
	statsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s = &stack{
		project:   fmt.Sprintf("pushcluster-it-%d", os.Getpid()),
		base:      fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		redisAddr: fmt.Sprintf("127.0.0.1:%d", redisPort),
		stats:     fmt.Sprintf("http://127.0.0.1:%d", statsPort),
		ids:       map[string]string{},
	}
	s.compose, err = compose.NewDockerComposeWith(
		compose.WithStackFiles(filepath.Join(root, "docker-compose.yml")),
		compose.StackIdentifier(s.project))
	if err != nil {
		return nil, fmt.Errorf("failed to load the compose project: %w", err)
	}
	env := imageEnv()
	// Host ports are fixed for the run: a restarted Redis keeps its port.
	env["PUSH_HTTP_PORT"] = strconv.Itoa(httpPort)
	env["REDIS_HOST_PORT"] = strconv.Itoa(redisPort)
	env["HAPROXY_STATS_PORT"] = strconv.Itoa(statsPort)
	s.compose.WithEnv(env)
	st := s // a failure returns a nil s: the stack to take down is this one
	defer func() {
		if err != nil {
			st.down()
		}
	}()
	if err := s.compose.Up(ctx, compose.Wait(true)); err != nil {
		return nil, fmt.Errorf("failed to bring the cluster up (did make images run?): %w", err)
	}
	for _, svc := range append([]string{"redis", "haproxy"}, nodeServices...) {
		c, err := s.compose.ServiceContainer(ctx, svc)
		if err != nil {
			return nil, err
		}
		s.ids[svc] = c.GetContainerID()
	}
	s.network = s.project + "_default"
	if err := s.waitRouted(ctx, nodeServices...); err != nil {
		return s, err
	}
	return s, s.waitClustered(ctx)
}

// waitClustered polls until the node behind HAProxy sees every node alive
// in the cluster: they found each other through the compose service's
// DNS name, over gossip.
func (s *stack) waitClustered(ctx context.Context) error {
	return poll(ctx, 60*time.Second, func() error {
		resp, err := http.Get(s.base + "/api/cluster")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var v struct {
			Self  string
			Nodes []struct{ Name, State string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return err
		}
		alive := map[string]bool{}
		for _, n := range v.Nodes {
			alive[n.Name] = n.State == "alive"
		}
		for _, n := range nodeServices {
			if !alive[n] {
				return fmt.Errorf("%s sees the cluster as %+v", v.Self, v.Nodes)
			}
		}
		return nil
	})
}

func (s *stack) down() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.compose.Down(ctx, compose.RemoveOrphans(true), compose.RemoveVolumes(true)); err != nil {
		fmt.Fprintln(os.Stderr, "compose down:", err)
	}
}

// docker runs the docker CLI: the faults are what an operator would do.
func docker(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// health returns a container's state and health: "running healthy",
// "exited ", "paused healthy"...
func (s *stack) health(ctx context.Context, svc string) string {
	out, _ := docker(ctx, "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", s.ids[svc])
	return out
}

// waitHealthy polls until every service is running and healthy.
func (s *stack) waitHealthy(ctx context.Context, services ...string) error {
	return poll(ctx, 90*time.Second, func() error {
		for _, svc := range services {
			if h := s.health(ctx, svc); h != "running healthy" {
				return fmt.Errorf("%s is %q", svc, h)
			}
		}
		return nil
	})
}

// waitRouted polls until HAProxy has every one of nodes up in its backend
// of ready nodes: each has passed its health checks there, not just in
// Docker. (Asking which node answers a request tells nothing while
// long-lived connections weigh on leastconn.)
func (s *stack) waitRouted(ctx context.Context, nodes ...string) error {
	return poll(ctx, 90*time.Second, func() error {
		up, err := s.haproxyUp(ctx, "ready")
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if !up[n] {
				return fmt.Errorf("HAProxy has %s down (up: %v)", n, up)
			}
		}
		return nil
	})
}

// haproxyUp reads HAProxy's statistics (CSV) and returns which servers of
// backend are UP.
func (s *stack) haproxyUp(ctx context.Context, backend string) (map[string]bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.stats+"/;csv", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("HAProxy statistics: %v", err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[strings.TrimPrefix(name, "# ")] = i
	}
	up := map[string]bool{}
	for _, r := range rows[1:] {
		if len(r) > col["status"] && r[col["pxname"]] == backend {
			up[r[col["svname"]]] = r[col["status"]] == "UP"
		}
	}
	return up, nil
}

// restore undoes whatever a failed fault may have left behind, so the next
// fault starts from a whole cluster.
func (s *stack) restore(ctx context.Context) error {
	for svc, id := range s.ids {
		switch h := s.health(ctx, svc); {
		case strings.HasPrefix(h, "paused"):
			docker(ctx, "unpause", id)
		case !strings.HasPrefix(h, "running"):
			docker(ctx, "start", id)
		}
		nets, _ := docker(ctx, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", id)
		if !strings.Contains(nets, s.network) {
			s.connect(ctx, svc)
		}
	}
	if err := s.waitHealthy(ctx, append([]string{"redis"}, nodeServices...)...); err != nil {
		return err
	}
	return s.waitRouted(ctx, nodeServices...)
}

// connect joins a service's container to the project network again, under
// the names compose gave it: its service name, and "cluster" for nodes.
func (s *stack) connect(ctx context.Context, svc string) error {
	args := []string{"network", "connect", "--alias", svc}
	if strings.HasPrefix(svc, "node") {
		args = append(args, "--alias", "cluster")
	}
	_, err := docker(ctx, append(args, s.network, s.ids[svc])...)
	return err
}

// poll calls fn until it returns nil, ctx ends or total passes.
func poll(ctx context.Context, total time.Duration, fn func() error) error {
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %v: %w", total, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
