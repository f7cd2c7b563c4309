// Package clientlib is the browser library every node serves: PushClient
// as a classic script (/push.js), an ES module (/push.mjs) and its
// TypeScript declarations (/push.d.ts). push.src.js is the source; the
// files served are minified from it by esbuild (go generate), checked in,
// and checked to be current by a test, so building the node needs no
// JavaScript tool.
package clientlib

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"time"
)

//go:generate go run ./internal/gen

//go:embed push.js push.mjs push.d.ts
var files embed.FS

// File is one file of the library, ready to serve.
type File struct {
	Name, ContentType, ETag string
	Body                    []byte
}

// Files are the library's files by path: /push.js, /push.mjs, /push.d.ts.
var Files = func() map[string]File {
	out := map[string]File{}
	for name, typ := range map[string]string{
		"push.js":   "text/javascript; charset=utf-8",
		"push.mjs":  "text/javascript; charset=utf-8",
		"push.d.ts": "application/typescript; charset=utf-8",
	} {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		out["/"+name] = File{Name: name, ContentType: typ, Body: b,
			ETag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
	}
	return out
}()

// Serve answers GET and HEAD of f: with its ETag, revalidated on every
// use (a node upgrade changes it), and readable from any origin, since a
// page on another origin imports the module with CORS and the library is
// public.
func (f File) Serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	h.Set("ETag", f.ETag)
	h.Set("Cache-Control", "public, no-cache")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, f.Name, time.Time{}, bytes.NewReader(f.Body)) // If-None-Match, HEAD, ranges
}
