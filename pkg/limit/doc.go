// Package limit bounds what one client may take from a node: connections
// per client address (behind trusted proxies, the address they forward)
// and publishes per second per credential.
package limit
