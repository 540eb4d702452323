package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
)

// tally counts what became of a log's events.
type tally struct {
	Events     int              `json:"events"`
	Applied    int              `json:"applied"`
	Duplicates int              `json:"duplicates"`
	Refused    []*event.Refusal `json:"refused"`
}

// replay is one pass over a log.
type replay struct {
	// onAt is called once every event up to at is applied and before any
	// later one; with at nil, once the whole log is applied.
	at   *time.Time
	onAt func(e *attribution.Engine)
	// onResult is called after each event is applied, refused or skipped.
	onResult func(ev *event.Event, res attribution.Result)
}

// run reads the log named by path, applies it in time order to a new engine
// with opts, and returns the engine and the tally. It fails only when the
// log cannot be read; refused events are in the tally.
func (r replay) run(ctx context.Context, env *Env, path string, opts attribution.Options) (*attribution.Engine, tally, error) {
	var t tally
	f, err := env.open(path)
	if err != nil {
		return nil, t, err
	}
	defer f.Close()
	var events []*event.Event
	rd := event.NewReader(f)
	for {
		ev, rf, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, t, fmt.Errorf("%s: %w", path, err)
		}
		t.Events++
		if rf != nil {
			t.Refused = append(t.Refused, rf)
			continue
		}
		events = append(events, ev)
	}
	attribution.Sort(events)
	e := attribution.New(opts)
	reached := false
	for i, ev := range events {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, t, err
			}
		}
		if r.onAt != nil && !reached && r.at != nil && ev.Time.After(*r.at) {
			r.onAt(e)
			reached = true
		}
		res := e.Apply(ev)
		switch res.Outcome {
		case attribution.Applied:
			t.Applied++
		case attribution.Duplicate:
			t.Duplicates++
		case attribution.Refused:
			t.Refused = append(t.Refused, res.Refusal)
		}
		if r.onResult != nil {
			r.onResult(ev, res)
		}
	}
	if r.onAt != nil && !reached {
		r.onAt(e)
	}
	slices.SortFunc(t.Refused, func(a, b *event.Refusal) int { return a.Line - b.Line })
	if t.Refused == nil {
		t.Refused = []*event.Refusal{}
	}
	return e, t, nil
}

// maxRefusalsShown is how many refusals a command other than check prints.
const maxRefusalsShown = 5

// reportRefusals prints the count of refused events and the first few on
// standard error, and returns errRefused when strict and any was refused.
func reportRefusals(env *Env, t tally, strict bool) error {
	n := len(t.Refused)
	if n == 0 {
		return nil
	}
	shown := min(n, maxRefusalsShown)
	fmt.Fprintf(env.Stderr, "pal: %d of %d events refused", n, t.Events)
	if n > shown {
		fmt.Fprintf(env.Stderr, "; the first %d (pal check lists them all):\n", shown)
	} else {
		fmt.Fprintln(env.Stderr, ":")
	}
	for _, rf := range t.Refused[:shown] {
		fmt.Fprintf(env.Stderr, "  %s\n", rf.Error())
	}
	if strict {
		return errRefused
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}
