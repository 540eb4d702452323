package attribution

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/event"
)

// Status of a resource in an attribution row.
const (
	StatusAttributed   = "attributed"
	StatusUnattributed = "unattributed"
)

// Row is the attribution of one existing resource (SPEC.md section 7).
type Row struct {
	Tenant      string         `json:"tenant"`
	Resource    string         `json:"resource"`
	Kind        string         `json:"kind"`
	Workload    string         `json:"workload"`
	Environment string         `json:"environment"`
	Status      string         `json:"status"`
	Partner     string         `json:"partner"`
	Org         string         `json:"org"`
	Account     string         `json:"account"`
	Since       *time.Time     `json:"since"`
	Reason      string         `json:"reason"`
	Shares      []credit.Share `json:"shares,omitempty"`
}

func newRow(tenantID, id, kind, env string, c Credit) Row {
	row := Row{
		Tenant: tenantID, Resource: id, Kind: kind, Workload: event.Kinds[kind].Workload, Environment: env,
		Status: StatusUnattributed, Reason: c.Reason,
	}
	if c.Attributed {
		since := c.Since
		row.Status, row.Partner, row.Org, row.Account, row.Since, row.Shares = StatusAttributed, c.Partner, c.Org, c.Account, &since, c.Shares
	}
	return row
}

// Attribution returns a row for every resource that exists now, and for
// every Azure resource with consumption, sorted by tenant then resource: of
// the tenants named, or of all when none is.
func (e *Engine) Attribution(tenants ...string) []Row {
	return e.rows(tenants, func(tid string, t *tenant) (rows []Row) {
		for id, r := range t.resources {
			rows = append(rows, newRow(tid, id, r.kind, r.env, r.credit))
		}
		return append(rows, e.azureRows(tid, e.now)...)
	})
}

// AttributionAt is Attribution at a past instant, read from the credit
// history: a row for every resource that existed at that instant, after
// every event of that instant.
func (e *Engine) AttributionAt(at time.Time, tenants ...string) []Row {
	return e.rows(tenants, func(tid string, t *tenant) (rows []Row) {
		for id, h := range t.history {
			if iv := intervalAt(h, at); iv != nil {
				rows = append(rows, newRow(tid, id, iv.Kind, iv.Environment, iv.creditAt(at)))
			}
		}
		return append(rows, e.azureRows(tid, at)...)
	})
}

// azureRows returns the attribution rows of a tenant's Azure resources
// with consumption, at an instant (section 9.5).
func (e *Engine) azureRows(tid string, at time.Time) []Row {
	hs := e.az.Holdings(tid, at)
	rows := make([]Row, 0, len(hs))
	for _, h := range hs {
		row := Row{Tenant: tid, Resource: h.Resource, Kind: azure.Kind, Workload: azure.Workload, Status: StatusUnattributed, Reason: credit.NoEligibleAccount}
		if h.Partner != "" {
			since := h.Since
			row.Status, row.Reason = StatusAttributed, ""
			row.Partner, row.Org, row.Account, row.Since, row.Shares = h.Partner, h.Org, h.Account, &since, h.Shares
		}
		rows = append(rows, row)
	}
	return rows
}

// rows gathers the rows of each tenant named, or of every tenant when none
// is, sorted by tenant then resource.
func (e *Engine) rows(tenants []string, of func(tid string, t *tenant) []Row) []Row {
	var rows []Row
	if len(tenants) > 0 {
		for _, tid := range tenants {
			if t := e.tenants[tid]; t != nil {
				rows = append(rows, of(tid, t)...)
			}
		}
	} else {
		for tid, t := range e.tenants {
			rows = append(rows, of(tid, t)...)
		}
	}
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
	return rows
}

// Winner is the credited candidate of an explanation.
type Winner struct {
	Account string    `json:"account"`
	Partner string    `json:"partner"`
	Org     string    `json:"org"`
	Since   time.Time `json:"since"`
}

