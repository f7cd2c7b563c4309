package main

import (
	"fmt"

	"github.com/pushcluster/pushcluster/internal/fdlimit"
)

// raiseFileLimit raises RLIMIT_NOFILE to its hard limit, since every
// connection is a file, and says what it did.
func raiseFileLimit() (string, error) {
	from, to, err := fdlimit.Raise()
	if err != nil {
		return "", err
	}
	if from == to {
		return fmt.Sprintf("RLIMIT_NOFILE is %d, the hard limit (the Go runtime raised it at start)", to), nil
	}
	return fmt.Sprintf("raised RLIMIT_NOFILE from %d to the hard limit %d", from, to), nil
}

// fileLimit returns the current RLIMIT_NOFILE, 0 if unknown.
func fileLimit() uint64 {
	n, _ := fdlimit.Current()
	return n
}
