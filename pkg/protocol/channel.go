package protocol

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxChannelLen is the longest channel name accepted, in bytes.
const MaxChannelLen = 200

// MaxEventLen is the longest event name accepted, in bytes.
const MaxEventLen = 200

var (
	// ErrInvalidChannel is returned for a channel name that is empty, too
	// long, not UTF-8, or holds spaces, control characters or '$'.
	ErrInvalidChannel = errors.New("protocol: invalid channel name")
	// ErrInvalidEvent is returned for an event name that is too long, not
	// UTF-8, holds control characters (CR and LF would end an SSE field), or
	// is reserved for the node's control events.
	ErrInvalidEvent = errors.New("protocol: invalid event name")
)

// ReservedEventPrefix begins the event names of the node's own control
// events (push.welcome, push.gap, push.error, push.direct). No publish may
// use one, or it would reach every subscriber as a control event.
const ReservedEventPrefix = "push."

// Reserved reports whether an event name is the node's own.
func Reserved(event string) bool { return strings.HasPrefix(event, ReservedEventPrefix) }

// ValidateChannel reports whether name can be a channel. '$' is reserved for
// the node's own keys (the doorbell probe), so no channel can collide with them.
func ValidateChannel(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidChannel)
	case len(name) > MaxChannelLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidChannel, MaxChannelLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrInvalidChannel)
	case strings.ContainsFunc(name, badChannelRune):
		return fmt.Errorf("%w: %q holds a space, control character or '$'", ErrInvalidChannel, name)
	}
	return nil
}

func badChannelRune(r rune) bool {
	return r <= ' ' || r == 0x7f || r == '$' || (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029
}

// ValidateEvent reports whether name can be an event name; "" means none.
func ValidateEvent(name string) error {
	switch {
	case len(name) > MaxEventLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidEvent, MaxEventLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrInvalidEvent)
	case strings.ContainsFunc(name, badEventRune):
		return fmt.Errorf("%w: %q holds a control character", ErrInvalidEvent, name)
	case Reserved(name):
		return fmt.Errorf("%w: %q: names beginning with %q are the node's control events", ErrInvalidEvent, name, ReservedEventPrefix)
	}
	return nil
}

func badEventRune(r rune) bool {
	return r < ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f)
}
