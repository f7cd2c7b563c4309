//go:build !unix

package redisproc

import "errors"

var errNoSignals = errors.New("redisproc: no SIGSTOP here")

// Pause is not possible without signals.
func (s *Server) Pause() error { return errNoSignals }

// Resume is not possible without signals.
func (s *Server) Resume() error { return errNoSignals }
