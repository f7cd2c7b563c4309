package auth

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pushcluster/pushcluster/internal/testredis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(wrapped{m},
		// net/http's keep-alive connections to the test JWKS servers.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// wrapped stops the shared test Redis after the tests.
type wrapped struct{ m *testing.M }

func (w wrapped) Run() int { return testredis.Main(w.m) }
