// Package fdlimit lifts a process's open-file limit: every connection is a
// file descriptor, and soft limits often default to 1,024. Where there is
// no such limit (Windows), it reports none.
package fdlimit
