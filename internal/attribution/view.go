package attribution

import (
	"slices"
	"time"

	"github.com/palproject/pal/internal/event"
)

// What the pages read besides the answers of SPEC.md: names, the value of
// an Azure resource, and the engine's present moved to the end of a month.

// AdvanceTo moves the engine's present to t when t is later, as an event
// that changes nothing would: the state as of t is the state after every
// event up to t. An engine folded up to the end of a month is advanced to
// it, so that what it answers of "now" is that instant.
func (e *Engine) AdvanceTo(t time.Time) {
	if t.After(e.now) {
		e.now = t
	}
}

// ResourceName returns the display name the log gives a resource of a
// tenant, "" when it gives none or the resource does not exist now.
func (e *Engine) ResourceName(tenantID, id string) string {
	if t := e.tenants[tenantID]; t != nil && t.resources[id] != nil {
		return t.resources[id].name
	}
	return ""
}

// AccountName returns the display name the log gives an account of a
// tenant, "" when it gives none.
func (e *Engine) AccountName(tenantID, id string) string {
	if t := e.tenants[tenantID]; t != nil && t.accounts[id] != nil {
		return t.accounts[id].name
	}
	return ""
}

// AccountLinkAt returns the partner ID an account of a tenant links now,
// "" when none (or no such account).
func (e *Engine) AccountLinkAt(tenantID, id string) string {
	if t := e.tenants[tenantID]; t != nil && t.accounts[id] != nil {
		return t.accounts[id].link
	}
	return ""
}

// PartnerOrg returns the organisation that lists a location ID, or that
// listed it last, "" when none ever did.
func (e *Engine) PartnerOrg(partner string) string {
	return e.dir.OwnerEver(partner)
}

// OrgPartnerIDs returns an organisation's global ID and every location ID
// it ever listed, nil when it is not registered.
func (e *Engine) OrgPartnerIDs(id string) []string {
	if o := e.dir.Org(id); o != nil {
		ids := o.IDs()
		slices.Sort(ids)
		return slices.Compact(ids)
	}
	return nil
}

// Orgs returns the global IDs of the registered organisations, sorted.
func (e *Engine) Orgs() []string {
	return e.dir.IDs()
}

// OrgName returns an organisation's name, "" when it is not registered.
func (e *Engine) OrgName(id string) string {
	if o := e.dir.Org(id); o != nil {
		return o.Name
	}
	return ""
}

// AzureCost returns what the customer paid in a month (YYYY-MM) for an
// Azure resource of a tenant, every meter but marketplace: the most a
// partner can be credited for it that month.
func (e *Engine) AzureCost(tenantID, path, month string) Money {
	total := amount{}
	start, err := time.Parse("2006-01", month)
	t := e.tenants[tenantID]
	if err != nil || t == nil || t.az == nil {
		return Money{total}
	}
	first, next := int32(start.Unix()/86400), int32(start.AddDate(0, 1, 0).Unix()/86400)
	c := &t.az.Usage
	i, ok := c.index[path]
	if !ok {
		return Money{total}
	}
	for _, rec := range c.Records[i] {
		if rec.Day < first || rec.Day >= next || event.Meters[rec.Meter] == event.MeterMarketplace {
			continue
		}
		if rec.Nanos >= 0 {
			total.addNanos(rec.Nanos)
		} else {
			total.addRat(c.cost(rec))
		}
	}
	return Money{total}
}

// ConsumptionMonths returns the months (YYYY-MM) in which the tenants named,
// or every tenant when none is, have Azure consumption, oldest first.
func (e *Engine) ConsumptionMonths(tenants ...string) []string {
	seen := map[string]bool{}
	add := func(t *tenant) {
		if t == nil || t.az == nil {
			return
		}
		for _, recs := range t.az.Usage.Records {
			for _, rec := range recs {
				seen[dayStart(rec.Day).Format("2006-01")] = true
			}
		}
	}
	if len(tenants) == 0 {
		for _, t := range e.tenants {
			add(t)
		}
	}
	for _, id := range tenants {
		add(e.tenants[id])
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}
