package cluster

import (
	"encoding/json"
	"errors"
	"time"
)

// meta is what a member gossips about itself. It must fit memberlist's
// 512-byte metadata limit, so its keys are short.
type meta struct {
	HTTP     string `json:"h,omitempty"`
	Version  string `json:"v,omitempty"`
	SSE      int    `json:"s"`
	WS       int    `json:"w"`
	Subs     int    `json:"u"`
	Draining bool   `json:"d,omitempty"`
	Leaving  bool   `json:"l,omitempty"`
	Started  int64  `json:"t"` // Unix milliseconds
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
