package attribution_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/demo"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/metrics"
)

// randomLog makes a log of n events over a few tenants, accounts and
// resources, with many equal times, references to objects that do not exist
// and repeated ids, so that every path of the engine is taken, refusals
// included.
func randomLog(seed uint64, n int) []*event.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	kinds := []string{"canvas_app", "canvas_app", "flow", "pages_site", "model_driven_app", "ci_instance", "bot"}
	var events []*event.Event
	add := func(ev event.Event) {
		ev.Line = len(events) + 1
		events = append(events, &ev)
	}
	add(event.Event{Type: event.PartnerRegistered, Time: base, Org: "100001", Name: "A", Locations: []string{"100011", "100012"}, Segment: event.SMB})
	add(event.Event{Type: event.PartnerRegistered, Time: base, Org: "200001", Name: "B", Locations: []string{"200011"}, Segment: event.Enterprise})
	for range n {
		// Times fall on a coarse grid over two months: many ties.
		at := base.Add(time.Duration(rng.IntN(60*4)) * 6 * time.Hour)
		tenant := pick("t1", "t2")
		acct := pick("a1", "a2", "a3", "a4")
		res := pick("r1", "r2", "r3", "r4", "r5")
		ev := event.Event{Time: at, Tenant: tenant}
		if rng.IntN(10) == 0 {
			ev.ID = fmt.Sprintf("id-%d", rng.IntN(20))
		}
		switch r := rng.IntN(100); {
		case r < 8:
			ev.Type, ev.Account, ev.Kind = event.AccountCreated, acct, event.AccountGuest
		case r < 16:
			ev.Type, ev.Account, ev.Partner = event.PalLinked, acct, pick("100011", "100012", "200011", "100001", "999999")
		case r < 18:
			ev.Type, ev.Account = event.PalRemoved, acct
		case r < 22:
			ev.Type, ev.Environment, ev.EnvType = event.EnvironmentCreated, pick("e1", "e2"), pick(event.Production, event.Sandbox)
		case r < 24:
			ev.Type, ev.Environment, ev.EnvType = event.EnvironmentChanged, pick("e1", "e2"), pick(event.Production, event.Sandbox)
		case r < 32:
			ev.Type, ev.Environment, ev.Resource, ev.Kind, ev.Owner = event.ResourceCreated, pick("e1", "e2"), res, kinds[rng.IntN(len(kinds))], acct
		case r < 36:
			ev.Type, ev.Resource, ev.Owner = event.ResourceOwnerChange, res, acct
		case r < 42:
			ev.Type, ev.Resource, ev.Account = event.ResourceCoownerAdd, res, acct
		case r < 44:
			ev.Type, ev.Resource, ev.Account = event.ResourceCoownerDel, res, acct
		case r < 50:
			ev.Type, ev.Resource, ev.Account, ev.Action = event.ResourceActivity, res, acct, "edit"
		case r < 52:
			ev.Type, ev.Account = pick(event.AccountDisabled, event.AccountEnabled), acct
		case r < 53:
			ev.Type, ev.Account = event.AccountDeleted, acct
		case r < 54:
			ev.Type, ev.Resource = event.ResourceDeleted, res
		case r < 55:
			ev.Type, ev.Environment, ev.Account = event.SolutionImported, pick("e1", "e2"), acct
			ev.Resources = []event.SolutionResource{{Resource: res, Kind: kinds[rng.IntN(len(kinds))]}}
		case r < 56:
			ev = event.Event{Type: event.PartnerRegistered, Time: at, Org: "100001", Name: "A", Segment: event.SMB,
				Locations: [][]string{{"100011"}, {"100011", "100012"}, {"100012"}}[rng.IntN(3)]}
		case r < 60:
			ev.Type, ev.Resource, ev.Count = event.Profiles, res, int64(rng.IntN(1000))
		default:
			ev.Type, ev.Resource, ev.User = event.Usage, res, fmt.Sprintf("u%d", rng.IntN(30))
		}
		add(ev)
	}
	return events
}

// outcome is everything the engine answers after a whole log.
type outcome struct {
	Attribution []attribution.Row
	Timeline    map[attribution.ResourceKey][]attribution.Interval
	Refused     []int
	Duplicates  int
	Reports     []metrics.Monthly
}

