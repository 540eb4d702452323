package metrics

import "slices"

// Months returns the months (YYYY-MM) with usage or profiles credited to a
// (tenant, organisation) that keep accepts, oldest first: the months a page
// has something to show for.
func (a *Aggregator) Months(keep func(tenant, org string) bool) []string {
	seen := map[string]bool{}
	for _, c := range a.tenants {
		for k := range c.resources {
			if !seen[k.month] && keep(k.tenant, k.org) {
				seen[k.month] = true
			}
		}
		for k := range c.profiles {
			if !seen[k.month] && keep(k.tenant, k.org) {
				seen[k.month] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}
