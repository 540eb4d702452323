package attribution

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/event"
)

// Missing is a resource on which an account linked to one of an
// organisation's location IDs has a role, but the organisation is not
// credited: why, and what would fix it.
type Missing struct {
	Tenant   string `json:"tenant"`
	Resource string `json:"resource"`
	Kind     string `json:"kind"`
	Account  string `json:"account"`
	Partner  string `json:"partner"`
	Reason   string `json:"reason"`
	Words    string `json:"words"`
	Fix      string `json:"fix"`
	// Other names the partner credited instead, and since when: nothing
	// more of it.
	Other *OtherPartner `json:"other,omitempty"`
}

// OtherPartner is the partner credited in an organisation's stead.
type OtherPartner struct {
	Partner string    `json:"partner"`
	Since   time.Time `json:"since"`
}

// AtRisk is a resource credited to an organisation through one account
// only: the credit ends when that person leaves.
type AtRisk struct {
	Tenant   string `json:"tenant"`
	Resource string `json:"resource"`
	Kind     string `json:"kind"`
	Account  string `json:"account"`
	Partner  string `json:"partner"`
}

// Diagnosis is where an organisation's credit is missing, and where it
// hangs on one account.
type Diagnosis struct {
	Org     string    `json:"org"`
	At      time.Time `json:"at"`
	Missing []Missing `json:"missing"`
	AtRisk  []AtRisk  `json:"at_risk"`
}

// Diagnose says, as the state stands, where an organisation's linked
// accounts have a role but the organisation is not credited, and why; and
// where its credit hangs on a single account.
func (e *Engine) Diagnose(orgID string) Diagnosis {
	d := Diagnosis{Org: orgID, At: e.now, Missing: []Missing{}, AtRisk: []AtRisk{}}
	o := e.dir.Org(orgID)
	if o == nil {
		return d
	}
	ids := o.IDs()
	slices.Sort(ids)
	seen := map[ResourceKey]bool{}
	for _, loc := range slices.Compact(ids) {
		for k := range e.linksTo[loc] {
			t := e.tenants[k.tenant]
			for id := range t.accounts[k.account].roles {
				rk := ResourceKey{k.tenant, id}
				if seen[rk] {
					continue
				}
				seen[rk] = true
				e.diagnoseResource(&d, o, t, id)
			}
		}
	}
	e.diagnoseAzure(&d, o)
	slices.SortFunc(d.Missing, func(a, b Missing) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource), cmp.Compare(a.Account, b.Account))
	})
	slices.SortFunc(d.AtRisk, func(a, b AtRisk) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
	return d
}

func (e *Engine) diagnoseResource(d *Diagnosis, o *directory.Org, t *tenant, id string) {
	r := t.resources[id]
	won := r.credit
	credited := won.Org == o.ID || slices.ContainsFunc(won.Shares, func(s credit.Share) bool { return s.Org == o.ID })
	cands := e.candidates(t, r)
	if credited {
		var holders []Candidate
		for _, c := range cands {
			if c.Eligible && c.Org == o.ID {
				holders = append(holders, c)
			}
		}
		if len(holders) == 1 {
			d.AtRisk = append(d.AtRisk, AtRisk{Tenant: t.id, Resource: id, Kind: r.kind, Account: holders[0].Account, Partner: holders[0].Partner})
		}
		return
	}
	add := func(m Missing) {
		m.Tenant, m.Resource, m.Kind = t.id, id, r.kind
		d.Missing = append(d.Missing, m)
	}
	env := t.envs[r.env]
	// Accounts of the organisation with a role that is never credited.
	if r.spec.CoOwners && !r.spec.CoOwnersCredited {
		for acct := range r.coowners {
			if a := t.accounts[acct]; o.Lists(a.link) {
				add(Missing{Account: acct, Partner: a.link, Reason: credit.RoleEarnsNothing,
					Words: fmt.Sprintf("%s is a co-owner of a %s, and a %s credits its owner only", acct, r.kind, r.kind),
					Fix:   fmt.Sprintf("make %s the owner (resource.owner_changed), or have it import the solution that holds the %s", acct, r.kind)})
			}
		}
	}
	if r.spec.ByActivity && r.owner != "" {
		if _, active := r.active[r.owner]; !active {
			if a := t.accounts[r.owner]; o.Lists(a.link) {
				add(Missing{Account: r.owner, Partner: a.link, Reason: credit.NoActivityYet,
					Words: fmt.Sprintf("%s owns this %s but has had no activity on it; a %s credits the accounts that work on it", r.owner, r.kind, r.kind),
					Fix:   "an edit or publish by the account makes it a candidate"})
			}
		}
	}
	for _, c := range cands {
		a := t.accounts[c.Account]
		if !o.Lists(a.link) {
			continue
		}
		m := Missing{Account: c.Account, Partner: a.link}
		switch {
		case !c.Eligible && c.Reason == credit.AccountDisabled:
			m.Reason, m.Words, m.Fix = credit.Disabled, fmt.Sprintf("%s is disabled, so its link does not count", c.Account),
				"enable the account, or link another of the organisation's accounts that works on it"
		case !c.Eligible:
			m.Reason = credit.DroppedLocation
			m.Words = fmt.Sprintf("%s links %s, which the organisation no longer lists as a location ID", c.Account, a.link)
			m.Fix = fmt.Sprintf("link one of the organisation's location IDs: %s", strings.Join(o.Locations, ", "))
		case !e.isCounted(t, r):
			m.Reason = credit.NotProduction
			m.Words = fmt.Sprintf("environment %s is %s: only %s environments count", r.env, env.envType, strings.Join(e.opts.Counted, ", "))
			m.Fix = fmt.Sprintf("promote %s to production, or deploy the %s to a production environment", r.env, r.kind)
		case won.Attributed:
			m.Reason, m.Words = credit.LaterPartner, fmt.Sprintf("partner %s associated later, on %s, and the latest association wins", won.Partner, won.Since.Format(time.DateOnly))
			m.Other = &OtherPartner{Partner: won.Partner, Since: won.Since}
			m.Fix = "an edit or publish by the account renews its association"
			if e.opts.Policy == First {
				m.Reason, m.Words = credit.EarlierPartner, fmt.Sprintf("partner %s associated earlier, on %s, and under policy first the earliest keeps the credit", won.Partner, won.Since.Format(time.DateOnly))
				m.Fix = "nothing while that association lasts"
			}
		default:
			continue
		}
		add(m)
	}
}

