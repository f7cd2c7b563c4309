package transport

import (
	_ "embed"
	"net/http"
)

//go:embed demo.html
var demoPage []byte

// serveDemo writes the demo page, embedded so the binary needs no files on
// disk. It is sent with no-cache so a redeployed node's page is picked up.
func serveDemo(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.Write(demoPage)
}
