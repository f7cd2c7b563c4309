package store

import "github.com/pushcluster/pushcluster/pkg/protocol"

// Stream entry fields the node reads and writes. Other fields are kept in
// Redis but ignored.
const (
	FieldData    = "data"
	FieldEvent   = "event"
	FieldTo      = "to"
	FieldExclude = "exclude"
)

// Entry is one stream entry: one published message.
type Entry struct {
	ID    protocol.ID
	Event string // SSE event name; "" for the default "message"
	Data  string // payload, delivered exactly as stored
	// To, when set, names the one client that receives the entry.
	To string
	// Exclude, when set, names a client that does not receive the entry
	// (publish to everyone but the sender).
	Exclude string
}

// Message is what a publisher sends; the store assigns the ID.
type Message struct {
	Event   string
	Data    string
	To      string
	Exclude string
}

// For reports whether the entry is delivered to the client with the given ID.
func (e *Entry) For(client string) bool {
	return (e.To == "" || e.To == client) && (e.Exclude == "" || e.Exclude != client)
}

// entryFromValues reads an entry's fields. An event name a raw XADD gave
// that is reserved for control events is dropped: the entry is delivered
// as if it had none, so no publisher with write access to Redis can make
// subscribers see a forged control event.
func entryFromValues(id protocol.ID, values map[string]any) Entry {
	e := Entry{ID: id}
	e.Data, _ = values[FieldData].(string)
	e.Event, _ = values[FieldEvent].(string)
	if protocol.Reserved(e.Event) {
		e.Event = ""
	}
	e.To, _ = values[FieldTo].(string)
	e.Exclude, _ = values[FieldExclude].(string)
	return e
}

func (m *Message) values() []any {
	v := make([]any, 0, 8)
	v = append(v, FieldData, m.Data)
	if m.Event != "" {
		v = append(v, FieldEvent, m.Event)
	}
	if m.To != "" {
		v = append(v, FieldTo, m.To)
	}
	if m.Exclude != "" {
		v = append(v, FieldExclude, m.Exclude)
	}
	return v
}
