package main

import "testing"

// The fast path reads what the decoder would, and leaves it every frame it
// cannot read exactly.
func TestFastMessage(t *testing.T) {
	for _, tt := range []struct {
		frame    string
		ok       bool
		id, data string
	}{
		{`{"type":"message","channel":"c","id":"1-2","data":"pcb:1:2:3:xx"}`, true, "1-2", "pcb:1:2:3:xx"},
		{`{"type":"message","channel":"c","id":"1-2","event":"e","data":"a\"b"}`, false, "", ""},
		{`{"type":"message","channel":"c","data":"x"}`, false, "", ""},
		{`{"type":"gap","channel":"c","id":"1-2","data":"x"}`, false, "", ""},
	} {
		ev, ok := fastMessage([]byte(tt.frame))
		if ok != tt.ok || (ok && (ev.id != tt.id || string(ev.payload) != tt.data || ev.kind != evMessage)) {
			t.Errorf("%s: %+v, %v; want id %q data %q, %v", tt.frame, ev, ok, tt.id, tt.data, tt.ok)
		}
	}
}
