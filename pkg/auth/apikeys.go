package auth

import (
	"crypto/sha256"
	"crypto/subtle"
)

// apiKeys holds the digests of the configured API keys. Several keys allow
// rotation: add the new one, move clients over, remove the old one.
type apiKeys [][sha256.Size]byte

func newAPIKeys(keys []string) apiKeys {
	out := make(apiKeys, 0, len(keys))
	for _, k := range keys {
		out = append(out, sha256.Sum256([]byte(k)))
	}
	return out
}

// match returns the position (from 1) of the key presented, or 0. It
// compares digests in constant time and always looks at every key, so
// neither the length nor the content of a key leaks through timing.
func (ks apiKeys) match(presented string) int {
	sum := sha256.Sum256([]byte(presented))
	found := 0
	for i := range ks {
		if subtle.ConstantTimeCompare(sum[:], ks[i][:]) == 1 {
			found = i + 1
		}
	}
	return found
}
