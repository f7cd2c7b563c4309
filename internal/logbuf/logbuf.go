// Package logbuf is a buffer that loggers on many goroutines write to and
// a test reads, for tests that check what a part logged.
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer collects what is written to it. Its zero value is ready; it is
// safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
