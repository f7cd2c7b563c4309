// Package protocol is everything a client and a node must agree on, and
// nothing else: stream entry IDs and the multi-channel cursor built from
// them, valid channel and event names (push.* is the node's own), the
// WebSocket frames both ways and the long poll's answer built from them,
// error and close codes, the publish body and its validation, event-stream
// encoding and a WHATWG event-stream parser.
//
// It imports nothing of the node, so clients (pkg/client, the load tool,
// the tests, a program of yours) speak the protocol with the very types
// and functions the node uses. docs/PROTOCOL.md is its prose.
package protocol
