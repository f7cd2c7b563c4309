//go:build unix

package tests

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/auth"
	pcluster "github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/node"
)

func gossipKey(t *testing.T) []byte {
	key := make([]byte, 32)
	rand.Read(key)
	return key
}

func withKey(key []byte) func(*node.Config) {
	return func(cfg *node.Config) { cfg.Cluster.Key = key }
}

// A node that authenticates its clients refuses to gossip without a key,
// unless told that the network is trusted.
func TestAuthenticatedNodeNeedsAGossipKey(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	host := nextHost()
	_, err := node.New(node.Config{RedisURL: c.redisURL, Prefix: c.prefix, Name: "a",
		Listener: listenOn(t, host), Cluster: clusterConfig(host, nil), Auth: securedAuth()})
	if !errors.Is(err, node.ErrInsecureCluster) {
		t.Fatalf("node.New with authentication and no gossip key: %v, want ErrInsecureCluster", err)
	}
	c.startMember("b", nil, secured, func(cfg *node.Config) { cfg.Cluster.Insecure = true })
	c.startMember("k", nil, secured, withKey(gossipKey(t)))
}

// A process that reaches a secured node's gossip port but has not its key
// does not become a member, and a member with the key that runs without
// authentication is answered by no secured member: through neither can an
// anonymous caller list, message or disconnect the secured node's clients.
func TestGossipPortIsNoBackDoor(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	key := gossipKey(t)
	a := c.startMember("a", nil, secured, withKey(key))
	b := c.startMember("b", []string{a.Cluster().GossipAddr()}, secured, withKey(key))
	admin := bearer(testAPIKey)
	s := openSSE(t, sseURL(a, "private")+"&token="+token(t, grant{sub: "victim", channels: []string{"*"}}), "")
	var wd struct{ Client string }
	jsonOf(t, s.waitWelcome().Data, &wd)

	// An intruder with no key: memberlist drops what it sends.
	intruder := c.startProcess("intruder", []string{a.Cluster().GossipAddr()})
	// An insider with the key but no authentication: a member, not trusted.
	insider := c.startMember("insider", []string{a.Cluster().GossipAddr()}, withKey(key))
	wantMembers(t, insider, map[string]string{"a": "alive", "b": "alive", "insider": "alive"})
	for _, n := range []*testNode{intruder.testNode, insider} {
		if st, body := postJSON(t, n.base+"/api/disconnect", map[string]string{"client": wd.Client}); st == http.StatusOK {
			t.Errorf("%s disconnected the victim anonymously: %d %s", n.base, st, body)
		}
		if st, body := postJSON(t, n.base+"/api/publish", map[string]string{"client": wd.Client, "data": "forged"}); st == http.StatusOK {
			t.Errorf("%s messaged the victim anonymously: %d %s", n.base, st, body)
		}
		var page struct{ Clients []pcluster.Client }
		getJSON(t, n.base+"/api/clients", &page)
		for _, cl := range page.Clients {
			if cl.ID == wd.Client {
				t.Errorf("%s lists the victim to an anonymous caller", n.base)
			}
		}
		var pres struct{ Clients []pcluster.Client }
		getJSON(t, n.base+"/api/presence?channel=private", &pres)
		if len(pres.Clients) != 0 {
			t.Errorf("%s shows who is on the secured node's channel: %+v", n.base, pres.Clients)
		}
	}
	for _, m := range viewOf(t, insider).Nodes {
		if m.Name == "intruder" {
			t.Errorf("the intruder joined: %+v", viewOf(t, insider).Nodes)
		}
	}
	if got := a.Cluster().Stats().Refused; got == 0 {
		t.Error("a counted no refused question")
	}
	if ev := s.named("push.error"); len(ev) != 0 || len(s.named("push.direct")) != 0 {
		t.Fatalf("the victim heard from the intruders: %+v", ev)
	}

	// A secured member acts for an API key, across the cluster.
	st, body, _ := call(t, nil, http.MethodPost, b.base+"/api/disconnect", map[string]string{"client": wd.Client}, admin...)
	if st != http.StatusOK {
		t.Fatalf("disconnect with an API key through b: %d %s", st, body)
	}
	<-s.done
}

// Junk sent to the gossip port, and a peer with the wrong key, are counted
// and logged a few times, not once a packet; a clean shutdown logs no error.
func TestGossipJunkIsCountedNotLogged(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var logs logBuffer
	a := c.startMember("a", nil, withKey(gossipKey(t)), func(cfg *node.Config) { cfg.Logger = slogTo(&logs) })
	addr := a.Cluster().GossipAddr()
	junk := make([]byte, 512)
	udp, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		rand.Read(junk)
		udp.Write(junk)
	}
	udp.Close()
	for range 300 {
		tcp, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		rand.Read(junk)
		tcp.Write(junk)
		tcp.Close()
	}
	// A would-be member with another key keeps trying to join.
	c.startMember("wrongkey", []string{addr}, withKey(gossipKey(t)))
	checkFor(t, 20*time.Second, func() error {
		if got := a.Cluster().Stats().GossipProblems; got < 600 {
			return fmt.Errorf("%d gossip problems counted", got)
		}
		return nil
	})
	a.stop()
	var problems, errs int
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			errs++
		}
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "gossip") {
			problems++
		}
	}
	if problems > 3 || errs > 0 {
		t.Errorf("%d WARN lines about gossip and %d ERROR lines for %d problems:\n%s",
			problems, errs, a.Cluster().Stats().GossipProblems, logs.String())
	}
	if problems == 0 {
		t.Error("the problems were never logged")
	}
}

func listenOn(t *testing.T, host string) net.Listener {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func securedAuth() auth.Config {
	var cfg node.Config
	secured(&cfg)
	return cfg.Auth
}

// A join that reaches nobody — no one there, another key, no key — is
// logged as a warning that says it will be retried.
func TestFailedJoinIsAWarning(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	keyed := c.startMember("keyed", nil, withKey(gossipKey(t)))
	for name, mod := range map[string]func(*node.Config){
		"nobody": func(cfg *node.Config) { cfg.Cluster.Join = []string{net.JoinHostPort(nextHost(), "1")} },
		"wrong": func(cfg *node.Config) {
			cfg.Cluster.Join, cfg.Cluster.Key = []string{keyed.Cluster().GossipAddr()}, gossipKey(t)
		},
		"nokey": func(cfg *node.Config) { cfg.Cluster.Join = []string{keyed.Cluster().GossipAddr()} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			c.startMember(name, nil, mod, func(cfg *node.Config) { cfg.Logger = slogTo(&logs) })
			checkFor(t, 20*time.Second, func() error {
				if !strings.Contains(logs.String(), `level=WARN msg="failed to join the cluster; retrying"`) {
					return errors.New("no warning yet")
				}
				return nil
			})
		})
	}
}
