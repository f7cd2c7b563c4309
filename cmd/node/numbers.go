package main

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// numberRule says which values of a numeric flag mean nothing, so that a
// typo is refused with a message instead of taken silently for a default.
type numberRule struct {
	// zero, when set, refuses 0 with this explanation.
	zero string
	// negative, when set, refuses values below 0 with this explanation.
	negative string
	// check, when set, refuses what it returns a message for.
	check func(v float64) string
}

const (
	mustBePositive = "must be positive"
)

// numberRules covers every numeric flag; a flag missing here fails
// TestEveryNumericFlagHasARule.
var numberRules = map[string]numberRule{
	"max-len":                {zero: "0 is no bound: give a positive number of entries, or a negative one for no trimming"},
	"max-age":                {negative: "must not be negative (0: no age bound)"},
	"channel-ttl":            {zero: "0 is no lifetime: give a positive duration, or a negative one for streams that never expire"},
	"idempotency-window":     {zero: mustBePositive, negative: mustBePositive},
	"vacate-delay":           {zero: mustBePositive, negative: mustBePositive},
	"webhook-retry-for":      {zero: mustBePositive, negative: mustBePositive},
	"retry":                  {zero: mustBePositive, negative: mustBePositive},
	"heartbeat":              {zero: mustBePositive, negative: mustBePositive},
	"queue-bytes":            {zero: mustBePositive, negative: mustBePositive},
	"max-payload":            {zero: mustBePositive, negative: mustBePositive},
	"max-channels":           {zero: mustBePositive, negative: mustBePositive},
	"idle-timeout":           {zero: mustBePositive, negative: mustBePositive},
	"read-timeout":           {zero: mustBePositive, negative: mustBePositive},
	"read-header-timeout":    {zero: mustBePositive, negative: mustBePositive},
	"max-header-bytes":       {zero: mustBePositive, negative: mustBePositive},
	"ticket-ttl":             {zero: mustBePositive, negative: mustBePositive},
	"hook-timeout":           {zero: mustBePositive, negative: mustBePositive},
	"hook-max-concurrent":    {zero: mustBePositive, negative: mustBePositive},
	"max-connections":        {negative: "must not be negative (0: what the open-file limit allows)"},
	"fanout-workers":         {negative: "must not be negative (0: one per CPU)"},
	"replay-cache-bytes":     {}, // 0 or negative: keep nothing
	"drain-timeout":          {zero: mustBePositive, negative: mustBePositive},
	"rebalance-factor":       {negative: "must not be negative (0: rebalancing off)", check: factorAtLeastOne},
	"rebalance-after":        {zero: mustBePositive, negative: mustBePositive},
	"rebalance-rate":         {zero: mustBePositive, negative: mustBePositive, check: atMostOne},
	"max-connections-per-ip": {negative: "must not be negative (0: no bound)"},
	"conn-publish-rate":      {negative: "must not be negative (0: no bound)"},
	"key-publish-rate":       {negative: "must not be negative (0: no bound)"},
	"isolation-timeout":      {negative: "must not be negative (0: never)"},
}

func factorAtLeastOne(v float64) string {
	if v > 0 && v < 1 {
		return "must be 1 or more (or 0: off): below 1 every node is always over the mean"
	}
	return ""
}

func atMostOne(v float64) string {
	if v > 1 {
		return "is a fraction of the node's connections per second: at most 1"
	}
	return ""
}

// checkNumbers reports every numeric flag whose value its rule refuses.
func checkNumbers(fs *flag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := numberOf(f)
		if !ok {
			return
		}
		r := numberRules[f.Name]
		msg := ""
		switch {
		case v == 0 && r.zero != "":
			msg = r.zero
		case v < 0 && r.negative != "":
			msg = r.negative
		case r.check != nil:
			msg = r.check(v)
		}
		if msg != "" {
			errs = append(errs, fmt.Errorf("-%s %s: %s", f.Name, f.Value, msg))
		}
	})
	return errors.Join(errs...)
}

// numberOf returns a numeric flag's value, or false for other flags.
func numberOf(f *flag.Flag) (float64, bool) {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return 0, false
	}
	switch v := g.Get().(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	case time.Duration:
		return float64(v), true
	}
	return 0, false
}
