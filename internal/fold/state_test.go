package fold_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
)

// answers is what a fold says of a log: every tenant's attribution and
// credit histories, the ids of the events it refuses, and the monthly
// report of every month with usage or profiles credited.
type answers struct {
	Rows    []attribution.Row
	History map[string]map[string][]attribution.Interval
	Refused []string
	Months  []metrics.Monthly
}

func answersOf(e *attribution.Engine, agg *metrics.Aggregator, tenants []string, refused []string) answers {
	a := answers{Rows: e.Attribution(), History: map[string]map[string][]attribution.Interval{}, Refused: refused}
	for _, t := range tenants {
		a.History[t] = e.TenantHistory(t)
	}
	slices.Sort(a.Refused)
	for _, m := range agg.Months(func(string, string) bool { return true }) {
		a.Months = append(a.Months, agg.Report(metrics.DefaultConfig(), m, func(string, string) string { return event.Enterprise }))
	}
	return a
}

// replayed is what the command line's replay answers on a log.
func replayed(t *testing.T, opts attribution.Options, log []*event.Event) answers {
	return replayedOf(t, opts, log, func(string) bool { return true })
}

// stated is what a state answers once it folded recs.
func stated(st *fold.State, recs fold.Records) answers {
	byseq := map[int64]string{}
	for _, r := range recs {
		byseq[r.Seq] = r.Event.ID
	}
	var refused []string
	for _, rf := range st.Refusals(nil) {
		refused = append(refused, byseq[rf.Seq])
	}
	return answersOf(st.Engine(), st.Metrics(), st.Tenants(), refused)
}

// TestAnyArrivalFoldsAsTheLog: the same facts arriving in any order, in
// batches of any size, or read cold in chunks of any size, leave the state
// answering exactly as one replay of the log in its order. Records arrive
// late for their tenant, for the directory and for the tenants whose
// accounts other tenants' role assignments name.
func TestAnyArrivalFoldsAsTheLog(t *testing.T) {
	failures := 0
	defer func() {
		if failures == 0 {
			t.Error("the failing store never failed")
		}
	}()
	logs := map[string]func(uint64, int) []*event.Event{
		"power platform": attributiontest.RandomLog,
		"azure":          attributiontest.RandomAzureLog,
		"a year of uses": attributiontest.YearOfUses,
	}
	for name, random := range logs {
		for seed := uint64(1); seed <= 12; seed++ {
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) {
				log := random(seed, 400)
				// Each policy in turn: split shares credit between
				// organisations, whose users a refold counts by tenant.
				opts := attribution.DefaultOptions()
				opts.Policy = []attribution.Policy{attribution.Latest, attribution.First, attribution.Split}[seed%3]
				want := replayed(t, opts, log)
				// The store keeps an id once, as it first arrives: the
				// duplicates go, and what is left arrives in any order
				// that keeps ties in their log order.
				kept, _ := fold.Order(log)
				rng := rand.New(rand.NewPCG(seed, 7))
				arrived := attributiontest.ShuffleKeepingTies(rng, kept)
				recs := make(fold.Records, len(arrived))
				for i, ev := range arrived {
					recs[i] = store.Record{Seq: int64(i + 1), Event: ev}
				}
				ctx := context.Background()

				st := fold.New(opts)
				for from := 0; from < len(recs); {
					to := min(len(recs), from+1+rng.IntN(60))
					if err := st.Fold(ctx, recs[:to], recs[from:to]); err != nil {
						t.Fatal(err)
					}
					from = to
				}
				if diff := gocmp.Diff(want, stated(st, recs)); diff != "" {
					t.Fatalf("folded in batches as they arrived (-replay +state):\n%s", diff)
				}

				cold := fold.New(opts)
				cold.SetChunk(1 + rng.IntN(50))
				if err := cold.CatchUp(ctx, recs); err != nil {
					t.Fatal(err)
				}
				if diff := gocmp.Diff(want, stated(cold, recs)); diff != "" {
					t.Fatalf("caught up cold in chunks (-replay +state):\n%s", diff)
				}

				// A store that fails now and then, as one whose
				// connections are killed: catching up again after each
				// failure ends as one replay.
				flaky := fold.New(opts)
				flaky.SetChunk(1 + rng.IntN(50))
				src := &failingSource{Records: recs, rng: rng}
				for tries := 0; flaky.CatchUp(ctx, src) != nil; tries++ {
					if tries == 100000 {
						t.Fatal("never caught up through a store that fails now and then")
					}
				}
				failures += src.failed
				if diff := gocmp.Diff(want, stated(flaky, recs)); diff != "" {
					t.Fatalf("caught up through a store that failed %d times (-replay +state):\n%s", src.failed, diff)
				}
			})
		}
	}
}

// failingSource is a log whose reads fail now and then: a record in twice
// the log's length, so that half the reads of the whole log go through.
type failingSource struct {
	fold.Records
	rng    *rand.Rand
	failed int
}

var errKilled = errors.New("the connection was killed")

func (f *failingSource) fail(fn func(store.Record) error) func(store.Record) error {
	return func(r store.Record) error {
		if f.rng.IntN(2*len(f.Records)) == 0 {
			f.failed++
			return errKilled
		}
		return fn(r)
	}
}

func (f *failingSource) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	return f.Records.Scan(ctx, after, f.fail(fn))
}

func (f *failingSource) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return f.Records.ScanTenant(ctx, tenant, f.fail(fn))
}

func (f *failingSource) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return f.Records.ScanTenantState(ctx, tenant, f.fail(fn))
}

func (f *failingSource) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	return f.Records.ScanTenantBetween(ctx, tenant, from, to, f.fail(fn))
}
