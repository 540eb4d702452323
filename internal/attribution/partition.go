package attribution

import (
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/palproject/pal/internal/credit"
)

// Tenants are independent of one another except through the partner
// directory (organisations and their location IDs). So the state of one
// tenant can be folded again on its own, from the directory's events and
// the tenant's, in a fresh engine, and adopted into the engine that holds
// every tenant: a late event costs its tenant only.

// AdoptTenant replaces the state of tenant id (its accounts, environments,
// resources and credit history) with from's. from must have folded the
// same directory as e, with the tenant's events in their places.
func (e *Engine) AdoptTenant(id string, from *Engine) {
	if old := e.tenants[id]; old != nil {
		for acct, a := range old.accounts {
			if a.link != "" {
				e.unindexLink(a.link, accountKey{id, acct})
			}
		}
		delete(e.tenants, id)
	}
	e.az.AdoptTenant(id, from.az)
	t := from.tenants[id]
	if t == nil {
		return
	}
	e.tenants[id] = t
	for acct, a := range t.accounts {
		if a.link != "" {
			e.indexLink(a.link, accountKey{id, acct})
		}
	}
	if from.now.After(e.now) {
		e.now = from.now
	}
}

// Tenants returns the tenants the engine holds anything of, its Azure
// state and noted consumption included.
func (e *Engine) Tenants() iter.Seq[string] {
	return func(yield func(string) bool) {
		for id := range e.tenants {
			if !yield(id) {
				return
			}
		}
		for id := range e.az.Tenants() {
			if _, ok := e.tenants[id]; !ok && !yield(id) {
				return
			}
		}
	}
}

// DropTenant forgets a tenant's state, its Azure state and its noted
// consumption with it: a process that no longer folds the tenant (SPEC.md
// section 10).
func (e *Engine) DropTenant(id string) {
	if old := e.tenants[id]; old != nil {
		for acct, a := range old.accounts {
			if a.link != "" {
				e.unindexLink(a.link, accountKey{id, acct})
			}
		}
		delete(e.tenants, id)
	}
	e.az.DropTenant(id)
}

// AdoptDirectory replaces e's partner directory (organisations, location
// IDs, capability-score inputs) with from's, and returns the partner IDs,
// global and location, of every organisation whose history differs between
// the two. The tenants whose accounts link to one of them, or tried to,
// must be folded again; no other tenant's state depends on the change.
func (e *Engine) AdoptDirectory(from *Engine) []string {
	return e.dir.Adopt(from.dir)
}

func (e *Engine) indexLink(partner string, k accountKey) {
	if e.linksTo[partner] == nil {
		e.linksTo[partner] = make(map[accountKey]struct{})
	}
	e.linksTo[partner][k] = struct{}{}
}

func (e *Engine) unindexLink(partner string, k accountKey) {
	delete(e.linksTo[partner], k)
	if len(e.linksTo[partner]) == 0 {
		delete(e.linksTo, partner)
	}
}

// TenantHistory returns the credit history of every resource that ever
// existed in a tenant, by resource. The intervals are the engine's own,
// not to be changed.
func (e *Engine) TenantHistory(id string) map[string][]Interval {
	t := e.tenants[id]
	if t == nil {
		return nil
	}
	return maps.Clone(t.history)
}

// TenantTransients returns, by resource, the credits that every resource
// of a tenant held for no time (see Transient), in their order.
func (e *Engine) TenantTransients(id string) map[string][]Transient {
	t := e.tenants[id]
	if t == nil {
		return nil
	}
	return maps.Clone(t.transients)
}