// diagnoseAzure adds the Azure resources with consumption on which an
// account linked to one of the organisation's location IDs holds roles,
// all of them earning nothing, and the organisation is not recognised;
// and those credited to it through one account only.
func (e *Engine) diagnoseAzure(d *Diagnosis, o *directory.Org) {
	q := e.azureQuery()
	e.azureHolders(q, o, func(tenant, path string, holders map[accountKey]AzureAccount) {
		if len(holders) == 1 {
			for _, acct := range holders {
				d.AtRisk = append(d.AtRisk, AtRisk{Tenant: tenant, Resource: path, Kind: AzureKind, Account: acct.Account, Partner: acct.Partner})
			}
		}
	})
	roles := e.opts.Azure.roles()
	for tid, t := range e.tenants {
		if t.az == nil {
			continue
		}
		for _, path := range t.az.Usage.Paths {
			sc, _ := event.ParseScope(path)
			if p := pieceAt(q.timeline(tid, sc), e.now); p != nil {
				if i := slices.IndexFunc(p.recognised, func(r recognition) bool { return r.Org == o.ID }); i >= 0 {
					e.azureOutranked(d, o, q.policy, tid, path, p.recognised, p.recognised[i])
					continue
				}
			}
			covs, _ := q.coverings(tid, t.az, sc)
			for _, c := range covs {
				a := c.a
				if roles.Eligible(a.Role) || !endOr(a.To).After(e.now) || e.principalGone(a, e.now) {
					continue
				}
				for _, m := range e.members(a) {
					if !m.to.After(e.now) || m.from.After(e.now) {
						continue
					}
					acct := e.tenants[a.PrincipalTenant].accounts[m.account]
					if acct == nil || !o.Lists(acct.stateAt(e.now).Link) {
						continue
					}
					d.Missing = append(d.Missing, Missing{Tenant: tid, Resource: path, Kind: AzureKind, Account: m.account,
						Partner: acct.stateAt(e.now).Link, Reason: credit.RoleEarnsNothing,
						Words: fmt.Sprintf("%s holds %s on %s, a role that cannot change anything: it earns no recognition", m.account, a.Role, a.Scope.Path),
						Fix:   "ask the customer for a role that may change what you manage (Contributor, or a role of the resource's own ending in Contributor, Operator, Owner or Administrator)"})
				}
			}
		}
	}
}

// azureOutranked adds an Azure resource on which the organisation is
// recognised but, under the Azure policy latest, another location with a
// later association is credited instead.
func (e *Engine) azureOutranked(d *Diagnosis, o *directory.Org, policy AzurePolicy, tenant, path string, rec []recognition, mine recognition) {
	shares := sharesOf(policy, rec)
	if len(shares) == 0 || slices.ContainsFunc(shares, func(s credit.Share) bool { return s.Org == o.ID }) {
		return
	}
	other := rec[slices.IndexFunc(rec, func(r recognition) bool { return r.Partner == shares[0].Partner })]
	d.Missing = append(d.Missing, Missing{Tenant: tenant, Resource: path, Kind: AzureKind, Account: mine.Account, Partner: mine.Partner,
		Reason: credit.LaterPartner,
		Words:  fmt.Sprintf("partner %s's association is later, since %s, and under the Azure policy %s only the latest is credited", other.Partner, other.Since.Format(time.DateOnly), policy),
		Fix:    "a new assignment, activation or membership of the account, or a new link, renews its association",
		Other:  &OtherPartner{Partner: other.Partner, Since: other.Since}})
}

// azureHolders calls fn with each Azure resource with consumption that is
// credited to an organisation now, and the accounts of the organisation
// that recognise it (by their tenant, which Lighthouse makes the
// partner's): the accounts its credit rests on.
func (e *Engine) azureHolders(q *azureQuery, o *directory.Org, fn func(tenant, path string, holders map[accountKey]AzureAccount)) {
	for tid, t := range e.tenants {
		if t.az == nil {
			continue
		}
		for _, path := range t.az.Usage.Paths {
			sc, _ := event.ParseScope(path)
			p := pieceAt(q.timeline(tid, sc), e.now)
			if p == nil || !slices.ContainsFunc(sharesOf(q.policy, p.recognised), func(s credit.Share) bool { return s.Org == o.ID }) {
				continue
			}
			x, err := e.explainAzure(q, tid, path, e.now)
			if err != nil {
				continue
			}
			holders := map[accountKey]AzureAccount{}
			for _, a := range x.Assignments {
				for _, acct := range a.Accounts {
					if acct.Eligible && acct.Org == o.ID {
						holders[accountKey{a.PrincipalTenant, acct.Account}] = acct
					}
				}
			}
			fn(tid, path, holders)
		}
	}
}
