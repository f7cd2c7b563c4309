//go:build unix

package redisproc

import "syscall"

// Pause stops the server's process (SIGSTOP): it keeps its connections
// and answers nothing, as a Redis stuck or on the far side of a network
// that drops packets. Resume lets it go on.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }
