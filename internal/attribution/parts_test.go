package attribution_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
)

// TestAnswersMergeFromTenantParts splits the tenants of random logs into
// groups, as processes that own them will (SPEC.md section 10), and
// expects the monthly and Azure reports and an organisation's links merged
// from the groups' parts to be those of every tenant: the organisations'
// Azure totals exactly, from parts carried through JSON.
func TestAnswersMergeFromTenantParts(t *testing.T) {
	logs := map[string][]*event.Event{
		"random": attributiontest.RandomLog(5, 400),
		"azure":  attributiontest.RandomAzureLog(6, 400),
	}
	for name, log := range logs {
		t.Run(name, func(t *testing.T) {
			events, _ := fold.Order(log)
			e := attribution.New(attribution.DefaultOptions())
			agg := metrics.NewAggregator()
			tenants := map[string]bool{}
			for _, ev := range events {
				if res := e.Apply(ev); res.Outcome == attribution.Applied {
					agg.Record(ev, res)
				}
				tenants[ev.Tenant] = ev.Tenant != ""
			}
			rng := rand.New(rand.NewPCG(7, 7))
			for range 4 {
				n := 1 + rng.IntN(4)
				group := map[string]int{}
				for tenant := range tenants {
					group[tenant] = rng.IntN(n)
				}
				groups := make([]func(string) bool, n)
				for i := range groups {
					groups[i] = func(tenant string) bool { return group[tenant] == i }
				}
				mergesToTheWhole(t, e, agg, groups)
			}
		})
	}
}

// mergesToTheWhole checks the answers merged from the parts of groups.
func mergesToTheWhole(t *testing.T, e *attribution.Engine, agg *metrics.Aggregator, groups []func(string) bool) {
	t.Helper()
	cfg := metrics.DefaultConfig()
	seg := metrics.SegmentsAtMonthEnd(e)
	for _, month := range []string{"2026-01", "2026-02", "2026-03"} {
		var monthly []metrics.Monthly
		var az []azure.Part
		for _, g := range groups {
			monthly = append(monthly, agg.Part(cfg, month, g))
			rep, err := e.Azure().ReportOf(month, g)
			if err != nil {
				t.Fatal(err)
			}
			az = append(az, throughJSON(t, azure.PartOf(rep)))
		}
		if diff := cmp.Diff(agg.Report(cfg, month, seg), metrics.Merge(cfg, month, monthly, seg)); diff != "" {
			t.Errorf("%s: the monthly report merged from parts differs (-whole +parts):\n%s", month, diff)
		}
		want, err := e.Azure().Report(month)
		if err != nil {
			t.Fatal(err)
		}
		got := e.Options().Azure.Merge(month, az)
		if a, b := jsonOf(t, want), jsonOf(t, got); a != b {
			t.Errorf("%s: the Azure report merged from parts differs:\n%s\nfrom the whole:\n%s", month, b, a)
		}
		for i, o := range want.Orgs {
			for _, amounts := range [][2]azure.Money{{o.ACR, got.Orgs[i].ACR}, {o.PECEligibleCost, got.Orgs[i].PECEligibleCost}, {o.PECCredit, got.Orgs[i].PECCredit}} {
				if amounts[0].Rat().Cmp(amounts[1].Rat()) != 0 {
					t.Errorf("%s: organisation %s: %s merged from parts, %s whole", month, o.Org, amounts[1].Rat(), amounts[0].Rat())
				}
			}
		}
	}
	for _, org := range e.Orgs() {
		var links []attribution.OrgLink
		var carrying []attribution.Carrying
		for _, g := range groups {
			l, c := e.OrgLinksIn(org, g)
			links, carrying = append(links, l...), append(carrying, c...)
		}
		if diff := cmp.Diff(e.OrgLinks(org), attribution.MergeOrgLinks(links, carrying)); diff != "" {
			t.Errorf("the links of %s merged from parts differ (-whole +parts):\n%s", org, diff)
		}
	}
}

// jsonOf returns a value's JSON.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// throughJSON carries a value through JSON, as a part travels.
func throughJSON[T any](t *testing.T, v T) T {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
