package azure_test

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
)

// TestAzureRecognitionsHoldTheTimeline checks, on random Azure logs under
// every Azure policy, that the recognition spans of a resource are the
// credit intervals of the timeline once the spans of no credit are dropped
// and the rest joined, and that a location's spans never overlap.
func TestAzureRecognitionsHoldTheTimeline(t *testing.T) {
	for _, policy := range []azure.Policy{azure.All, azure.Latest, azure.Split} {
		for seed := range uint64(30) {
			e := randomEngine(policy, seed, nil)
			want := map[attribution.ResourceKey][]azure.Interval{}
			e.Azure().Timeline(func(tenant, resource string, h []azure.Interval) bool {
				k := attribution.ResourceKey{Tenant: tenant, Resource: resource}
				want[k] = h
				return true
			})
			got := map[attribution.ResourceKey][]azure.Interval{}
			e.Azure().Recognitions(func(tenant, resource string, rs []azure.Recognition) bool {
				k := attribution.ResourceKey{Tenant: tenant, Resource: resource}
				checkDisjoint(t, policy, seed, k, rs)
				got[k] = creditOf(rs)
				return true
			})
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Fatalf("%s, seed %d: credit of the recognitions differs from the timeline (-want +got):\n%s", policy, seed, diff)
			}
		}
	}
}

func checkDisjoint(t *testing.T, policy azure.Policy, seed uint64, k attribution.ResourceKey, rs []azure.Recognition) {
	t.Helper()
	end := map[string]time.Time{}
	for _, r := range rs {
		if e, ok := end[r.Partner]; ok && (e.IsZero() || e.After(r.From)) {
			t.Fatalf("%s, seed %d, %s: spans of %s overlap: %+v", policy, seed, k.Resource, r.Partner, rs)
		}
		end[r.Partner] = r.To
		if r.Share != 0 && r.Share != 1 && r.Share != 0.5 && r.Share != 1.0/3 && r.Share != 0.25 {
			t.Fatalf("%s, seed %d: share %v is not 1/n", policy, seed, r.Share)
		}
		if r.Share != 0 && r.Share != 1 && policy != azure.Split || r.Share == 0 && policy != azure.Latest {
			t.Fatalf("%s, seed %d: share %v", policy, seed, r.Share)
		}
	}
}

// creditOf joins the credited spans of each location into the intervals
// of the timeline.
func creditOf(rs []azure.Recognition) []azure.Interval {
	var out []azure.Interval
	last := map[string]int{}
	for _, r := range rs {
		if r.Share == 0 {
			continue
		}
		if i, ok := last[r.Partner]; ok && out[i].To.Equal(r.From) && out[i].Org == r.Org && out[i].Share == r.Share {
			out[i].To = r.To
			continue
		}
		last[r.Partner] = len(out)
		out = append(out, azure.Interval{From: r.From, To: r.To, Partner: r.Partner, Org: r.Org, Account: r.Account, Share: r.Share})
	}
	slices.SortStableFunc(out, func(a, b azure.Interval) int {
		return cmp.Or(a.From.Compare(b.From), cmp.Compare(a.Partner, b.Partner))
	})
	return out
}

