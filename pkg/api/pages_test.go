package api

import (
	"bytes"
	"testing"
)

// The demo page's redis-cli line names the node's prefix and how to reach
// its store, so it works as printed.
func TestDemoPageNamesPrefixAndStore(t *testing.T) {
	t.Parallel()
	page := demo(`t<1>:`, "-p 41234")
	for _, want := range []string{`data-prefix="t&lt;1&gt;:"`, `data-store-cli="-p 41234"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("demo page lacks %s", want)
		}
	}
}
