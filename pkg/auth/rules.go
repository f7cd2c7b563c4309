package auth

import "strings"

// PresenceSuffix names a channel's presence stream; reading it follows the
// rule of the channel it belongs to.
const PresenceSuffix = ".presence"

// UserSeparator splits a user channel's name from its owner: the channel
// "inbox#alice" is readable only by the principal whose subject is alice,
// whatever its claims say otherwise.
const UserSeparator = "#"

// Patterns is a list of channel patterns from a token's claims. A pattern
// is an exact channel name, or a prefix followed by a trailing '*' ("news.*"
// matches "news.sport"; "*" alone matches every channel). '*' anywhere
// else is an ordinary character, so no channel name is ever a pattern by
// accident of its spelling beyond that.
type Patterns []string

// Match reports whether channel matches one of the patterns.
func (ps Patterns) Match(channel string) bool {
	for _, p := range ps {
		if p == channel {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(channel, prefix) {
			return true
		}
	}
	return false
}

// Owner returns the user a user channel belongs to: what follows its last
// '#'. ok is false for a channel that is not a user channel. A presence
// stream's owner is its channel's.
func Owner(channel string) (user string, ok bool) {
	channel = strings.TrimSuffix(channel, PresenceSuffix)
	i := strings.LastIndex(channel, UserSeparator)
	if i < 0 {
		return "", false
	}
	return channel[i+len(UserSeparator):], true
}