// TestAzureRecognitionsTellActiveAndUncredited follows one resource: a
// location recognised through an active assignment, then a second one of
// another organisation through a PIM activation, which policy latest
// credits while the first goes on uncredited.
func TestAzureRecognitionsTellActiveAndUncredited(t *testing.T) {
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }
	const res = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.web/sites/w"
	log := []*event.Event{
		{Type: event.PartnerRegistered, Time: day, Org: "100001", Name: "A", Locations: []string{"100011"}},
		{Type: event.PartnerRegistered, Time: day, Org: "200001", Name: "B", Locations: []string{"200011"}},
		{Type: event.AccountCreated, Time: day, Tenant: "t", Account: "a", Kind: event.AccountUser},
		{Type: event.AccountCreated, Time: day, Tenant: "t", Account: "b", Kind: event.AccountUser},
		{Type: event.PalLinked, Time: day, Tenant: "t", Account: "a", Partner: "100011"},
		{Type: event.PalLinked, Time: day, Tenant: "t", Account: "b", Partner: "200011"},
		{Type: event.AzureRoleAssigned, Time: at(1), Tenant: "t", Assignment: "x1", Principal: "a", PrincipalTenant: "t",
			Role: "Contributor", Scope: "/subscriptions/s1", PIM: event.PIMActive},
		{Type: event.AzureRoleAssigned, Time: at(2), Tenant: "t", Assignment: "x2", Principal: "b", PrincipalTenant: "t",
			Role: "Owner", Scope: "/", PIM: event.PIMEligible},
		{Type: event.AzureRoleActivated, Time: at(4), Tenant: "t", Assignment: "x2", Until: at(6)},
		{Type: event.AzureConsumption, Time: at(8), Tenant: "t", Resource: res, Date: "2026-01-01", Cost: "10", Meter: event.MeterStandard},
	}
	want := map[azure.Policy][]azure.Recognition{
		azure.All: {
			{From: at(1), Partner: "100011", Org: "100001", Account: "a", Share: 1, Active: true},
			{From: at(4), To: at(6), Partner: "200011", Org: "200001", Account: "b", Share: 1},
		},
		azure.Latest: {
			{From: at(1), To: at(4), Partner: "100011", Org: "100001", Account: "a", Share: 1, Active: true},
			{From: at(4), To: at(6), Partner: "100011", Org: "100001", Account: "a", Share: 0, Active: true},
			{From: at(4), To: at(6), Partner: "200011", Org: "200001", Account: "b", Share: 1},
			{From: at(6), Partner: "100011", Org: "100001", Account: "a", Share: 1, Active: true},
		},
		azure.Split: {
			{From: at(1), To: at(4), Partner: "100011", Org: "100001", Account: "a", Share: 1, Active: true},
			{From: at(4), To: at(6), Partner: "100011", Org: "100001", Account: "a", Share: 0.5, Active: true},
			{From: at(4), To: at(6), Partner: "200011", Org: "200001", Account: "b", Share: 0.5},
			{From: at(6), Partner: "100011", Org: "100001", Account: "a", Share: 1, Active: true},
		},
	}
	for policy, want := range want {
		opts := attribution.DefaultOptions()
		opts.Azure.Policy = policy
		e := attribution.New(opts)
		for i, ev := range log {
			ev.Line = i + 1
			if res := e.Apply(ev); res.Refusal != nil {
				t.Fatalf("line %d refused: %+v", i+1, res.Refusal)
			}
		}
		var got []azure.Recognition
		e.Azure().Recognitions(func(tenant, resource string, rs []azure.Recognition) bool {
			k := attribution.ResourceKey{Tenant: tenant, Resource: resource}
			if k != (attribution.ResourceKey{Tenant: "t", Resource: res}) {
				t.Errorf("%s: resource %v", policy, k)
			}
			got = rs
			return true
		})
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("%s: recognitions (-want +got):\n%s", policy, diff)
		}
	}
}

// TestDaysEarnAsComputed: what a month keeps of what each day of a
// resource's timeline earns, shared between the days that earn the same,
// is what the day earns computed alone, whatever order the days come in.
func TestDaysEarnAsComputed(t *testing.T) {
	checked := 0
	for _, policy := range []azure.Policy{azure.All, azure.Latest, azure.Split} {
		for seed := range uint64(30) {
			// Without the roles at the root from the first instant,
			// timelines begin and end within a day, after days of none.
			e := randomEngine(policy, seed, func(ev *event.Event) bool { return seed%2 == 1 && ev.Assignment == "root" })
			rng := rand.New(rand.NewPCG(seed, 9))
			for _, month := range []string{"2026-01", "2026-02"} {
				m, err := e.Azure().MonthIn(month, 2)
				if err != nil {
					t.Fatal(err)
				}
				e.Azure().Timeline(func(tenant, resource string, _ []azure.Interval) bool {
					m.Slot(tenant, resource)
					checked++
					return true
				})
				start, _ := time.Parse("2006-01", month)
				order := rng.Perm(start.AddDate(0, 1, -1).Day())
				if err := m.DaysEarnAsComputed(order); err != nil {
					t.Fatalf("%s, seed %d, %s: %v", policy, seed, month, err)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no resource has a timeline")
	}
}

// TestTimelinesAsAlone: a resource's timeline is the same whether it is
// asked alone or after other resources, of its group or not, whichever
// names an assignment of its own: the timelines that resources share are
// shared by those with the same assignments only.
func TestTimelinesAsAlone(t *testing.T) {
	paths := []string{
		"/subscriptions/s1/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1",
		"/subscriptions/s1/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm2",
		"/subscriptions/s1/resourcegroups/rg2/providers/microsoft.web/sites/w1",
		"/subscriptions/s1/resourcegroups/rg2/providers/microsoft.web/sites/w2",
		"/subscriptions/s1/resourcegroups/rg2/providers/microsoft.web/sites/w1/slots/staging",
		"/subscriptions/s2/resourcegroups/rg1/providers/microsoft.sql/servers/db1",
		"/subscriptions/s3/resourcegroups/rg9/providers/microsoft.sql/servers/db9",
	}
	for seed := range uint64(40) {
		e := randomEngine(azure.All, seed, nil)
		rng := rand.New(rand.NewPCG(seed, 10))
		for _, tenant := range []string{"t1", "t2", "home", "none"} {
			rng.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
			if err := e.Azure().TimelinesAsAlone(tenant, paths); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		}
	}
}

// randomEngine folds a random Azure log of 300 events under a policy,
// leaving out those that drop, when set, says to.
func randomEngine(policy azure.Policy, seed uint64, drop func(*event.Event) bool) *attribution.Engine {
	events, _ := fold.Order(attributiontest.RandomAzureLog(seed, 300))
	opts := attribution.DefaultOptions()
	opts.Azure.Policy = policy
	e := attribution.New(opts)
	for _, ev := range events {
		if drop == nil || !drop(ev) {
			e.Apply(ev)
		}
	}
	return e
}
