package fold

import (
	"context"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
)

// Hooks hear a replay as it goes.
type Hooks struct {
	// Before, when set, is called before each event that applies is
	// applied, with the engine as the events before it left it.
	Before func(ev *event.Event)
	// After, when set, is called with each event's result once it is
	// applied or refused, and with each duplicate (Outcome Duplicate).
	After func(ev *event.Event, res attribution.Result)
}

// Replay applies a log, given in log order, to e in the order in which it
// applies (Order). It stops only when ctx is done.
func Replay(ctx context.Context, e *attribution.Engine, log []*event.Event, h Hooks) error {
	events, dups := Order(log)
	if h.After != nil {
		for _, ev := range dups {
			h.After(ev, attribution.Result{Outcome: attribution.Duplicate})
		}
	}
	for i, ev := range events {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if h.Before != nil {
			h.Before(ev)
		}
		res := e.Apply(ev)
		if h.After != nil {
			h.After(ev, res)
		}
	}
	return nil
}

// Events is the engine that a log, given in log order, leaves behind: what
// an import diffs against.
func Events(opts attribution.Options, log []*event.Event) *attribution.Engine {
	e := attribution.New(opts)
	Replay(context.Background(), e, log, Hooks{})
	return e
}
