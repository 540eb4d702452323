package azure

import (
	"fmt"
	"slices"
	"time"

	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/event"
)

// AccountKey names an account of a tenant.
type AccountKey struct{ Tenant, Account string }

// Held is an Azure resource credited to an organisation through one of its
// accounts only: the credit ends when that person leaves.
type Held struct {
	Tenant, Resource, Account, Partner string
}

// Miss is an Azure resource on which an account linked to one of an
// organisation's location IDs holds a role, but the organisation is not
// credited: why, in a reason of package credit and in words, and what
// would fix it. Other names the partner credited instead, if one is.
type Miss struct {
	Tenant, Resource, Account, Partner string
	Reason, Words, Fix                 string
	Other                              string
	OtherSince                         time.Time
}

// Diagnose returns, at an instant, the Azure resources with consumption
// credited to an organisation through one account only; and those on
// which an account linked to one of its location IDs holds roles, all of
// them earning nothing, or is recognised but outranked, and the
// organisation is not credited.
func (e *Engine) Diagnose(o *directory.Org, at time.Time) (single []Held, missed []Miss) {
	q := e.query()
	e.holders(q, o, at, func(tenant, path string, holders map[AccountKey]ExplainedAccount) {
		if len(holders) == 1 {
			for _, acct := range holders {
				single = append(single, Held{Tenant: tenant, Resource: path, Account: acct.Account, Partner: acct.Partner})
			}
		}
	})
	roles := e.opts.roles()
	for tid, t := range e.tenants {
		for _, path := range t.Usage.Paths {
			sc, _ := event.ParseScope(path)
			if p := pieceAt(q.timeline(tid, sc), at); p != nil {
				if i := slices.IndexFunc(p.recognised, func(r recognition) bool { return r.Org == o.ID }); i >= 0 {
					if m, ok := outranked(o, q.policy, tid, path, p.recognised, p.recognised[i]); ok {
						missed = append(missed, m)
					}
					continue
				}
			}
			covs, _ := q.coverings(tid, t, sc)
			for _, c := range covs {
				a := c.a
				if roles.Eligible(a.Role) || !endOr(a.To).After(at) || e.principalGone(a, at) {
					continue
				}
				for _, m := range e.members(a) {
					if !m.to.After(at) || m.from.After(at) {
						continue
					}
					states, ok := e.accounts.AccountStates(a.PrincipalTenant, m.account)
					link := stateAt(states, at).Link
					if !ok || !o.Lists(link) {
						continue
					}
					missed = append(missed, Miss{Tenant: tid, Resource: path, Account: m.account, Partner: link,
						Reason: credit.RoleEarnsNothing,
						Words:  fmt.Sprintf("%s holds %s on %s, a role that cannot change anything: it earns no recognition", m.account, a.Role, a.Scope.Path),
						Fix:    "ask the customer for a role that may change what you manage (Contributor, or a role of the resource's own ending in Contributor, Operator, Owner or Administrator)"})
				}
			}
		}
	}
	return single, missed
}

// outranked returns the miss of an Azure resource on which the
// organisation is recognised but, under the Azure policy latest, another
// location with a later association is credited instead.
func outranked(o *directory.Org, policy Policy, tenant, path string, rec []recognition, mine recognition) (Miss, bool) {
	shares := sharesOf(policy, rec)
	if len(shares) == 0 || slices.ContainsFunc(shares, func(s credit.Share) bool { return s.Org == o.ID }) {
		return Miss{}, false
	}
	other := rec[slices.IndexFunc(rec, func(r recognition) bool { return r.Partner == shares[0].Partner })]
	return Miss{Tenant: tenant, Resource: path, Account: mine.Account, Partner: mine.Partner,
		Reason: credit.LaterPartner,
		Words:  fmt.Sprintf("partner %s's association is later, since %s, and under the Azure policy %s only the latest is credited", other.Partner, other.Since.Format(time.DateOnly), policy),
		Fix:    "a new assignment, activation or membership of the account, or a new link, renews its association",
		Other:  other.Partner, OtherSince: other.Since}, true
}

// Carried counts, for each account of an organisation, the Azure resources
// with consumption credited to the organisation through it at an instant,
// of the tenants owns names (every tenant when nil): through Lighthouse,
// an account of one tenant carries resources of others.
func (e *Engine) Carried(o *directory.Org, at time.Time, owns func(tenant string) bool) map[AccountKey]int {
	out := map[AccountKey]int{}
	e.holders(e.query(), o, at, func(tenant, _ string, holders map[AccountKey]ExplainedAccount) {
		if owns != nil && !owns(tenant) {
			return
		}
		for k := range holders {
			out[k]++
		}
	})
	return out
}

// CarriedBy lists, by tenant, the Azure resources with consumption
// credited to an organisation at an instant through one of its accounts:
// those whose recognition rests on it, in whichever tenant (Lighthouse
// makes the account's tenant the partner's).
func (e *Engine) CarriedBy(o *directory.Org, k AccountKey, at time.Time) map[string][]string {
	out := map[string][]string{}
	e.holders(e.query(), o, at, func(tenant, path string, holders map[AccountKey]ExplainedAccount) {
		if _, ok := holders[k]; ok {
			out[tenant] = append(out[tenant], path)
		}
	})
	return out
}

// holders calls fn with each Azure resource with consumption that is
// credited to an organisation at an instant, and the accounts of the
// organisation that recognise it (by their tenant, which Lighthouse makes
// the partner's): the accounts its credit rests on.
func (e *Engine) holders(q *query, o *directory.Org, at time.Time, fn func(tenant, path string, holders map[AccountKey]ExplainedAccount)) {
	for tid, t := range e.tenants {
		for _, path := range t.Usage.Paths {
			sc, _ := event.ParseScope(path)
			p := pieceAt(q.timeline(tid, sc), at)
			if p == nil || !slices.ContainsFunc(sharesOf(q.policy, p.recognised), func(s credit.Share) bool { return s.Org == o.ID }) {
				continue
			}
			x, err := e.explain(q, tid, path, at)
			if err != nil {
				continue
			}
			holders := map[AccountKey]ExplainedAccount{}
			for _, a := range x.Assignments {
				for _, acct := range a.Accounts {
					if acct.Eligible && acct.Org == o.ID {
						holders[AccountKey{a.PrincipalTenant, acct.Account}] = acct
					}
				}
			}
			fn(tid, path, holders)
		}
	}
}