// Corrections compares a resource's credit history before and after its
// tenant was folded again, and returns what a consumer of the feed of
// changes needs to end with the new history: from the first instant at
// which the two differ, every change of holder the new history makes, each
// marked as a correction. A consumer applies a correction by dropping what
// it holds of the resource from the correction's instant on, then taking
// the correction's holder; the corrections of one refold come in time
// order. It returns nothing when the histories name the same holders at
// the same instants.
//
// The first correction names, in Dropped, the organisations the old
// history credits from its instant on: a consumer of one organisation's
// changes must hear that its credit went, even to no one.
func Corrections(tenantID, id string, before, after []Interval) []Change {
	old, now := ChangePoints(tenantID, id, before), ChangePoints(tenantID, id, after)
	k := 0
	for k < len(old) && k < len(now) && old[k].Time.Equal(now[k].Time) && sameHolder(old[k].To, now[k].To) {
		k++
	}
	if k == len(old) && k == len(now) {
		return nil
	}
	var out []Change
	if k < len(old) && (k == len(now) || old[k].Time.Before(now[k].Time)) {
		// The old history changed holder before the new one does, or where
		// the new one does not: from that instant the consumer drops what
		// it held, and the new history's holder goes on.
		at := old[k].Time
		out = append(out, Change{Tenant: tenantID, Resource: id, Time: at, From: old[k].To, To: holderAt(after, at), Correction: true})
	}
	for _, c := range now[k:] {
		c.Correction = true
		out = append(out, c)
	}
	out[0].Dropped = orgsFrom(before, out[0].Time)
	return out
}

// holderAt returns whom a history credits at an instant, after every event
// of that instant: no one, with the reason, when the resource did not
// exist then.
func holderAt(h []Interval, at time.Time) Holder {
	if iv := intervalAt(h, at); iv != nil {
		return holderOf(iv.Credit)
	}
	if len(h) > 0 && !h[0].From.After(at) {
		return Holder{Reason: credit.ResourceDeleted}
	}
	return Holder{Reason: credit.ResourceNotFound}
}

// orgsFrom lists the organisations a history credits at or after an
// instant, each once.
func orgsFrom(h []Interval, at time.Time) []string {
	var orgs []string
	for _, iv := range h {
		if iv.To.IsZero() || iv.To.After(at) {
			orgs = append(orgs, holderOf(iv.Credit).orgs()...)
		}
	}
	return sortedOrgs(orgs)
}

// orgs lists the organisations a holder names, the shares' included.
func (h Holder) orgs() []string {
	orgs := []string{h.Org}
	for _, sh := range h.Shares {
		orgs = append(orgs, sh.Org)
	}
	return orgs
}

func sortedOrgs(orgs []string) []string {
	slices.Sort(orgs)
	orgs = slices.Compact(orgs)
	return slices.DeleteFunc(orgs, func(o string) bool { return o == "" })
}

// Orgs lists the organisations a change concerns, each once: those that
// lose or gain credit by it, and those a correction drops.
func (c Change) Orgs() []string {
	return sortedOrgs(slices.Concat(c.From.orgs(), c.To.orgs(), c.Dropped))
}

// ChangePoints lists the instants at which a history changes the partners
// credited, as the changes the feed reports: the start of each interval
// whose partners differ from the one before, and the end of an interval
// that nothing follows.
func ChangePoints(tenantID, id string, h []Interval) []Change {
	var out []Change
	prev := Holder{Reason: credit.ResourceNotFound}
	add := func(at time.Time, next Holder, worked, byRole bool) {
		if sameHolder(prev, next) {
			return
		}
		out = append(out, Change{Tenant: tenantID, Resource: id, Time: at, From: prev, To: next, ActivityBefore: worked, RoleOnly: byRole})
		prev = next
	}
	for i, iv := range h {
		add(iv.From, holderOf(iv.Credit), iv.ActivityBefore, iv.RoleOnly)
		if !iv.To.IsZero() && (i == len(h)-1 || !h[i+1].From.Equal(iv.To)) {
			add(iv.To, Holder{Reason: credit.ResourceDeleted}, false, false)
		}
	}
	return out
}

// sameHolder reports whether two holders name the same partners, as the
// feed tells changes apart (see noteChange): no partner is no partner,
// whatever the reason.
func sameHolder(a, b Holder) bool {
	return a.Partner == b.Partner && a.Org == b.Org && slices.Equal(a.Shares, b.Shares)
}