// Explanation is the reasoning of SPEC.md section 4 for one resource at one
// instant, step by step.
type Explanation struct {
	Tenant      string      `json:"tenant"`
	Resource    string      `json:"resource"`
	At          time.Time   `json:"at"`
	Exists      bool        `json:"exists"`
	Kind        string      `json:"kind"`
	Workload    string      `json:"workload"`
	Name        string      `json:"name"`
	Environment string      `json:"environment"`
	EnvType     string      `json:"env_type"`
	Counted     bool        `json:"counted"`
	Candidates  []Candidate `json:"candidates"`
	Winner      *Winner     `json:"winner"`
	// WouldBeWinner is who would be credited if the environment were
	// counted; set only when it is not.
	WouldBeWinner *Winner `json:"would_be_winner,omitempty"`
	// NotAttributable lists the accounts that hold a role which is never
	// credited (the co-owners of a flow).
	NotAttributable []string       `json:"not_attributable,omitempty"`
	Shares          []credit.Share `json:"shares,omitempty"`
	Reason          string         `json:"reason"`
	// Policy is the policy that decided.
	Policy Policy `json:"policy"`
	// OrgNames names the organisations that appear in the explanation.
	OrgNames map[string]string `json:"org_names,omitempty"`
}

// Explain says who is credited for a resource now, and why.
func (e *Engine) Explain(tenantID, id string, at time.Time) Explanation {
	x := Explanation{Tenant: tenantID, Resource: id, At: at, Policy: e.opts.Policy, Candidates: []Candidate{}, OrgNames: map[string]string{}}
	t := e.tenants[tenantID]
	var r *resource
	if t != nil {
		r = t.resources[id]
	}
	if r == nil {
		x.Reason = credit.ResourceNotFound
		return x
	}
	x.Exists, x.Kind, x.Workload, x.Name, x.Environment = true, r.kind, r.spec.Workload, r.name, r.env
	x.EnvType = t.envs[r.env].envType
	x.Counted = e.isCounted(t, r)
	if cs := e.candidates(t, r); cs != nil {
		x.Candidates = cs // none is [] in JSON, as SPEC.md section 7 has it
	}
	if r.spec.CoOwners && !r.spec.CoOwnersCredited {
		for acct := range r.coowners {
			x.NotAttributable = append(x.NotAttributable, acct)
		}
		slices.Sort(x.NotAttributable)
	}
	for _, c := range x.Candidates {
		if c.Org != "" {
			x.OrgNames[c.Org] = e.dir.Org(c.Org).Name
		}
	}
	won := e.decide(x.Candidates)
	var w *Winner
	if won.Attributed {
		w = &Winner{Account: won.Account, Partner: won.Partner, Org: won.Org, Since: won.Since}
	}
	switch {
	case !x.Counted:
		x.Reason = credit.EnvironmentNotCounted
		x.WouldBeWinner = w
	case w == nil:
		x.Reason = won.Reason
	default:
		x.Winner = w
		x.Shares = won.Shares
	}
	return x
}

// Interval is a span of a resource's history with one holder of its credit.
// To is zero while the interval is open. Credit is the credit at From;
// Renewals say when the holder's association time changed within the
// interval (activity renews it), so that the credit at any instant can be
// read back (AttributionAt).
type Interval struct {
	Kind        string
	Environment string
	From        time.Time
	To          time.Time
	Credit      Credit
	Renewals    []Renewal
	// ActivityBefore tells whether the holder's account had activity on
	// the resource in the activity window before From; RoleOnly whether it
	// gained the credit by a role alone (Change.RoleOnly).
	ActivityBefore bool
	RoleOnly       bool
}

// intervalAt returns the interval of a history that holds the instant at,
// after every event of that instant, or nil when the resource did not exist
// then: the last interval that began by the instant, if it had not ended.
func intervalAt(h []Interval, at time.Time) *Interval {
	i := sort.Search(len(h), func(i int) bool { return h[i].From.After(at) }) - 1
	if i < 0 || (!h[i].To.IsZero() && !h[i].To.After(at)) {
		return nil
	}
	return &h[i]
}

