package attribution

import (
	"slices"
	"time"
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
