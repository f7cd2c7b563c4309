//go:build !linux

package wire

import "syscall"

// PeerWindow reports nothing where the kernel's TCP_INFO is not read: the
// peer is judged by its pongs alone.
func PeerWindow(syscall.RawConn) (uint32, bool) { return 0, false }
