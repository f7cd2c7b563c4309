package api

import (
	"bytes"
	_ "embed"
	"html"
	"net/http"
)

//go:embed demo.html
var demoPage []byte

// demo returns the demo page for a node whose streams use prefix in the
// store redis-cli reaches with cliArgs, so the line it shows works as printed.
func demo(prefix, cliArgs string) []byte {
	page := bytes.Replace(demoPage, []byte(`data-prefix="push:"`),
		[]byte(`data-prefix="`+html.EscapeString(prefix)+`"`), 1)
	return bytes.Replace(page, []byte(`data-store-cli=""`),
		[]byte(`data-store-cli="`+html.EscapeString(cliArgs)+`"`), 1)
}

// serveDemo writes the demo page, embedded so the binary needs no files on
// disk. It is sent with no-cache so a redeployed node's page is picked up.
func (s *Server) serveDemo(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.Write(s.demo)
}

//go:embed status.html
var statusPage []byte

// serveStatus writes the cluster status page: members and their load, live
// from /api/cluster.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.Write(statusPage)
}
