//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing here: no kernel kills a child with its
// parent, and a tool that is killed leaves its children to be stopped by
// hand.
func dieWithParent(*exec.Cmd) {}
