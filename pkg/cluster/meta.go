package cluster

import (
	"encoding/json"
	"errors"
	"time"
)

// metaVersion is the version of meta this member writes. Version 1 (the
// field absent) counted connections in s and w only; version 2 adds c, a
// count per transport name, and still writes s and w, so that members of
// either version read each other during a rolling upgrade: a version-1
// member sees the SSE and WebSocket counts, and misses only the
// transports it does not know.
const metaVersion = 2

// meta is what a member gossips about itself. It must fit memberlist's
// 512-byte metadata limit, so its keys are short.
type meta struct {
	Format  int    `json:"m,omitempty"` // metaVersion; 0 for version 1
	HTTP    string `json:"h,omitempty"`
	Version string `json:"v,omitempty"`
	// Conns counts connections by transport name (version 2).
	Conns map[string]int `json:"c,omitempty"`
	SSE   int            `json:"s"` // Conns["sse"], for version-1 readers
	WS    int            `json:"w"` // Conns["ws"], for version-1 readers
	Subs  int            `json:"u"`
	// Draining and Leaving say the member is going.
	Draining bool  `json:"d,omitempty"`
	Leaving  bool  `json:"l,omitempty"`
	Started  int64 `json:"t"` // Unix milliseconds
	// Seq changes on every update, so that peers see a member that still
	// gossips (memberlist reports only changed metadata).
	Seq uint64 `json:"q"`
	// Every is the member's update interval in milliseconds: peers call it
	// suspect after three of its own intervals without news.
	Every int64 `json:"i,omitempty"`
	// Auth says the member authenticates its callers (see
	// Config.AuthRequired); members without it, older ones included, are
	// taken to let anyone in.
	Auth bool `json:"a,omitempty"`
}

// conns returns the member's counts by transport, from a version-1
// member's s and w where it gave no map.
func (m *meta) conns() Conns {
	if m.Conns != nil {
		return Conns(m.Conns)
	}
	return Conns{"sse": m.SSE, "ws": m.WS}
}

var errMetaTooLarge = errors.New("cluster: metadata over memberlist's limit")

func (m *meta) encode(limit int) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, errMetaTooLarge
	}
	return b, nil
}

func decodeMeta(b []byte) (meta, error) {
	var m meta
	err := json.Unmarshal(b, &m)
	return m, err
}

func (m *meta) started() time.Time {
	if m.Started == 0 {
		return time.Time{}
	}
	return time.UnixMilli(m.Started).UTC()
}
