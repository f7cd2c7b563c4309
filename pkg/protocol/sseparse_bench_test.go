package protocol

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// benchStream returns n events of about size bytes each, with an id, an
// event type and data split over lines of up to lineLen bytes (the load
// tool's payloads, which hold no line break, come as one).
func benchStream(n, size, lineLen int) string {
	var sb strings.Builder
	line := strings.Repeat("x", lineLen-1)
	for i := range n {
		fmt.Fprintf(&sb, "id: %d-0\nevent: msg\n", i+1)
		for left := size; left > 0; left -= len(line) + 1 {
			sb.WriteString("data: ")
			sb.WriteString(line[:min(len(line), left)])
			sb.WriteByte('\n')
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// BenchmarkParser parses streams of 1 KiB and 64 KiB events, with the
// Parser and with the byte-at-a-time reference it replaced.
func BenchmarkParser(b *testing.B) {
	for _, size := range []struct {
		name           string
		n, bytes, line int
	}{{"1KiB", 256, 1 << 10, 128}, {"64KiB", 16, 64 << 10, 128}, {"64KiB-1line", 16, 64 << 10, 64 << 10}} {
		stream := benchStream(size.n, size.bytes, size.line)
		for _, impl := range []struct {
			name string
			new  func(io.Reader) func() (SSEEvent, error)
		}{
			{"new", func(r io.Reader) func() (SSEEvent, error) { return NewSSEParser(r).Next }},
			{"raw", func(r io.Reader) func() (SSEEvent, error) {
				p := NewSSEParser(r)
				return func() (SSEEvent, error) {
					ev, err := p.NextRaw()
					return SSEEvent{ID: ev.ID, Event: ev.Event}, err
				}
			}},
			{"ref", func(r io.Reader) func() (SSEEvent, error) { return newRefParser(r).Next }},
		} {
			b.Run(size.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(stream)))
				for b.Loop() {
					next := impl.new(strings.NewReader(stream))
					events := 0
					for {
						_, err := next()
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						events++
					}
					if events != size.n {
						b.Fatalf("%d events, want %d", events, size.n)
					}
				}
			})
		}
	}
}
