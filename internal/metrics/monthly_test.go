package metrics

import (
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/credit"
)

// counted returns an aggregator holding a year of uses of five resources
// in each of n tenants, credited to one partner.
func counted(n int) *Aggregator {
	a := NewAggregator()
	c := &attribution.Credit{Attributed: true, Partner: "100011", Org: "100001"}
	start := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	for t := range n {
		tenant := fmt.Sprintf("tenant%d", t)
		for r := range 5 {
			for m := range 12 {
				a.Usage(start.AddDate(0, m, 0), tenant, fmt.Sprintf("app%d", r), "power_apps", "user", c)
			}
		}
	}
	return a
}

// BenchmarkRecountAmongTenants times what a refold of one tenant asks of
// the counts, a resource's months dropped and another's moved to a new
// holder and back, among other tenants' counts: it must not grow with
// them.
func BenchmarkRecountAmongTenants(b *testing.B) {
	fabrikam := attribution.Credit{Attributed: true, Partner: "100011", Org: "100001"}
	northwind := attribution.Credit{Attributed: true, Partner: "200011", Org: "200001"}
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			a := counted(n)
			for b.Loop() {
				a.DropResource("tenant7", "app0", "2026-06", "2026-08")
				a.MoveCredit("tenant7", "app1", "2026-03", fabrikam, northwind)
				a.MoveCredit("tenant7", "app1", "2026-03", northwind, fabrikam)
			}
		})
	}
}

// TestMovedCountsAsCountedAgain holds a move of credit and a drop of months
// to counting the same uses anew: in two tenants, for two locations of one
// organisation, only the tenant, resource, location and months named change.
func TestMovedCountsAsCountedAgain(t *testing.T) {
	east := attribution.Credit{Attributed: true, Partner: "100011", Org: "100001"}
	west := attribution.Credit{Attributed: true, Partner: "100012", Org: "100001"}
	northwind := attribution.Credit{Attributed: true, Partner: "200011", Org: "200001"}
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	// count counts a use of each resource by each of three users a month,
	// for four months, in tenants a and b, with credit given by holder.
	count := func(holder func(tenant, resource string, month int) *attribution.Credit) *Aggregator {
		a := NewAggregator()
		for _, tenant := range []string{"a", "b"} {
			for _, resource := range []string{"app1", "app2"} {
				for m := range 4 {
					for u := range 3 {
						c := holder(tenant, resource, m)
						a.Usage(start.AddDate(0, m, u), tenant, resource, "power_apps", fmt.Sprint("user", u), c)
						// app2 is co-credited to the west location too.
						if resource == "app2" {
							a.Usage(start.AddDate(0, m, u), tenant, resource, "power_apps", fmt.Sprint("user", u), &west)
						}
					}
				}
			}
		}
		return a
	}
	before := count(func(string, string, int) *attribution.Credit { return &east })
	before.MoveCredit("a", "app2", "2026-03", east, northwind)
	before.DropResource("b", "app1", "2026-02", "2026-04")
	want := count(func(tenant, resource string, m int) *attribution.Credit {
		switch {
		case tenant == "a" && resource == "app2" && m >= 2:
			return &northwind
		case tenant == "b" && resource == "app1" && m >= 1 && m < 3:
			return nil
		}
		return &east
	})
	for m := range 4 {
		month := start.AddDate(0, m, 0).Format("2006-01")
		segment := func(string, string) string { return "" }
		got, exp := before.Report(DefaultConfig(), month, segment), want.Report(DefaultConfig(), month, segment)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s: after the move and the drop\n%+v\nwant, counted anew\n%+v", month, got, exp)
		}
	}
}