func fold(events []*event.Event, opts attribution.Options) outcome {
	return foldInTwo(nil, events, opts, -1)
}

// foldInTwo folds the events in time order; at index split (when not -1)
// it snapshots the engine and the metrics and goes on with restored ones.
func foldInTwo(t testing.TB, events []*event.Event, opts attribution.Options, split int) outcome {
	events = slices.Clone(events)
	attribution.Sort(events)
	e := attribution.New(opts)
	agg := metrics.NewAggregator()
	var o outcome
	for i, ev := range events {
		if i == split {
			data, err := e.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if e, err = attribution.Restore(data); err != nil {
				t.Fatal(err)
			}
			if data, err = agg.Snapshot(); err != nil {
				t.Fatal(err)
			}
			if agg, err = metrics.RestoreAggregator(data); err != nil {
				t.Fatal(err)
			}
		}
		res := e.Apply(ev)
		switch res.Outcome {
		case attribution.Refused:
			o.Refused = append(o.Refused, res.Refusal.Line)
		case attribution.Duplicate:
			o.Duplicates++
		case attribution.Applied:
			agg.Record(ev, res)
		}
	}
	slices.Sort(o.Refused)
	o.Attribution = e.Attribution()
	o.Timeline = make(map[attribution.ResourceKey][]attribution.Interval)
	e.Timeline(func(k attribution.ResourceKey, h []attribution.Interval) bool {
		o.Timeline[k] = h
		return true
	})
	seg := func(org, month string) string { return e.Segment(org, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) }
	for _, m := range []string{"2026-01", "2026-02", "2026-03"} {
		o.Reports = append(o.Reports, agg.Report(metrics.DefaultConfig(), m, seg))
	}
	return o
}

// shuffleKeepingTies returns the events in a random order in which events of
// equal time keep their relative order.
func shuffleKeepingTies(rng *rand.Rand, events []*event.Event) []*event.Event {
	out := slices.Clone(events)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	byTime := make(map[time.Time][]*event.Event)
	for _, ev := range events {
		byTime[ev.Time] = append(byTime[ev.Time], ev)
	}
	next := make(map[time.Time]int)
	for i, ev := range out {
		out[i] = byTime[ev.Time][next[ev.Time]]
		next[ev.Time]++
	}
	return out
}

func demoEvents(t testing.TB) []*event.Event {
	var buf bytes.Buffer
	if err := demo.Write(&buf, 1); err != nil {
		t.Fatal(err)
	}
	var events []*event.Event
	r := event.NewReader(&buf)
	for {
		ev, rf, err := r.Next()
		if err != nil {
			return events
		}
		if rf != nil {
			t.Fatalf("demo line refused: %v", rf)
		}
		events = append(events, ev)
	}
}

// eachLogAndPolicy calls fn with the demo log and random logs under every
// policy, and the one-pass answers of each.
func eachLogAndPolicy(t *testing.T, randomLogs uint64, fn func(t *testing.T, name string, events []*event.Event, opts attribution.Options, want outcome)) {
	logs := map[string][]*event.Event{"demo": demoEvents(t)}
	for seed := range randomLogs {
		logs[fmt.Sprintf("random-%d", seed)] = randomLog(seed, 600)
	}
	for name, events := range logs {
		for _, policy := range []attribution.Policy{attribution.Latest, attribution.First, attribution.Split} {
			t.Run(fmt.Sprintf("%s/%s", name, policy), func(t *testing.T) {
				opts := attribution.DefaultOptions()
				opts.Policy = policy
				fn(t, name, events, opts, fold(events, opts))
			})
		}
	}
}

func TestAnyOrderGivesTheSameAnswers(t *testing.T) {
	eachLogAndPolicy(t, 6, func(t *testing.T, name string, events []*event.Event, opts attribution.Options, want outcome) {
		if len(want.Attribution) == 0 {
			t.Fatal("the log credits nothing: the test would prove nothing")
		}
		rng := rand.New(rand.NewPCG(uint64(len(name)), 99))
		for i := range 5 {
			got := fold(shuffleKeepingTies(rng, events), opts)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("shuffle %d changed the answers (-in order +shuffled):\n%s", i, diff)
			}
		}
	})
}