// Renewal is a change of the holder's association time within an interval:
// from At on, it is Since.
type Renewal struct {
	At    time.Time
	Since time.Time
}

// History returns the credit intervals of a resource, oldest first, across
// deletions and re-creations.
func (e *Engine) History(tenantID, id string) []Interval {
	t := e.tenants[tenantID]
	if t == nil {
		return nil
	}
	return slices.Clone(t.history[id])
}

// Timeline calls fn with the history of every resource that ever existed,
// in the order of tenant then resource, until fn returns false.
func (e *Engine) Timeline(fn func(ResourceKey, []Interval) bool) {
	var keys []ResourceKey
	for tid, t := range e.tenants {
		for id := range t.history {
			keys = append(keys, ResourceKey{tid, id})
		}
	}
	slices.SortFunc(keys, func(a, b ResourceKey) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
	for _, k := range keys {
		if !fn(k, e.tenants[k.Tenant].history[k.Resource]) {
			return
		}
	}
}

// Organisation is a registered partner organisation.
type Organisation struct {
	ID        string
	Name      string
	Locations []string
}

// Org returns the organisation with global ID id.
func (e *Engine) Org(id string) (Organisation, bool) {
	o := e.dir.Org(id)
	if o == nil {
		return Organisation{}, false
	}
	return Organisation{ID: o.ID, Name: o.Name, Locations: slices.Clone(o.Locations)}, true
}

// LocationOrg returns the organisation that lists location ID id now.
func (e *Engine) LocationOrg(id string) (string, bool) {
	return e.dir.Owner(id)
}

// Segment returns the segment of organisation id at time at, or "" when it
// was not registered then.
func (e *Engine) Segment(id string, at time.Time) string {
	o := e.dir.Org(id)
	if o == nil {
		return ""
	}
	return o.SegmentAt(at)
}

// MetricsInputs returns the partner.metrics inputs of an organisation for a
// month (YYYY-MM).
func (e *Engine) MetricsInputs(org, month string) (directory.Inputs, bool) {
	return e.dir.Inputs(org, month)
}

// Link is an account's partner link in a tenant, as the link API shows it.
type Link struct {
	Partner string
	Org     string
	OrgName string
	// Version counts every creation, change and removal of the account's
	// link in the tenant.
	Version int
	Created time.Time
	Updated time.Time
	// Active is false once the link is removed (Partner is then the last
	// linked ID).
	Active bool
}

// Link returns the link of an account in a tenant, and false when the
// account does not exist or never linked a partner ID.
func (e *Engine) Link(tenantID, accountID string) (Link, bool) {
	t := e.tenants[tenantID]
	if t == nil {
		return Link{}, false
	}
	a := t.accounts[accountID]
	if a == nil || a.linkVersion == 0 {
		return Link{}, false
	}
	l := Link{Partner: a.lastLink, Version: a.linkVersion, Created: a.linkCreated, Updated: a.linkedAt, Active: a.link != ""}
	if org, ok := e.dir.Owner(l.Partner); ok {
		l.Org, l.OrgName = org, e.dir.Org(org).Name
	}
	return l, true
}

// AccountExists reports whether an account exists, not deleted, in a tenant.
func (e *Engine) AccountExists(tenantID, accountID string) bool {
	t := e.tenants[tenantID]
	if t == nil {
		return false
	}
	a := t.accounts[accountID]
	return a != nil && !a.deleted
}

// AccountCredits lists the resources whose credit an account of a tenant
// carries now: those of its tenant credited through it, or sharing in the
// credit by its link, and the Azure resources, of its tenant or of those
// that delegate to it through Azure Lighthouse, that its roles recognise.
func (e *Engine) AccountCredits(tenantID, accountID string) []Row {
	rows := []Row{}
	t := e.tenants[tenantID]
	if t == nil || t.accounts[accountID] == nil {
		return rows
	}
	a := t.accounts[accountID]
	for id := range a.roles {
		r := t.resources[id]
		c := r.credit
		shared := a.link != "" && slices.ContainsFunc(c.Shares, func(s credit.Share) bool { return s.Partner == a.link })
		if c.Attributed && (c.Account == accountID || shared) {
			rows = append(rows, newRow(tenantID, id, r.kind, r.env, c))
		}
	}
	if org, ok := e.dir.Owner(a.link); ok && !a.disabled {
		o := e.dir.Org(org)
		for tid, paths := range e.az.CarriedBy(o, azure.AccountKey{Tenant: tenantID, Account: accountID}, e.now) {
			for _, row := range e.azureRows(tid, e.now) {
				if slices.Contains(paths, row.Resource) {
					// The row names the account whose credit it reads,
					// where another account of the organisation, or of
					// another partner, holds the row: then its since is
					// that other's, and is not said.
					if row.Account != accountID {
						row.Since = nil
					}
					row.Partner, row.Org, row.Account = a.link, org, accountID
					rows = append(rows, row)
				}
			}
		}
	}
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
	return rows
}

// AccountCreated returns when an account of a tenant was created, and
// false when there is no such account.
func (e *Engine) AccountCreated(tenantID, accountID string) (time.Time, bool) {
	if t := e.tenants[tenantID]; t != nil && t.accounts[accountID] != nil {
		return t.accounts[accountID].created, true
	}
	return time.Time{}, false
}

// AccountsNamed maps the lower-case names of a tenant's live accounts (a
// user principal name, as a directory import names them) to the accounts,
// for an export that speaks names, not object IDs. A name two accounts
// share names neither.
func (e *Engine) AccountsNamed(tenantID string) map[string]string {
	out := map[string]string{}
	t := e.tenants[tenantID]
	if t == nil {
		return out
	}
	shared := map[string]bool{}
	for id, a := range t.accounts {
		n := strings.ToLower(a.name)
		switch {
		case a.deleted || n == "" || shared[n]:
		case out[n] != "":
			delete(out, n)
			shared[n] = true
		default:
			out[n] = id
		}
	}
	return out
}

// AccountKind returns the kind of an account of a tenant (user, guest,
// service_principal), "" when there is no such account.
func (e *Engine) AccountKind(tenantID, accountID string) string {
	if t := e.tenants[tenantID]; t != nil && t.accounts[accountID] != nil {
		return t.accounts[accountID].kind
	}
	return ""
}

// AccountDisabled reports whether an account of a tenant is disabled, so
// that its link does not count.
func (e *Engine) AccountDisabled(tenantID, accountID string) bool {
	t := e.tenants[tenantID]
	return t != nil && t.accounts[accountID] != nil && t.accounts[accountID].disabled
}

// AccountLink is an account of a tenant and the partner ID it links.
type AccountLink struct {
	Account string `json:"account"`
	Partner string `json:"partner"`
}

// Links lists the accounts of a tenant that hold a link, by account.
func (e *Engine) Links(tenantID string) []AccountLink {
	out := []AccountLink{}
	if t := e.tenants[tenantID]; t != nil {
		for id, a := range t.accounts {
			if a.link != "" && !a.deleted {
				out = append(out, AccountLink{id, a.link})
			}
		}
	}
	slices.SortFunc(out, func(a, b AccountLink) int { return cmp.Compare(a.Account, b.Account) })
	return out
}

// OrgLink is an account linked to one of an organisation's location IDs:
// where the organisation's links are, and what each carries.
type OrgLink struct {
	Tenant  string    `json:"tenant"`
	Account string    `json:"account"`
	Partner string    `json:"partner"`
	Since   time.Time `json:"since"`
	// Resources is how many resources are credited to the organisation
	// through the account now: Power Platform resources it wins, and
	// Azure resources its roles recognise.
	Resources int `json:"resources"`
	// Disabled marks an account that is disabled: its link does not
	// count while it is.
	Disabled bool `json:"disabled,omitempty"`
}

// OrgLinks lists the accounts, in every tenant, linked to a location ID the
// organisation lists or once listed, by tenant then account; nothing of the
// customer beyond that.
func (e *Engine) OrgLinks(orgID string) []OrgLink {
	return MergeOrgLinks(e.OrgLinksIn(orgID, nil))
}

// Carrying is how many Azure resources of some tenants are credited to an
// organisation through an account, of whichever tenant (Lighthouse makes it
// the partner's).
type Carrying struct {
	Tenant    string `json:"tenant"`
	Account   string `json:"account"`
	Resources int    `json:"resources"`
}

// OrgLinksIn is OrgLinks over the tenants owns names, every tenant when
// nil, as a process owning them answers it (SPEC.md section 10): the links
// of those tenants, each counting the Power Platform resources it wins
// there, and what every account of the organisation carries of those
// tenants' Azure resources. MergeOrgLinks makes OrgLinks of the answers
// over every tenant.
func (e *Engine) OrgLinksIn(orgID string, owns func(tenant string) bool) ([]OrgLink, []Carrying) {
	links, carrying := []OrgLink{}, []Carrying{}
	o := e.dir.Org(orgID)
	if o == nil {
		return links, carrying
	}
	for k, n := range e.az.Carried(o, e.now, owns) {
		carrying = append(carrying, Carrying{Tenant: k.Tenant, Account: k.Account, Resources: n})
	}
	ids := o.IDs()
	slices.Sort(ids)
	for _, loc := range slices.Compact(ids) {
		for k := range e.linksTo[loc] {
			if owns != nil && !owns(k.tenant) {
				continue
			}
			t := e.tenants[k.tenant]
			a := t.accounts[k.account]
			l := OrgLink{Tenant: k.tenant, Account: k.account, Partner: a.link, Since: a.linkedAt, Disabled: a.disabled}
			for id := range a.roles {
				c := t.resources[id].credit
				if c.Account == k.account && (c.Org == orgID || slices.ContainsFunc(c.Shares, func(s credit.Share) bool { return s.Org == orgID && s.Partner == a.link })) {
					l.Resources++
				}
			}
			links = append(links, l)
		}
	}
	return links, carrying
}

// MergeOrgLinks makes an organisation's links of every tenant from the
// answers of OrgLinksIn over them: each link counting, beside what it wins
// in its tenant, the Azure resources its account carries in any.
func MergeOrgLinks(links []OrgLink, carrying []Carrying) []OrgLink {
	carried := map[azure.AccountKey]int{}
	for _, c := range carrying {
		carried[azure.AccountKey{Tenant: c.Tenant, Account: c.Account}] += c.Resources
	}
	out := make([]OrgLink, len(links))
	for i, l := range links {
		l.Resources += carried[azure.AccountKey{Tenant: l.Tenant, Account: l.Account}]
		out[i] = l
	}
	slices.SortFunc(out, func(a, b OrgLink) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Account, b.Account))
	})
	return out
}

// ResourceState is what a snapshot of a tenant's inventory is compared
// with: a resource as it stands now.
type ResourceState struct {
	Kind, Environment, Owner string
	Coowners                 []string
}

// Inventory returns a tenant's environments (by type) and resources as
// they stand now, for an importer to compare a snapshot with.
func (e *Engine) Inventory(tenantID string) (envs map[string]string, resources map[string]ResourceState) {
	envs, resources = map[string]string{}, map[string]ResourceState{}
	t := e.tenants[tenantID]
	if t == nil {
		return envs, resources
	}
	for id, env := range t.envs {
		envs[id] = env.envType
	}
	for id, r := range t.resources {
		s := ResourceState{Kind: r.kind, Environment: r.env, Owner: r.owner}
		for acct := range r.coowners {
			s.Coowners = append(s.Coowners, acct)
		}
		slices.Sort(s.Coowners)
		resources[id] = s
	}
	return envs, resources
}
