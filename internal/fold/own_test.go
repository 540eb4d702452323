package fold_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
)

// TestOwnersFoldTheirTenantsAsTheLog: a state that owns some buckets of
// tenants only, and gains and loses buckets while the facts arrive in any
// order, answers for the tenants it owns at the end exactly as one replay
// of the whole log does, counts their usage alone, and files a feed of
// their changes that a consumer applies into their histories. The tenants
// it does not own it holds nothing of, but those whose accounts its own
// tenants' role assignments name.
func TestOwnersFoldTheirTenantsAsTheLog(t *testing.T) {
	logs := map[string]func(uint64, int) []*event.Event{
		"power platform": attributiontest.RandomLog,
		"azure":          attributiontest.RandomAzureLog,
		"a year of uses": attributiontest.YearOfUses,
	}
	const buckets = 16
	readers := 0
	defer func() {
		if readers == 0 {
			t.Error("no state read a tenant it does not own: Lighthouse went untested")
		}
	}()
	for name, random := range logs {
		for seed := uint64(1); seed <= 12; seed++ {
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) {
				log := random(seed, 400)
				opts := attribution.DefaultOptions()
				opts.Policy = []attribution.Policy{attribution.Latest, attribution.First, attribution.Split}[seed%3]
				kept, _ := fold.Order(log)
				rng := rand.New(rand.NewPCG(seed, 10))
				arrived := attributiontest.ShuffleKeepingTies(rng, kept)
				recs := make(fold.Records, len(arrived))
				tenants := map[string]bool{}
				for i, ev := range arrived {
					recs[i] = store.Record{Seq: int64(i + 1), Event: ev}
					if ev.Tenant != "" {
						tenants[ev.Tenant] = true
					}
				}
				all := slices.Sorted(maps.Keys(tenants))
				ctx := context.Background()

				// The buckets owned change between batches; one of a tenant
				// stays owned throughout, so that its feed is whole.
				throughout := store.Bucket(all[rng.IntN(len(all))], buckets)
				ownsOf := func(held map[int]bool) func(string) bool {
					return func(t string) bool { return held[store.Bucket(t, buckets)] }
				}
				// A third of the states own their buckets as a process
				// does, and catch up from a log that gives them only the
				// records they follow.
				following := seed%3 == 0
				var st *fold.State
				own := func(src fold.Source, held map[int]bool, tenants []string) error {
					if following {
						return st.OwnBuckets(ctx, src, buckets, slices.Collect(maps.Keys(held)), tenants)
					}
					return st.Own(ctx, src, ownsOf(held), tenants)
				}
				draw := func() map[int]bool {
					held := map[int]bool{throughout: true}
					for b := range buckets {
						if rng.IntN(2) == 0 {
							held[b] = true
						}
					}
					return held
				}
				// Half the states keep their first buckets: what they come
				// to read, they find as the records arrive.
				moving := seed%2 == 0
				held := draw()
				st = fold.New(opts)
				if err := own(fold.Records(nil), held, nil); err != nil {
					t.Fatal(err)
				}
				full := fold.New(opts)
				var feed []attribution.Change
				moves := 0
				for from := 0; from < len(recs); {
					to := min(len(recs), from+1+rng.IntN(60))
					if following {
						if err := st.CatchUp(ctx, recs[:to]); err != nil {
							t.Fatal(err)
						}
						if st.Seq() != int64(to) {
							t.Fatalf("caught up to %d of %d records", st.Seq(), to)
						}
					} else if err := st.Fold(ctx, recs[:to], recs[from:to]); err != nil {
						t.Fatal(err)
					}
					if err := full.Fold(ctx, recs[:to], recs[from:to]); err != nil {
						t.Fatal(err)
					}
					for _, c := range st.TakeOutbox() {
						feed = append(feed, c.Change)
					}
					full.TakeOutbox()
					from = to
					if moving && rng.IntN(4) == 0 {
						held = draw()
						moves++
						if err := own(recs[:to], held, all); err != nil {
							t.Fatal(err)
						}
					}
				}
				if moving && (moves == 0 || seed%4 == 0) {
					// A quarter of the states end owning every bucket: each
					// tenant they gain is counted from the log.
					held = draw()
					if seed%4 == 0 {
						for b := range buckets {
							held[b] = true
						}
					}
					if err := own(recs, held, all); err != nil {
						t.Fatal(err)
					}
				}
				owns := ownsOf(held)

				// What the state says of its tenants is what a replay of
				// the whole log says of them, at the same present: the
				// present is that of every bucket's records.
				want := replayedOf(t, opts, log, owns)
				st.Engine().AdvanceTo(full.Engine().Now())
				got := stated(st, recs)
				got.Rows = slices.DeleteFunc(got.Rows, func(r attribution.Row) bool { return !owns(r.Tenant) })
				maps.DeleteFunc(got.History, func(tn string, _ map[string][]attribution.Interval) bool { return !owns(tn) })
				if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("owning buckets %v (-replay of the owned tenants +state):\n%s", held, diff)
				}
				// It knows where each partner ID was linked among its
				// tenants, as the organisations' scopes need.
				for _, ev := range log {
					if ev.Type != event.PalLinked {
						continue
					}
					mine := func(ts []string) []string { return slices.DeleteFunc(ts, func(tn string) bool { return !owns(tn) }) }
					if got, want := mine(st.Linking(ev.Partner)), mine(full.Linking(ev.Partner)); !slices.Equal(got, want) {
						t.Fatalf("the state notes %s linked in %v of its tenants, want %v", ev.Partner, got, want)
					}
				}
				// Its snapshot restores a state that owns the same tenants,
				// and then gains every other.
				seq, data, err := st.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				restored := fold.New(opts)
				if ok, err := restored.Restore(ctx, recs, seq, data); !ok || err != nil {
					t.Fatalf("restore: %v, %v", ok, err)
				}
				if err := restored.Own(ctx, recs, func(string) bool { return true }, all); err != nil {
					t.Fatal(err)
				}
				if diff := gocmp.Diff(replayed(t, opts, log), stated(restored, recs), cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("restored from its snapshot, then owning every tenant (-replay +restored):\n%s", diff)
				}
				for _, tn := range st.Tenants() {
					if !owns(tn) && !slices.ContainsFunc(st.Dependents(tn), owns) {
						t.Fatalf("the state holds %s, of a bucket it does not own, which none of its tenants reads", tn)
					}
					if !owns(tn) {
						readers++
					}
				}

				// The feed of the tenants owned throughout, applied in
				// order, gives their histories.
				applied := attributiontest.Feed{}
				applied.Apply(feed...)
				checked := 0
				full.Engine().Timeline(func(k attribution.ResourceKey, h []attribution.Interval) bool {
					if store.Bucket(k.Tenant, buckets) != throughout {
						return true
					}
					checked++
					w := attributiontest.Holders(attribution.ChangePoints(k.Tenant, k.Resource, h))
					if g := attributiontest.Holders(applied[k]); !slices.Equal(g, w) {
						t.Errorf("%s/%s: the feed applied gives\n  %v\nthe history's changes are\n  %v", k.Tenant, k.Resource, g, w)
					}
					return true
				})
				for _, c := range feed {
					if !owns(c.Tenant) && store.Bucket(c.Tenant, buckets) == throughout {
						t.Fatalf("a change of %s filed by a state that owns it throughout, yet not owned: %+v", c.Tenant, c)
					}
				}
			})
		}
	}
}

