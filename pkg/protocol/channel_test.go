package protocol

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		valid bool
	}{
		{"plain", "news", true},
		{"punctuation", "a:b/c-d_e.f@g", true},
		{"unicode", "新闻", true},
		{"max length", strings.Repeat("a", MaxChannelLen), true},
		{"max length multibyte", strings.Repeat("é", MaxChannelLen/2), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", MaxChannelLen+1), false},
		{"too long multibyte", strings.Repeat("é", MaxChannelLen/2) + "a", false},
		{"space", "a b", false},
		{"leading space", " a", false},
		{"tab", "a\tb", false},
		{"LF", "a\nb", false},
		{"CR", "a\rb", false},
		{"NUL", "a\x00b", false},
		{"DEL", "a\x7fb", false},
		{"dollar", "a$b", false},
		{"only dollar", "$", false},
		{"non-UTF-8", "a\xffb", false},
		{"truncated UTF-8", "\xe6\x96", false},
		{"NEL", "a\u0085b", false},
		{"C1 control", "a\u009fb", false},
		{"line separator", "a\u2028b", false},
		{"paragraph separator", "a\u2029b", false},
	}
	for _, tt := range tests {
		err := ValidateChannel(tt.in)
		if tt.valid && err != nil {
			t.Errorf("%s: ValidateChannel(%q) = %v, want nil", tt.name, tt.in, err)
		}
		if !tt.valid && !errors.Is(err, ErrInvalidChannel) {
			t.Errorf("%s: ValidateChannel(%q) = %v, want ErrInvalidChannel", tt.name, tt.in, err)
		}
	}
}

func TestValidateEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		valid bool
	}{
		{"none", "", true},
		{"plain", "myEve", true},
		{"dotted", "news.sport", true},
		{"reserved welcome", "push.welcome", false},
		{"reserved gap", "push.gap", false},
		{"reserved prefix", "push.", false},
		{"not reserved", "push", true},
		{"not reserved either", "pushed.x", true},
		{"space", "my event", true},
		{"unicode", "新闻", true},
		{"max length", strings.Repeat("e", MaxEventLen), true},
		{"too long", strings.Repeat("e", MaxEventLen+1), false},
		{"CR", "a\rb", false},
		{"LF", "a\nb", false},
		{"CRLF", "a\r\nb", false},
		{"NUL", "a\x00", false},
		{"DEL", "a\x7f", false},
		{"NEL", "a\u0085", false},
		{"non-UTF-8", "a\xff", false},
	}
	for _, tt := range tests {
		err := ValidateEvent(tt.in)
		if tt.valid && err != nil {
			t.Errorf("%s: ValidateEvent(%q) = %v, want nil", tt.name, tt.in, err)
		}
		if !tt.valid && !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: ValidateEvent(%q) = %v, want ErrInvalidEvent", tt.name, tt.in, err)
		}
	}
}

func FuzzValidateChannel(f *testing.F) {
	for _, s := range []string{"news", "a:b/c-d_e.f@g", "新闻", "", "a b", "$", "\xff", "a\u2028", strings.Repeat("a", 201)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateChannel(s); err != nil {
			if !errors.Is(err, ErrInvalidChannel) {
				t.Fatalf("ValidateChannel(%q) = %v, does not wrap ErrInvalidChannel", s, err)
			}
			return
		}
		if s == "" || len(s) > MaxChannelLen {
			t.Fatalf("accepted %q of length %d", s, len(s))
		}
		if !utf8.ValidString(s) {
			t.Fatalf("accepted non-UTF-8 %q", s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] <= ' ' || s[i] == 0x7f || s[i] == '$' {
				t.Fatalf("accepted %q with byte %#x at %d", s, s[i], i)
			}
		}
		if strings.ContainsAny(s, "\u0085\u2028\u2029") {
			t.Fatalf("accepted %q holding a Unicode line break", s)
		}
	})
}

func FuzzValidateEvent(f *testing.F) {
	for _, s := range []string{"", "myEve", "a\r", "a\n", "\xff", strings.Repeat("e", 201)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateEvent(s); err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("ValidateEvent(%q) = %v, does not wrap ErrInvalidEvent", s, err)
			}
			return
		}
		if len(s) > MaxEventLen || !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n\x00") || strings.HasPrefix(s, "push.") {
			t.Fatalf("accepted event name %q", s)
		}
	})
}
