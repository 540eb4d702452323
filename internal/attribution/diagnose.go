package attribution

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/directory"
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
	single, missed := e.az.Diagnose(o, e.now)
	for _, h := range single {
		d.AtRisk = append(d.AtRisk, AtRisk{Tenant: h.Tenant, Resource: h.Resource, Kind: azure.Kind, Account: h.Account, Partner: h.Partner})
	}
	for _, m := range missed {
		x := Missing{Tenant: m.Tenant, Resource: m.Resource, Kind: azure.Kind, Account: m.Account, Partner: m.Partner,
			Reason: m.Reason, Words: m.Words, Fix: m.Fix}
		if m.Other != "" {
			x.Other = &OtherPartner{Partner: m.Other, Since: m.OtherSince}
		}
		d.Missing = append(d.Missing, x)
	}
	SortDiagnosis(&d)
	return d
}

// SortDiagnosis sorts a diagnosis's lists by tenant, resource and account,
// then by what else tells two apart (an account may miss a resource's
// credit for more than one reason, or through two assignments): one order
// whatever the order they were found in, or the parts of tenants they
// come in (SPEC.md section 10).
func SortDiagnosis(d *Diagnosis) {
	slices.SortFunc(d.Missing, func(a, b Missing) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Partner, b.Partner), cmp.Compare(a.Words, b.Words), cmp.Compare(a.Fix, b.Fix))
	})
	slices.SortFunc(d.AtRisk, func(a, b AtRisk) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
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
