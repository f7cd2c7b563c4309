package clientlib

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pushcluster/pushcluster/pkg/api/clientlib/internal/build"
)

// The files served are what go generate makes from push.src.js now.
func TestGeneratedIsCurrent(t *testing.T) {
	want, err := build.Outputs(".")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range want {
		got := Files["/"+name].Body
		if !bytes.Equal(got, b) {
			t.Errorf("%s is not what push.src.js makes: run go generate ./pkg/api/clientlib", name)
		}
	}
}

// The library stays small: under 8 KB gzipped.
func TestSize(t *testing.T) {
	for path, f := range Files {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(f.Body)
		zw.Close()
		if buf.Len() >= 8000 {
			t.Errorf("%s is %d bytes gzipped, want under 8 KB", path, buf.Len())
		}
		t.Logf("%s: %d bytes, %d gzipped", path, len(f.Body), buf.Len())
	}
}

// Served with an ETag that a revalidation matches, readable from any
// origin.
func TestServe(t *testing.T) {
	f := Files["/push.mjs"]
	rec := httptest.NewRecorder()
	f.Serve(rec, httptest.NewRequest("GET", "/push.mjs", nil))
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), f.Body) || rec.Header().Get("ETag") == "" ||
		rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET: %d %v", rec.Code, rec.Header())
	}
	req := httptest.NewRequest("GET", "/push.mjs", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	f.Serve(rec, req)
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Fatalf("revalidation: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	req.Header.Set("If-None-Match", `"stale"`)
	rec = httptest.NewRecorder()
	f.Serve(rec, req)
	if rec.Code != 200 {
		t.Fatalf("a stale ETag: %d", rec.Code)
	}
}
