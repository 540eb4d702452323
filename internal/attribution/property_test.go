package attribution_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/demo"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
)

// outcome is everything the engine answers after a whole log.
type outcome struct {
	Attribution []attribution.Row
	Timeline    map[attribution.ResourceKey][]attribution.Interval
	// Refused holds each refusal as its type, code and message: a retried
	// line is the same fact wherever it stands in the log.
	Refused    []string
	Duplicates int
	Reports    []metrics.Monthly
	// Azure holds the Azure reports of three months and the Azure
	// timeline, as JSON: amounts are exact rationals inside.
	Azure []string
}

func replay(t testing.TB, events []*event.Event, opts attribution.Options) outcome {
	return foldInTwo(t, events, opts, -1)
}

// foldInTwo folds the events in time order; at index split (when not -1)
// it snapshots the engine and the metrics and goes on with restored ones.
func foldInTwo(t testing.TB, events []*event.Event, opts attribution.Options, split int) outcome {
	events, dups := fold.Order(events)
	e := attribution.New(opts)
	agg := metrics.NewAggregator()
	o := outcome{Duplicates: len(dups)}
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
			o.Refused = append(o.Refused, refusalKey(res.Refusal))
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
	o.Azure = azureAnswers(t, e)
	return o
}

// azureAnswers returns the engine's Azure reports for three months and its
// Azure timeline, as JSON.
func azureAnswers(t testing.TB, e *attribution.Engine) []string {
	var out []string
	for _, m := range []string{"2026-01", "2026-02", "2026-03"} {
		rep, err := e.Azure().Report(m)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
	e.Azure().Timeline(func(tenant, resource string, h []azure.Interval) bool {
		k := attribution.ResourceKey{Tenant: tenant, Resource: resource}
		data, _ := json.Marshal(h)
		out = append(out, k.Tenant+" "+k.Resource+" "+string(data))
		return true
	})
	return out
}

func refusalKey(rf *event.Refusal) string {
	return fmt.Sprintf("%s %s %s", rf.Type, rf.Code, rf.Message)
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

// eachLogAndPolicy calls fn with the demo log, random logs and random Azure
// logs under every policy, and the one-pass answers of each. The Azure
// policy goes with the policy: latest with latest, first with all, split
// with split.
func eachLogAndPolicy(t *testing.T, randomLogs uint64, fn func(t *testing.T, name string, events []*event.Event, opts attribution.Options, want outcome)) {
	logs := map[string][]*event.Event{"demo": demoEvents(t)}
	for seed := range randomLogs {
		logs[fmt.Sprintf("random-%d", seed)] = attributiontest.RandomLog(seed, 600)
		logs[fmt.Sprintf("azure-%d", seed)] = attributiontest.RandomAzureLog(seed, 600)
	}
	azure := map[attribution.Policy]azure.Policy{
		attribution.Latest: azure.Latest, attribution.First: azure.All, attribution.Split: azure.Split}
	for name, events := range logs {
		for _, policy := range []attribution.Policy{attribution.Latest, attribution.First, attribution.Split} {
			t.Run(fmt.Sprintf("%s/%s", name, policy), func(t *testing.T) {
				opts := attribution.DefaultOptions()
				opts.Policy, opts.Azure.Policy = policy, azure[policy]
				fn(t, name, events, opts, replay(t, events, opts))
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
			got := replay(t, attributiontest.ShuffleKeepingTies(rng, events), opts)
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
		events, duplicates := fold.Order(attributiontest.RandomLog(seed, 600))
		dups += len(duplicates)
		e := attribution.New(attribution.DefaultOptions())
		for _, ev := range events {
			if res := e.Apply(ev); res.Outcome == attribution.Refused {
				codes[res.Refusal.Code] = true
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
// applies every usage, profiles and consumption event afterwards, late and
// in any order, through ApplyLate: the refusals, the monthly reports and
// the Azure answers are those of the fold in time order.
func TestLateUsageIsCreditedAsInOrder(t *testing.T) {
	eachLogAndPolicy(t, 4, func(t *testing.T, _ string, events []*event.Event, opts attribution.Options, _ outcome) {
		plain, _ := fold.Order(events)
		// A late event comes after every event of its time.
		isUse := func(ev *event.Event) int {
			if ev.Type == event.Usage || ev.Type == event.Profiles || ev.Type == event.AzureConsumption {
				return 1
			}
			return 0
		}
		slices.SortStableFunc(plain, func(a, b *event.Event) int { return isUse(a) - isUse(b) })
		fold.Sort(plain)
		want := replay(t, plain, opts)

		e := attribution.New(opts)
		agg := metrics.NewAggregator()
		var held []*event.Event
		var refused []string
		for _, ev := range plain {
			if isUse(ev) == 1 {
				held = append(held, ev)
				continue
			}
			if res := e.Apply(ev); res.Outcome == attribution.Refused {
				refused = append(refused, refusalKey(res.Refusal))
			}
		}
		// Late events arrive in any order, ties kept.
		rng := rand.New(rand.NewPCG(uint64(len(held)), 5))
		for _, ev := range attributiontest.ShuffleKeepingTies(rng, held) {
			res, ok := e.ApplyLate(ev)
			if !ok {
				t.Fatalf("ApplyLate declined line %d", ev.Line)
			}
			if res.Outcome == attribution.Refused {
				refused = append(refused, refusalKey(res.Refusal))
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
		if diff := cmp.Diff(want.Azure, azureAnswers(t, e)); diff != "" {
			t.Errorf("Azure answers (-in order +late):\n%s", diff)
		}
	})
}

// TestAttributionAtReadsThePastFromTheHistory compares the attribution read
// from the credit history at instants of the log (event times, and between
// them) with the attribution of the log folded up to each instant.
func TestAttributionAtReadsThePastFromTheHistory(t *testing.T) {
	eachLogAndPolicy(t, 4, func(t *testing.T, _ string, events []*event.Event, opts attribution.Options, _ outcome) {
		ordered, _ := fold.Order(events)
		whole := attribution.New(opts)
		for _, ev := range ordered {
			whole.Apply(ev)
		}
		var instants []time.Time
		for i := 0; i < len(ordered); i += max(1, len(ordered)/40) {
			instants = append(instants, ordered[i].Time, ordered[i].Time.Add(time.Hour))
		}
		slices.SortFunc(instants, func(a, b time.Time) int { return a.Compare(b) })
		instants = slices.CompactFunc(instants, time.Time.Equal)
		upTo := attribution.New(opts)
		next := 0
		for _, at := range instants {
			for next < len(ordered) && !ordered[next].Time.After(at) {
				upTo.Apply(ordered[next])
				next++
			}
			// Azure rows are read from the history in both, and list the
			// resources with consumption anywhere in the log: not what a
			// fold up to the instant knows.
			if diff := cmp.Diff(powerPlatform(upTo.Attribution()), powerPlatform(whole.AttributionAt(at))); diff != "" {
				t.Fatalf("at %s (-folded up to it +read from the history):\n%s", at.Format(time.RFC3339), diff)
			}
		}
	})
}

// powerPlatform drops the Azure rows of an attribution.
func powerPlatform(rows []attribution.Row) []attribution.Row {
	var out []attribution.Row
	for _, r := range rows {
		if r.Kind != azure.Kind {
			out = append(out, r)
		}
	}
	return out
}

func TestRandomAzureLogsReachEveryOutcome(t *testing.T) {
	codes := make(map[event.Code]bool)
	var orgs, fractional, pec, lighthouse int
	for seed := range uint64(4) {
		events, _ := fold.Order(attributiontest.RandomAzureLog(seed, 600))
		e := attribution.New(attribution.DefaultOptions())
		for _, ev := range events {
			if res := e.Apply(ev); res.Outcome == attribution.Refused {
				codes[res.Refusal.Code] = true
			} else if ev.Type == event.AzureRoleAssigned && ev.PrincipalTenant != ev.Tenant {
				lighthouse++
			}
		}
		rep, err := e.Azure().Report("2026-01")
		if err != nil {
			t.Fatal(err)
		}
		orgs += len(rep.Orgs)
		for _, r := range rep.Resources {
			if !strings.HasSuffix(r.RecognisedHours.String(), ".00") || r.RecognisedHours.Rat().Num().Int64()%24 != 0 {
				fractional++
			}
			if r.PECEligibleCost.Rat().Sign() > 0 {
				pec++
			}
		}
	}
	for _, c := range []event.Code{event.UnknownTenantObject, event.AlreadyExists, event.InvalidValue} {
		if !codes[c] {
			t.Errorf("no random Azure log was refused with %s; the property tests miss that path", c)
		}
	}
	if orgs == 0 || fractional == 0 || pec == 0 || lighthouse == 0 {
		t.Errorf("random Azure logs credit too little to prove anything: %d organisation rows, %d resource rows with part days, %d with PEC-eligible cost, %d Lighthouse assignments",
			orgs, fractional, pec, lighthouse)
	}
}

// TestAnOrganisationNeverEarnsMoreThanWasPaid: under every Azure policy,
// each organisation counts a record once (SPEC.md section 9.4), so its ACR
// on a subscription never exceeds what the customer paid for the resources
// it is credited for there, however many of its location IDs are credited;
// and its PEC-eligible cost never exceeds its ACR.
func TestAnOrganisationNeverEarnsMoreThanWasPaid(t *testing.T) {
	type sub struct{ tenant, sub, org string }
	for _, policy := range []azure.Policy{azure.All, azure.Latest, azure.Split} {
		for seed := range uint64(200) {
			opts := attribution.DefaultOptions()
			opts.Azure.Policy = policy
			log := attributiontest.RandomAzureLog(seed, 600)
			e := fold.Events(opts, log)
			for _, month := range []string{"2026-01", "2026-02"} {
				// What the customer paid for each resource: each countable
				// record of the month once.
				paid := map[[2]string]*big.Rat{}
				for _, ev := range log {
					if ev.Type != event.AzureConsumption || !strings.HasPrefix(ev.Date, month) || ev.Meter == event.MeterMarketplace {
						continue
					}
					k := [2]string{ev.Tenant, ev.Resource}
					if paid[k] == nil {
						paid[k] = new(big.Rat)
					}
					c, _ := new(big.Rat).SetString(ev.Cost)
					paid[k].Add(paid[k], c)
				}
				rep, err := e.Azure().Report(month)
				if err != nil {
					t.Fatal(err)
				}
				// What was paid for the resources an organisation is
				// credited for, by subscription.
				bound := map[sub]*big.Rat{}
				seen := map[[3]string]bool{}
				for _, r := range rep.Resources {
					k := sub{r.Tenant, r.Subscription, r.Org}
					if bound[k] == nil {
						bound[k] = new(big.Rat)
					}
					if p := paid[[2]string{r.Tenant, r.Resource}]; p != nil && !seen[[3]string{r.Tenant, r.Resource, r.Org}] {
						seen[[3]string{r.Tenant, r.Resource, r.Org}] = true
						bound[k].Add(bound[k], p)
					}
				}
				orgACR := map[string]*big.Rat{}
				for _, s := range rep.Subscriptions {
					b := bound[sub{s.Tenant, s.Subscription, s.Org}]
					if b == nil || s.ACR.Rat().Cmp(b) > 0 {
						t.Errorf("%s seed %d %s: organisation %s earns %s on %s/%s, for resources paid %v", policy, seed, month, s.Org, s.ACR, s.Tenant, s.Subscription, b.FloatString(2))
					}
					if s.PECEligibleCost.Rat().Cmp(s.ACR.Rat()) > 0 {
						t.Errorf("%s seed %d %s: organisation %s PEC-eligible %s over its ACR %s", policy, seed, month, s.Org, s.PECEligibleCost, s.ACR)
					}
					if orgACR[s.Org] == nil {
						orgACR[s.Org] = new(big.Rat)
					}
					orgACR[s.Org].Add(orgACR[s.Org], s.ACR.Rat())
				}
				for _, o := range rep.Orgs {
					if o.ACR.Rat().Cmp(orgACR[o.Org]) != 0 {
						t.Errorf("%s seed %d %s: organisation %s's ACR %s is not the sum of its subscriptions' %v", policy, seed, month, o.Org, o.ACR, orgACR[o.Org].FloatString(2))
					}
				}
			}
		}
	}
}

// TestMonthSummedAsReadIsTheReport: a month's consumption summed as it is
// read, never kept (azure.Month, what pal report azure does with a
// consumption file), gives the report of the engine that keeps the same
// records, under every policy: in any order of the records, sorted by
// resource or not, and in any number of parts, each fed from its own
// goroutine.
func TestMonthSummedAsReadIsTheReport(t *testing.T) {
	summed := 0
	for _, policy := range []azure.Policy{azure.All, azure.Latest, azure.Split} {
		for seed := range uint64(40) {
			opts := attribution.DefaultOptions()
			opts.Azure.Policy = policy
			log, _ := fold.Order(attributiontest.RandomAzureLog(seed, 600))
			// The control events, and the last record of each resource,
			// day and meter, as it replaces the earlier ones, of those
			// whose cost a billionth holds (a file's row holds no other).
			var control, records []*event.Event
			last := map[[3]string]int{}
			for _, ev := range log {
				if ev.Type != event.AzureConsumption {
					control = append(control, ev)
					continue
				}
				if _, exact := azure.ParseNanos(ev.Cost); !exact {
					continue
				}
				k := [3]string{ev.Tenant + "\x00" + ev.Resource, ev.Date, ev.Meter}
				if i, ok := last[k]; ok {
					records[i] = ev
					continue
				}
				last[k] = len(records)
				records = append(records, ev)
			}
			// A resource's day paid on several meters earns its hours once:
			// every fifth record has a twin on the next meter.
			for i, n := 0, len(records); i < n; i += 5 {
				twin := *records[i]
				twin.ID = ""
				twin.Meter = event.Meters[(event.MeterIndex(twin.Meter)+1)%event.MeterCount]
				k := [3]string{twin.Tenant + "\x00" + twin.Resource, twin.Date, twin.Meter}
				if _, ok := last[k]; !ok {
					last[k] = len(records)
					records = append(records, &twin)
				}
			}
			kept := fold.Events(opts, append(slices.Clone(control), records...))
			e := fold.Events(opts, control)
			for _, month := range []string{"2026-01", "2026-02"} {
				want, err := kept.Azure().Report(month)
				if err != nil {
					t.Fatal(err)
				}
				m, err := e.Azure().MonthIn(month, 1+int(seed%4))
				if err != nil {
					t.Fatal(err)
				}
				// In log order, in random order, or sorted by resource.
				fed := slices.Clone(records)
				switch rng := rand.New(rand.NewPCG(seed, 3)); seed % 3 {
				case 1:
					rng.Shuffle(len(fed), func(i, j int) { fed[i], fed[j] = fed[j], fed[i] })
				case 2:
					slices.SortStableFunc(fed, func(a, b *event.Event) int {
						return strings.Compare(a.Tenant+"\x00"+a.Resource, b.Tenant+"\x00"+b.Resource)
					})
				}
				var wg sync.WaitGroup
				for part := range m.Parts() {
					wg.Go(func() {
						for _, ev := range fed {
							day := event.DayNumber(ev.Date)
							if !m.Contains(day) || m.PartOf(ev.Tenant) != part {
								continue
							}
							nanos, _ := azure.ParseNanos(ev.Cost)
							m.Slot(ev.Tenant, ev.Resource).Put(day, uint8(slices.Index(event.Meters, ev.Meter)), nanos)
						}
					})
				}
				wg.Wait()
				got, ok := m.Report()
				if !ok {
					t.Fatalf("%s seed %d %s: records of distinct days and meters were taken for repeats", policy, seed, month)
				}
				summed += m.Records()
				// A day earns its hours once, however many meters paid it.
				days := map[[2]string]map[string]bool{}
				for _, ev := range records {
					k := [2]string{ev.Tenant, ev.Resource}
					if days[k] == nil {
						days[k] = map[string]bool{}
					}
					if strings.HasPrefix(ev.Date, month) {
						days[k][ev.Date] = true
					}
				}
				for _, r := range got.Resources {
					most := big.NewRat(24*int64(len(days[[2]string{r.Tenant, r.Resource}])), 1)
					if r.RecognisedHours.Rat().Cmp(most) > 0 {
						t.Errorf("%s seed %d %s: %s on %s is recognised %s hours, over the %v of its days with costs", policy, seed, month, r.Partner, r.Resource, r.RecognisedHours, most)
					}
				}
				if diff := cmp.Diff(reportText(want), reportText(got)); diff != "" {
					t.Errorf("%s seed %d %s: summed as read differs (-kept +summed):\n%s", policy, seed, month, diff)
				}
			}
		}
	}
	if summed == 0 {
		t.Fatal("no record was summed: the test proves nothing")
	}
}

// reportText is a report as its JSON says it.
func reportText(rep azure.Report) string {
	data, _ := json.MarshalIndent(rep, "", " ")
	return string(data)
}