func TestTwoHalvesGiveTheSameState(t *testing.T) {
	eachLogAndPolicy(t, 4, func(t *testing.T, _ string, events []*event.Event, opts attribution.Options, want outcome) {
		for _, split := range []int{0, len(events) / 3, len(events) / 2, len(events) - 1} {
			got := foldInTwo(t, events, opts, split)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("folding in two at event %d differs from one pass (-one +two):\n%s", split, diff)
			}
		}
	})
}

func TestRestoreRefusesGarbage(t *testing.T) {
	if _, err := attribution.Restore([]byte("not a snapshot")); err == nil {
		t.Fatal("Restore accepted garbage")
	}
}

func TestRandomLogsReachEveryOutcome(t *testing.T) {
	codes := make(map[event.Code]bool)
	dups := 0
	for seed := range uint64(6) {
		events := randomLog(seed, 600)
		attribution.Sort(events)
		e := attribution.New(attribution.DefaultOptions())
		for _, ev := range events {
			res := e.Apply(ev)
			if res.Outcome == attribution.Refused {
				codes[res.Refusal.Code] = true
			}
			if res.Outcome == attribution.Duplicate {
				dups++
			}
		}
	}
	for _, c := range []event.Code{event.UnknownTenantObject, event.AlreadyExists, event.NotCoowner, event.NoLink,
		event.CoownerNotSupported, event.GlobalPartnerID, event.UnknownPartnerID, event.InvalidKind} {
		if !codes[c] {
			t.Errorf("no random log was refused with %s; the property test misses that path", c)
		}
	}
	if dups == 0 {
		t.Error("no random log had a duplicate id")
	}
}

func BenchmarkEngine(b *testing.B) {
	events := demoEvents(b)
	b.ReportAllocs()
	for b.Loop() {
		e := attribution.New(attribution.DefaultOptions())
		for _, ev := range events {
			if res := e.Apply(ev); res.Outcome != attribution.Applied {
				b.Fatalf("line %d: %v", ev.Line, res.Refusal)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// TestLateUsageIsCreditedAsInOrder folds the control events first and
// applies every usage and profiles event afterwards, late, through
// ApplyLate: the refusals and the monthly reports are those of the fold in
// time order.
func TestLateUsageIsCreditedAsInOrder(t *testing.T) {
	eachLogAndPolicy(t, 4, func(t *testing.T, _ string, events []*event.Event, opts attribution.Options, _ outcome) {
		// Ids shared between usage and control events would make a late
		// usage wait for its place; that path is the service's refold.
		var plain []*event.Event
		for _, ev := range events {
			c := *ev
			if c.Type == event.Usage || c.Type == event.Profiles {
				c.ID = ""
			}
			plain = append(plain, &c)
		}
		// A late event comes after every event of its time.
		isUse := func(ev *event.Event) int {
			if ev.Type == event.Usage || ev.Type == event.Profiles {
				return 1
			}
			return 0
		}
		slices.SortStableFunc(plain, func(a, b *event.Event) int { return isUse(a) - isUse(b) })
		attribution.Sort(plain)
		want := fold(plain, opts)

		sorted := slices.Clone(plain)
		attribution.Sort(sorted)
		e := attribution.New(opts)
		agg := metrics.NewAggregator()
		var held []*event.Event
		var refused []int
		for _, ev := range sorted {
			if ev.Type == event.Usage || ev.Type == event.Profiles {
				held = append(held, ev)
				continue
			}
			if res := e.Apply(ev); res.Outcome == attribution.Refused {
				refused = append(refused, ev.Line)
			}
		}
		for _, ev := range held {
			res, ok := e.ApplyLate(ev)
			if !ok {
				t.Fatalf("ApplyLate declined line %d", ev.Line)
			}
			if res.Outcome == attribution.Refused {
				refused = append(refused, ev.Line)
			}
			agg.Record(ev, res)
		}
		slices.Sort(refused)
		if diff := cmp.Diff(want.Refused, refused); diff != "" {
			t.Errorf("refused lines (-in order +late):\n%s", diff)
		}
		seg := func(org, month string) string { return e.Segment(org, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) }
		for i, m := range []string{"2026-01", "2026-02", "2026-03"} {
			if diff := cmp.Diff(want.Reports[i], agg.Report(metrics.DefaultConfig(), m, seg)); diff != "" {
				t.Errorf("report %s (-in order +late):\n%s", m, diff)
			}
		}
	})
}
