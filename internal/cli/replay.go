package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/usage"
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

// run reads the log that f names, applies it in time order to a new engine
// with opts, then the records of f's consumption file, and returns the
// engine and the tally. It fails only when a file cannot be read; refused
// events are in the tally.
func (r replay) run(ctx context.Context, env *Env, lf logFlags, opts attribution.Options) (*attribution.Engine, tally, error) {
	var t tally
	path := lf.log
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
	events, dups := attribution.Order(events)
	t.Duplicates = len(dups)
	if r.onResult != nil {
		for _, ev := range dups {
			r.onResult(ev, attribution.Result{Outcome: attribution.Duplicate})
		}
	}
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
		case attribution.Refused:
			t.Refused = append(t.Refused, res.Refusal)
		}
		if r.onResult != nil {
			r.onResult(ev, res)
		}
	}
	if lf.consumption != "" {
		if err := readConsumption(ctx, env, lf.consumption, e, &t); err != nil {
			return nil, t, err
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

// readUsage credits the usage events of a file of their own (Parquet, or
// NDJSON) after the log: each by the credit its resource had at its time,
// after every event of the log of that time. Both cores work, each on its
// own share of the file's row groups. Refused rows go into the tally.
func readUsage(ctx context.Context, env *Env, path string, e *attribution.Engine, agg *metrics.Aggregator, t *tally) error {
	f, err := env.open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var mu sync.Mutex
	var rows, rowsRefused, linesRefused int
	// A refusal names the usage file: its line or row number is the file's.
	note := func(rf *event.Refusal) {
		rf.Message = "in " + path + ": " + rf.Message
		t.Refused = append(t.Refused, rf)
	}
	refuse := func(rf *event.Refusal) {
		mu.Lock()
		rowsRefused++
		note(rf)
		mu.Unlock()
	}
	count := func(b *usage.Batch) {
		mu.Lock()
		rows += b.Len()
		mu.Unlock()
	}
	if ra, ok := f.(interface {
		io.ReaderAt
		Stat() (os.FileInfo, error)
	}); ok && isParquet(ra) {
		st, err := ra.Stat()
		if err != nil {
			return err
		}
		workers := runtime.GOMAXPROCS(0)
		forks := make([]*metrics.Aggregator, workers)
		for i := range forks {
			forks[i] = agg.Fork()
		}
		err = usage.ReadParquet(ctx, ra, st.Size(), workers, func(w int, b *usage.Batch) error {
			count(b)
			forks[w].UsageBatch(e, b, refuse)
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, fk := range forks {
			agg.Merge(fk)
		}
	} else {
		in := bufio.NewReader(f)
		if magic, _ := in.Peek(4); string(magic) == "PAR1" {
			return usagef("--usage %s: a Parquet file is read from a file, not from standard input", path)
		}
		notUsage := func(rf *event.Refusal) {
			linesRefused++
			note(rf)
		}
		err := usage.ReadNDJSON(in, 1<<16, notUsage, func(b *usage.Batch) error {
			count(b)
			agg.UsageBatch(e, b, refuse)
			return ctx.Err()
		})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	t.Events += rows + linesRefused
	t.Applied += rows - rowsRefused
	slices.SortFunc(t.Refused, func(a, b *event.Refusal) int { return a.Line - b.Line })
	return nil
}

func isParquet(r io.ReaderAt) bool {
	magic := make([]byte, 4)
	_, err := r.ReadAt(magic, 0)
	return err == nil && string(magic) == "PAR1"
}

// readConsumption applies the records of a consumption file (Parquet, or
// NDJSON objects with the fields of azure.consumption) after the log, in
// file order, as reported at the log's last instant: a record replaces the
// log's record of the same resource, day and meter, and an earlier one of
// the file. Refused records go into the tally, with their row or line.
func readConsumption(ctx context.Context, env *Env, path string, e *attribution.Engine, t *tally) error {
	f, err := env.open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	at := e.Now()
	cr := event.NewConsumptionReader()
	apply := func(ev *event.Event, rf *event.Refusal) {
		t.Events++
		if rf == nil {
			res := e.Apply(ev)
			rf = res.Refusal
		}
		if rf != nil {
			rf.Message = "in " + path + ": " + rf.Message
			t.Refused = append(t.Refused, rf)
			return
		}
		t.Applied++
	}
	if ra, ok := f.(interface {
		io.ReaderAt
		Stat() (os.FileInfo, error)
	}); ok && isParquet(ra) {
		st, err := ra.Stat()
		if err != nil {
			return err
		}
		err = usage.ReadConsumption(ra, st.Size(), func(row int, c usage.Consumption) error {
			apply(cr.Event(row, at, c.Tenant, c.Resource, c.Date, strconv.FormatFloat(c.Cost, 'f', -1, 64), c.Meter))
			if row%4096 == 0 {
				return ctx.Err()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	in := bufio.NewReader(f)
	if magic, _ := in.Peek(4); string(magic) == "PAR1" {
		return usagef("--consumption %s: a Parquet file is read from a file, not from standard input", path)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), event.MaxLineBytes)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec struct {
			Tenant, Resource, Date, Meter string
			Cost                          json.RawMessage
		}
		if err := json.Unmarshal(text, &rec); err != nil {
			apply(nil, &event.Refusal{Line: line, Type: event.AzureConsumption, Code: event.Malformed,
				Message: "the line is not a consumption record: write one JSON object a line with tenant, resource, date, cost and meter"})
			continue
		}
		apply(cr.Event(line, at, rec.Tenant, rec.Resource, rec.Date, string(rec.Cost), rec.Meter))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