// TestResourceFiguresCountEachUserOnce: a resource's users in a month are
// counted once, whoever they were credited to: a user seen under two
// holders (the credit moved in the month) is one user of the resource,
// where the report's rows count it under each; a user whose credit was
// shared is one whole user of the resource, and a share of each
// organisation's. An instance's profiles are its largest count credited.
func TestResourceFiguresCountEachUserOnce(t *testing.T) {
	east := &attribution.Credit{Attributed: true, Partner: "100011", Org: "100001"}
	northwind := &attribution.Credit{Attributed: true, Partner: "200011", Org: "200001"}
	shared := &attribution.Credit{Attributed: true, Shares: []credit.Share{{Partner: "100011", Org: "100001", Share: 0.5}, {Partner: "200011", Org: "200001", Share: 0.5}}}
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	a := NewAggregator()
	a.Usage(day(2), "t", "app1", "power_apps", "u1", east)
	a.Usage(day(3), "t", "app1", "power_apps", "u2", east)
	a.Usage(day(20), "t", "app1", "power_apps", "u1", northwind)
	a.Usage(day(21), "t", "app1", "power_apps", "u3", northwind)
	a.Usage(day(2), "t", "app2", "power_apps", "u1", shared)
	a.Profiles(day(2), "t", "ci1", "customer_insights", 100, east)
	a.Profiles(day(20), "t", "ci1", "customer_insights", 120, northwind)
	a.Profiles(day(2), "t", "ci2", "customer_insights", 100, shared)
	k := func(r string) attribution.ResourceKey { return attribution.ResourceKey{Tenant: "t", Resource: r} }
	for _, tt := range []struct {
		org  string
		want map[attribution.ResourceKey]Figures
	}{
		{"", map[attribution.ResourceKey]Figures{k("app1"): {"power_apps", 3, 0}, k("app2"): {"power_apps", 1, 0},
			k("ci1"): {"customer_insights", 0, 120}, k("ci2"): {"customer_insights", 0, 100}}},
		{"100001", map[attribution.ResourceKey]Figures{k("app1"): {"power_apps", 2, 0}, k("app2"): {"power_apps", 0.5, 0},
			k("ci1"): {"customer_insights", 0, 100}, k("ci2"): {"customer_insights", 0, 50}}},
	} {
		if got := a.ResourceFigures("2026-01", tt.org, nil); !maps.Equal(got, tt.want) {
			t.Errorf("figures of %q: %v, want %v", tt.org, got, tt.want)
		}
	}
	// The report's rows, by location, count u1 of app1 under each holder.
	mau := 0.0
	for _, r := range a.Report(DefaultConfig(), "2026-01", func(string, string) string { return "" }).Resources {
		if r.Resource == "app1" {
			mau += r.MAU
		}
	}
	if mau != 4 {
		t.Errorf("app1's rows sum %v users, want 4: each holder's", mau)
	}
}

// BenchmarkResourceFigures reads a month's figures of every resource, as
// the pages' tables do, beside the monthly report they read before: 1,000
// tenants of 20 resources, each used by 200 users in the month, half of
// them under a second holder.
//
//	go test ./internal/metrics -run '^$' -bench 'ResourceFigures|MonthlyReport'
func BenchmarkResourceFigures(b *testing.B) {
	a := manyResources()
	b.ResetTimer()
	for range b.N {
		a.ResourceFigures("2026-01", "", nil)
	}
}

func BenchmarkMonthlyReport(b *testing.B) {
	a := manyResources()
	b.ResetTimer()
	for range b.N {
		a.Report(DefaultConfig(), "2026-01", func(string, string) string { return "" })
	}
}

func manyResources() *Aggregator {
	east := &attribution.Credit{Attributed: true, Partner: "100011", Org: "100001"}
	west := &attribution.Credit{Attributed: true, Partner: "200011", Org: "200001"}
	a := NewAggregator()
	at := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for t := range 1000 {
		tenant := fmt.Sprintf("tenant%04d", t)
		for r := range 20 {
			resource := fmt.Sprintf("app%02d", r)
			for u := range 200 {
				c := east
				if u%2 == 1 {
					c = west
				}
				a.Usage(at, tenant, resource, "power_apps", fmt.Sprintf("user%03d", u), c)
				a.Usage(at.AddDate(0, 0, 10), tenant, resource, "power_apps", fmt.Sprintf("user%03d", u), east)
			}
		}
	}
	return a
}
