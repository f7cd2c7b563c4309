// Package store owns the Redis streams that are the log of every channel:
// channel names and their keys, entry IDs, publishing, reading from a cursor
// with gap detection, and the doorbell that says which channel moved.
//
// A channel C is the stream <prefix>C. An entry's field "data" is the payload
// and the optional field "event" its event name, so a plain
// XADD push:news * event myEve data hello is a publish.
package store
