package node

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves the pprof profiles on DebugListen until ctx ends.
func (n *Node) serveDebug(ctx context.Context) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Addr: n.cfg.DebugListen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	n.log.Info("serving profiles", "addr", n.cfg.DebugListen)
	if err := hs.ListenAndServe(); err != http.ErrServerClosed {
		n.log.Warn("debug server failed", "err", err)
	}
}
