//go:build !unix

package fdlimit

// Raise reports no limit: the platform has no RLIMIT_NOFILE.
func Raise() (from, to uint64, err error) { return 0, 0, nil }

// Current reports no limit: the platform has no RLIMIT_NOFILE.
func Current() (uint64, error) { return 0, nil }