// replayedOf is what the command line's replay answers of the tenants
// owns says, on the whole log.
func replayedOf(t *testing.T, opts attribution.Options, log []*event.Event, owns func(string) bool) answers {
	e := attribution.New(opts)
	agg := metrics.NewAggregator()
	var refused []string
	tenants := map[string]bool{}
	err := fold.Replay(context.Background(), e, log, fold.Hooks{After: func(ev *event.Event, res attribution.Result) {
		if ev.Tenant != "" && !owns(ev.Tenant) {
			return
		}
		agg.Record(ev, res)
		if res.Outcome == attribution.Refused {
			refused = append(refused, ev.ID)
		}
		if ev.Tenant != "" {
			tenants[ev.Tenant] = true
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := answersOf(e, agg, slices.Sorted(maps.Keys(tenants)), refused)
	a.Rows = slices.DeleteFunc(a.Rows, func(r attribution.Row) bool { return !owns(r.Tenant) })
	return a
}

// TestOwnerReadsTheTenantsItsTenantsName: a state that owns a customer's
// tenant alone, given the partner's home tenant's records before the
// customer's assignment to the partner's account through Lighthouse, folds
// the home tenant once the assignment names it, and recognises the
// partner as one process folding every tenant does; it counts and files
// nothing of the home tenant.
func TestOwnerReadsTheTenantsItsTenantsName(t *testing.T) {
	lines := []string{
		`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`,
		`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"home","account":"a1","kind":"user"}`,
		`{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"home","account":"a1","partner":"100011"}`,
		`{"type":"azure.consumption","time":"2026-01-02T00:00:00Z","tenant":"customer","resource":"/subscriptions/s1/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1","date":"2026-01-02","cost":10,"meter":"standard"}`,
		`{"type":"azure.role_assigned","time":"2026-01-03T00:00:00Z","tenant":"customer","assignment":"x1","principal":"a1","principal_tenant":"home","role":"Contributor","scope":"/subscriptions/s1","pim":"active"}`,
		`{"type":"account.created","time":"2026-01-04T00:00:00Z","tenant":"home","account":"a2","kind":"user"}`,
	}
	recs := recordsOf(t, lines...)
	ctx := context.Background()
	opts := attribution.DefaultOptions()
	full, st := fold.New(opts), fold.New(opts)
	if err := st.Own(ctx, fold.Records(nil), func(t string) bool { return t == "customer" }, nil); err != nil {
		t.Fatal(err)
	}
	// One record at a time, as they arrive.
	for i := range recs {
		for _, s := range []*fold.State{full, st} {
			if err := s.Fold(ctx, recs[:i+1], recs[i:i+1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	recognisesAsOne(t, full, st, "the owner of the customer's tenant alone")
	if got := st.Tenants(); !slices.Equal(got, []string{"customer", "home"}) {
		t.Fatalf("the owner holds %v, want the customer's tenant and the home tenant it reads", got)
	}
	if rows := st.Engine().Attribution("home"); len(rows) != 0 {
		t.Fatalf("the home tenant is read, not answered for: %+v", rows)
	}
	for _, c := range st.TakeOutbox() {
		if c.Tenant != "customer" {
			t.Fatalf("a change of %s filed by the customer's owner: %+v", c.Tenant, c)
		}
	}
}

// TestAFollowerReadsTheTenantsItsTenantsName: a state that owns the
// customer's bucket alone, and reads only the records it follows, still
// reads the partner's home tenant once the customer's assignment names
// it: the partner's link, made in the home tenant before the assignment
// or after it, moves the customer's recognition as it does for one
// process that reads every record; and so when the state takes the
// customer's bucket after the assignment. It notes the links of the
// tenants it folds, and of those alone.
func TestAFollowerReadsTheTenantsItsTenantsName(t *testing.T) {
	link := `{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"home","account":"a1","partner":"100011"}`
	assign := `{"type":"azure.role_assigned","time":"2026-01-03T00:00:00Z","tenant":"customer","assignment":"x1","principal":"a1","principal_tenant":"home","role":"Contributor","scope":"/subscriptions/s1","pim":"active"}`
	for name, order := range map[string][]string{"linked before": {link, assign}, "linked after": {assign, link}, "bucket taken after": {link, assign}} {
		t.Run(name, func(t *testing.T) {
			lines := append([]string{
				`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`,
				`{"type":"azure.consumption","time":"2026-01-02T00:00:00Z","tenant":"customer","resource":"/subscriptions/s1/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1","date":"2026-01-02","cost":10,"meter":"standard"}`,
				`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"home","account":"a1","kind":"user"}`,
				`{"type":"pal.linked","time":"2026-01-04T00:00:00Z","tenant":"elsewhere","account":"b1","partner":"100011"}`,
			}, order...)
			const n = 16
			if store.Bucket("customer", n) == store.Bucket("home", n) || store.Bucket("customer", n) == store.Bucket("elsewhere", n) {
				t.Fatal("the tenants of the test share a bucket")
			}
			recs := recordsOf(t, lines...)
			ctx := context.Background()
			opts := attribution.DefaultOptions()
			full, st := fold.New(opts), fold.New(opts)
			mine := []int{store.Bucket("customer", n)}
			taken := name == "bucket taken after"
			if taken {
				mine = []int{store.Bucket("elsewhere", n)}
			}
			if err := st.OwnBuckets(ctx, fold.Records(nil), n, mine, nil); err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				if err := full.Fold(ctx, recs[:i+1], recs[i:i+1]); err != nil {
					t.Fatal(err)
				}
				if err := st.CatchUp(ctx, recs[:i+1]); err != nil {
					t.Fatal(err)
				}
			}
			if taken {
				if err := st.OwnBuckets(ctx, recs, n, []int{store.Bucket("customer", n)}, []string{"customer", "elsewhere", "home"}); err != nil {
					t.Fatal(err)
				}
			}
			recognisesAsOne(t, full, st, "the follower of the customer's bucket")
			if got := st.Linking("100011"); !slices.Equal(got, []string{"home"}) {
				t.Fatalf("the follower notes links of 100011 in %v, want the home tenant it reads alone", got)
			}
		})
	}
}

// recognisesAsOne checks that st, at full's present, recognises for the
// customer's tenant what full, folding every tenant, does: the partner
// 100011 through Lighthouse.
func recognisesAsOne(t *testing.T, full, st *fold.State, who string) {
	t.Helper()
	st.Engine().AdvanceTo(full.Engine().Now())
	want, got := full.Engine().Attribution("customer"), st.Engine().Attribution("customer")
	if len(want) != 1 || want[0].Partner != "100011" {
		t.Fatalf("one process recognises %+v, want the partner 100011 through Lighthouse", want)
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Fatalf("%s (-every tenant +state):\n%s", who, diff)
	}
}
