package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
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
	// onStart, when set, is called with the engine before any event.
	onStart func(e *attribution.Engine)
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
	f, err := env.open(lf.log)
	if err != nil {
		return nil, tally{}, err
	}
	defer f.Close()
	return r.fold(ctx, env, lf.log, f, lf, opts)
}

// fold folds a log read from in (named path in its errors).
func (r replay) fold(ctx context.Context, env *Env, path string, in io.Reader, lf logFlags, opts attribution.Options) (*attribution.Engine, tally, error) {
	var t tally
	var events []*event.Event
	err := event.NewReader(in).Each(func(ev *event.Event, rf *event.Refusal) error {
		t.Events++
		if rf != nil {
			t.Refused = append(t.Refused, rf)
			return nil
		}
		events = append(events, ev)
		return nil
	})
	if err != nil {
		return nil, t, fmt.Errorf("%s: %w", path, err)
	}
	e := attribution.New(opts)
	if r.onStart != nil {
		r.onStart(e)
	}
	reached := false
	hooks := fold.Hooks{After: func(ev *event.Event, res attribution.Result) {
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
	}}
	if r.onAt != nil && r.at != nil {
		hooks.Before = func(ev *event.Event) {
			if !reached && ev.Time.After(*r.at) {
				r.onAt(e)
				reached = true
			}
		}
	}
	if err := fold.Replay(ctx, e, events, hooks); err != nil {
		return nil, t, err
	}
	if lf.consumption != "" {
		if err := readConsumption(ctx, env, lf.consumption, lf.consumptionMonth, e, &t, nil); err != nil {
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

// maxRefusalsShown is how many refusals a command prints on standard
// error; pal check lists them all on standard output.
const maxRefusalsShown = 5

// reportRefusals prints the count of refused events and the first few on
// standard error, and returns errRefused when strict and any was refused.
func reportRefusals(env *Env, t tally, strict bool) error {
	return reportRefusalsListed(env, t, strict, "pal check lists them all")
}

// reportRefusalsListed is reportRefusals, saying where every refusal is
// listed.
func reportRefusalsListed(env *Env, t tally, strict bool, all string) error {
	n := len(t.Refused)
	if n == 0 {
		return nil
	}
	shown := min(n, maxRefusalsShown)
	fmt.Fprintf(env.Stderr, "pal: %d of %d events refused", n, t.Events)
	if n > shown {
		fmt.Fprintf(env.Stderr, "; the first %d (%s):\n", shown, all)
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
	f, err := openData(env, "usage", path)
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
	if f.parquet != nil {
		workers := runtime.GOMAXPROCS(0)
		forks := make([]*metrics.Aggregator, workers)
		for i := range forks {
			forks[i] = agg.Fork()
		}
		err = usage.ReadParquet(ctx, f.parquet, f.size, workers, func(w int, b *usage.Batch) error {
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
		notUsage := func(rf *event.Refusal) {
			linesRefused++
			note(rf)
		}
		err := usage.ReadNDJSON(f.lines, 1<<16, notUsage, func(b *usage.Batch) error {
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

// readConsumption applies the records of a consumption file (Parquet, or
// NDJSON objects with the fields of azure.consumption) after the log, in
// file order, as reported at the log's last instant: a record replaces the
// log's record of the same resource, day and meter, and an earlier one of
// the file. Refused records go into the tally, with their row or line.
//
// With sums, the good rows of a Parquet file (all but those whose cost is
// not exactly a decimal of nine places, which take the way of log lines)
// are summed in it rather than kept in the engine.
func readConsumption(ctx context.Context, env *Env, path, month string, e *attribution.Engine, t *tally, sums *azure.Month) error {
	f, err := openData(env, "consumption", path)
	if err != nil {
		return err
	}
	defer f.Close()
	at := e.Now()
	cr := event.NewConsumptionReader()
	// The days kept: all, or the month's.
	keep := func(int32) bool { return true }
	var first, last string
	if month != "" {
		m, _ := time.Parse("2006-01", month)
		first, last = m.Format(time.DateOnly), m.AddDate(0, 1, -1).Format(time.DateOnly)
		from, to := event.DayNumber(first), event.DayNumber(m.AddDate(0, 1, 0).Format(time.DateOnly))
		keep = func(day int32) bool { return day >= from && day < to }
	}
	apply := func(ev *event.Event, rf *event.Refusal) {
		t.Events++
		if rf == nil && !keep(event.DayNumber(ev.Date)) {
			return
		}
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
	if f.parquet != nil {
		read := readColumns(e, sums, cr, at, apply, keep, t)
		// The row groups of other months are not read: their rows are
		// neither kept nor counted.
		if err := usage.ReadConsumptionDays(ctx, f.parquet, f.size, first, last, read); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	sc := bufio.NewScanner(f.lines)
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

// readColumns returns the reader of a Parquet consumption file's batches.
// Without sums, or with sums of one part, the rows are read in file order.
// With sums in parts, the parts read every batch at once, a worker a core
// taking the next part's rows as it is free, and the rows to take as text
// are applied after, in file order.
func readColumns(e *attribution.Engine, sums *azure.Month, cr *event.ConsumptionReader, at time.Time,
	apply func(*event.Event, *event.Refusal), keep func(int32) bool, t *tally) func(*usage.ConsumptionBatch) error {
	asText := func(b *usage.ConsumptionBatch, i int) {
		line, tenant, resource, date, cost, m := b.Row(i)
		apply(cr.Event(line, at, tenant, resource, date, cost, m))
	}
	if sums == nil || sums.Parts() == 1 {
		cc := &consumptionColumns{e: e, sums: sums, at: at, keep: keep, inline: asText}
		var runs []rowRun
		return func(b *usage.ConsumptionBatch) error {
			runs = runs[:0]
			runsOf(b, func(r rowRun) { runs = append(runs, r) })
			cc.batch(b, runs)
			cc.count(t)
			return nil
		}
	}
	parts := make([]*consumptionColumns, sums.Parts())
	for i := range parts {
		parts[i] = &consumptionColumns{e: e, sums: sums, at: at, keep: keep}
	}
	units := make([][]rowRun, len(parts))
	var group int64
	var partOf []int // by tenant of the row group
	var text []int
	return func(b *usage.ConsumptionBatch) error {
		if b.Group != group || partOf == nil {
			group, partOf = b.Group, partOf[:0]
		}
		for k := len(partOf); k < b.Tenants.Len(); k++ {
			partOf = append(partOf, sums.PartOf(b.Tenants.String(int32(k))))
		}
		for p := range units {
			units[p] = units[p][:0]
		}
		runsOf(b, func(r rowRun) {
			p := partOf[b.Tenant[r.i]]
			units[p] = append(units[p], r)
		})
		var next atomic.Int32
		work := func() {
			for p := int(next.Add(1)) - 1; p < len(parts); p = int(next.Add(1)) - 1 {
				if len(units[p]) > 0 {
					parts[p].batch(b, units[p])
				}
			}
		}
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) - 1 {
			wg.Go(work)
		}
		work()
		wg.Wait()
		text = text[:0]
		for _, cc := range parts {
			cc.count(t)
			text = append(text, cc.text...)
			cc.text = cc.text[:0]
		}
		slices.Sort(text)
		for _, i := range text {
			asText(b, i)
		}
		return nil
	}
}

// rowRun is a batch's rows from i to j (excluded), of one tenant and
// resource: in a file sorted by resource, its rows follow each other, and
// a run shares their checks and their slot.
type rowRun struct{ i, j int }

// runsOf calls fn with each run of a batch, in order.
func runsOf(b *usage.ConsumptionBatch, fn func(rowRun)) {
	for i, n := 0, b.Len(); i < n; {
		t, r := b.Tenant[i], b.Resource[i]
		j := i + 1
		for j < n && b.Resource[j] == r && b.Tenant[j] == t {
			j++
		}
		fn(rowRun{i, j})
		i = j
	}
}

// consumptionColumns reads runs of the batches of a Parquet consumption
// file: with sums, of one part of the month's sums. A row group names each
// tenant, resource, date and meter once in its dictionaries, so each is
// checked once a row group, and the rows whose every field is known good
// go straight to their resource's records; any other row takes the way of
// a log line, which says what is wrong: at once with inline, else listed
// in text for the caller.
type consumptionColumns struct {
	e *attribution.Engine
	// sums, when set, sums the good rows of the month instead of the
	// engine keeping them.
	sums *azure.Month
	// at is when the engine keeps the rows as reported.
	at     time.Time
	keep   func(day int32) bool
	inline func(b *usage.ConsumptionBatch, i int)

	// events counts the rows read, applied those kept, since the caller
	// last took them; text lists the rows to take as text.
	events, applied int
	text            []int

	cols  usage.CostColumns
	group int64
	// A slot per (tenant, resource) of the row group. A resource's path
	// names one tenant's resource almost always: last holds, by resource,
	// the tenant and slot last seen with it.
	slots    map[[2]int32]int32
	slotList []costSlot
	last     []lastSlot
}

type lastSlot struct{ tenant, slot int32 }

// count adds the rows read and applied since it was last asked to t.
func (cc *consumptionColumns) count(t *tally) {
	t.Events, t.Applied = t.Events+cc.events, t.Applied+cc.applied
	cc.events, cc.applied = 0, 0
}

// costSlot is where a resource's records go: summed in the month, or kept
// by the engine.
type costSlot struct {
	month azure.MonthSlot
	kept  azure.ConsumptionSlot
}

func (cc *consumptionColumns) batch(b *usage.ConsumptionBatch, runs []rowRun) {
	if b.Group != cc.group || cc.slots == nil {
		cc.group = b.Group
		cc.slots = make(map[[2]int32]int32)
		cc.last, cc.slotList = cc.last[:0], cc.slotList[:0]
	}
	// A column without a dictionary grows one as its pages are read.
	for len(cc.last) < b.Resources.Len() {
		cc.last = append(cc.last, lastSlot{tenant: -1})
	}
	for _, rn := range runs {
		tenant, path := cc.cols.Resource(b, rn.i)
		var s *costSlot
		for i := rn.i; i < rn.j; i++ {
			day, meter, nanos, ok := cc.cols.DayCost(b, i)
			if !ok || tenant == "" || path == "" {
				if cc.inline != nil {
					cc.inline(b, i)
				} else {
					cc.text = append(cc.text, i)
				}
				continue
			}
			cc.events++
			if !cc.keep(day) {
				continue
			}
			if s == nil {
				s = cc.slot(b.Tenant[i], b.Resource[i], tenant, path)
			}
			if cc.sums != nil {
				s.month.Put(day, meter, nanos)
			} else {
				s.kept.Put(day, meter, nanos, "", cc.at)
			}
			cc.applied++
		}
	}
}

// slot returns where a (tenant, resource) of the row group goes.
func (cc *consumptionColumns) slot(tenant, resource int32, tenantID, path string) *costSlot {
	if l := cc.last[resource]; l.tenant == tenant {
		return &cc.slotList[l.slot]
	}
	k := [2]int32{tenant, resource}
	i, ok := cc.slots[k]
	if !ok {
		var s costSlot
		if cc.sums != nil {
			s.month = cc.sums.Slot(tenantID, path)
		} else {
			s.kept = cc.e.Azure().ConsumptionSlot(tenantID, path)
		}
		i = int32(len(cc.slotList))
		cc.slotList = append(cc.slotList, s)
		cc.slots[k] = i
	}
	cc.last[resource] = lastSlot{tenant, i}
	return &cc.slotList[i]
}
