package metrics

import (
	"github.com/RoaringBitmap/roaring/v2"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
)

// Figures are what a resource carried in a month: its workload, its
// monthly active users and its unified profiles.
type Figures struct {
	Workload      string
	MAU, Profiles float64
}

// ResourceFigures returns what each resource with credited uses or
// profiles in a month carried: with org empty, whoever was credited, each
// user counted once (one seen under two holders in the month is one user,
// and one whose credit was shared counts whole), the profiles the largest
// count credited; otherwise what was credited to the organisation, its
// locations together. The monthly report's rows are by location, and
// their sum over a resource's holders counts a user once for each. Only
// the tenants owns names count, every tenant when nil: a resource's
// figures are its tenant's.
func (a *Aggregator) ResourceFigures(month, org string, owns func(tenant string) bool) map[attribution.ResourceKey]Figures {
	type union struct {
		workload string
		full     *roaring.Bitmap
		partial  map[uint32]float64
	}
	users := map[attribution.ResourceKey]*union{}
	out := map[attribution.ResourceKey]Figures{}
	for _, c := range a.owned(owns) {
		for k, u := range c.resources {
			if k.month != month || org != "" && k.org != org {
				continue
			}
			rk := attribution.ResourceKey{Tenant: k.tenant, Resource: k.resource}
			x := users[rk]
			if x == nil {
				x = &union{workload: k.workload, full: roaring.New(), partial: map[uint32]float64{}}
				users[rk] = x
			}
			x.full.Or(u.bitmap())
			for user, share := range u.partial {
				x.partial[user] += share
			}
		}
		// The instance's own profiles are kept under no organisation
		// (Profiles), an organisation's under its own.
		for k, p := range c.instances {
			if k.month == month && k.org == org {
				rk := attribution.ResourceKey{Tenant: k.tenant, Resource: k.resource}
				out[rk] = Figures{Workload: event.CustomerInsights, Profiles: round(p, 4)}
			}
		}
	}
	for rk, x := range users {
		n := float64(x.full.GetCardinality())
		for user, share := range x.partial {
			if !x.full.Contains(user) {
				n += min(share, 1)
			}
		}
		f := out[rk]
		f.Workload, f.MAU = x.workload, round(n, 4)
		out[rk] = f
	}
	return out
}
