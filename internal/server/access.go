package server

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
)

// What each principal may see and push, in one place: every handler asks
// these, and the store is asked for no more than they allow.

// pushRefused says why p may not push ev, or "" when it may (the matrix
// of SPEC.md section 8).
func pushRefused(p Principal, ev *event.Event) string {
	switch p.Role {
	case store.RoleOperator:
		return ""
	case store.RoleTenantAdmin:
		switch ev.Type {
		case event.PalLinked, event.PalRemoved, event.PartnerRegistered, event.PartnerMetrics:
		default:
			if ev.Tenant != p.Tenant {
				break
			}
			return otherPrincipal(p, ev)
		}
	case store.RoleAccount:
		if (ev.Type == event.PalLinked || ev.Type == event.PalRemoved) && ev.Tenant == p.Tenant && ev.Account == p.Account {
			return ""
		}
	}
	return fmt.Sprintf("a %s may not push a %s event for tenant %q", p.Role, ev.Type, ev.Tenant)
}

// otherPrincipal says why a tenant administrator may not name, in a line
// it pushes or asks a what-if of, a principal of another tenant, or "".
// An Azure Lighthouse delegation is checked against the principal
// tenant's accounts as they stand: its verdict, and the explanations after
// it, would tell one customer another tenant's accounts and links. The
// operator, who reads every tenant, pushes delegations.
func otherPrincipal(p Principal, ev *event.Event) string {
	if p.Role != store.RoleTenantAdmin || ev.PrincipalTenant == "" || ev.PrincipalTenant == p.Tenant {
		return ""
	}
	return fmt.Sprintf("a %s may not name a principal of another tenant (%q): an Azure Lighthouse delegation is pushed by the operator (pal collect or pal import lighthouse with the operator's token)", p.Role, ev.PrincipalTenant)
}

// tenantScope returns the one tenant whose records p reads, and true, for a
// tenant administrator; the operator reads every tenant's.
func (p Principal) tenantScope() (string, bool) {
	if p.Role != store.RoleTenantAdmin {
		return "", false
	}
	return p.Tenant, true
}

// changeFilter is what p may read of the feed of credit changes: a
// partner reader the changes its organisation gains or loses by, a tenant
// administrator its tenant's, the operator all; the operator and a partner
// reader one tenant's when they name one; an account none.
func (p Principal) changeFilter(tenant string) (store.ChangeFilter, error) {
	switch p.Role {
	case store.RoleOperator:
		return store.ChangeFilter{Tenant: tenant}, nil
	case store.RoleTenantAdmin:
		return store.ChangeFilter{Tenant: p.Tenant}, p.ownTenant(tenant)
	case store.RolePartnerReader:
		// Its organisation's changes, in the one tenant it names.
		return store.ChangeFilter{Org: p.Org, Tenant: tenant}, nil
	}
	return store.ChangeFilter{}, errorf(codeForbidden, "a %s reads no credit changes", p.Role)
}

// ownTenant refuses a tenant administrator's ?tenant= that names another
// tenant: answering its own instead would let a client believe it read the
// one it named.
func (p Principal) ownTenant(asked string) error {
	if asked != "" && asked != p.Tenant {
		return errorf(codeForbidden, "a tenant administrator reads its own tenant, %s, not %s: leave tenant= out or name its own", p.Tenant, asked)
	}
	return nil
}

// webhookOwner is whose changes p's webhooks carry: a partner reader's
// organisation's, a tenant administrator's tenant's.
func (p Principal) webhookOwner() store.ChangeFilter {
	if p.Role == store.RoleTenantAdmin {
		return store.ChangeFilter{Tenant: p.Tenant}
	}
	return store.ChangeFilter{Org: p.Org}
}

// webhookOwnerName names the owner of p's webhooks, for messages.
func (p Principal) webhookOwnerName() string {
	if p.Role == store.RoleTenantAdmin {
		return "tenant " + p.Tenant
	}
	return "organisation " + p.Org
}

// seesCredit reports whether p may see a credit held by holder or shared
// as shares: a partner reader the credits its organisation has, whole or
// in part; the other readers all of their tenants'.
func (p Principal) seesCredit(holder string, shares []credit.Share) bool {
	return p.Role != store.RolePartnerReader || credited(p.Org, holder, shares)
}

// credited reports whether a credit, held by holder or shared as shares,
// goes whole or in part to org.
func credited(org, holder string, shares []credit.Share) bool {
	return holder == org || slices.ContainsFunc(shares, func(sh credit.Share) bool { return sh.Org == org })
}

// readsOrg says whether p may read what of an organisation (its score, its
// diagnosis) only it and the operator read: the operator any, a partner
// reader its own.
func (p Principal) readsOrg(org, what string) error {
	if p.Role == store.RolePartnerReader && org != p.Org {
		return errorf(codeForbidden, "a partner reader reads its own organisation's %s only", what)
	}
	return nil
}

// seesRow reports whether p may see a report's row of a tenant and an
// organisation: a partner reader its organisation's, a tenant
// administrator its tenant's.
func (p Principal) seesRow(tenant, org string) bool {
	return (p.Role == store.RolePartnerReader && org == p.Org) || (p.Role == store.RoleTenantAdmin && tenant == p.Tenant)
}

// seesTotal reports whether p may see an organisation's totals: a partner
// reader its own. A tenant administrator sees none: they sum the
// organisation's other customers too.
func (p Principal) seesTotal(org string) bool {
	return p.Role == store.RolePartnerReader && org == p.Org
}

// kept returns the rows keep keeps, an empty list rather than none.
func kept[T any](rows []T, keep func(T) bool) []T {
	out := []T{}
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// filterMonthly keeps what a partner reader or a tenant administrator may
// see of a monthly report.
func filterMonthly(m metrics.Monthly, p Principal) metrics.Monthly {
	if p.Role == store.RoleOperator {
		return m
	}
	return metrics.Monthly{Month: m.Month,
		Resources: kept(m.Resources, func(r metrics.ResourceRow) bool { return p.seesRow(r.Tenant, r.Org) }),
		Workloads: kept(m.Workloads, func(r metrics.WorkloadRow) bool { return p.seesRow(r.Tenant, r.Org) }),
		Orgs:      kept(m.Orgs, func(r metrics.OrgRow) bool { return p.seesTotal(r.Org) })}
}

// filterAzure keeps what a partner reader or a tenant administrator may
// see of an Azure report.
func filterAzure(rep azure.Report, p Principal) azure.Report {
	if p.Role == store.RoleOperator {
		return rep
	}
	return azure.Report{Month: rep.Month, Policy: rep.Policy,
		Resources:     kept(rep.Resources, func(r azure.ResourceRow) bool { return p.seesRow(r.Tenant, r.Org) }),
		Subscriptions: kept(rep.Subscriptions, func(r azure.Subscription) bool { return p.seesRow(r.Tenant, r.Org) }),
		Orgs:          kept(rep.Orgs, func(r azure.OrgRow) bool { return p.seesTotal(r.Org) })}
}

// resourceParams reads the tenant and resource a request is about; a
// tenant administrator asks of its own tenant only.
func resourceParams(r *http.Request, p Principal) (tenant, resource string, err error) {
	q := r.URL.Query()
	tenant, resource = q.Get("tenant"), q.Get("resource")
	if tenant == "" || resource == "" {
		return "", "", errorf(codeBadRequest, "tenant and resource are required: %s?tenant=T&resource=R", r.URL.Path)
	}
	if p.Role == store.RoleTenantAdmin {
		if err := p.ownTenant(tenant); err != nil {
			return "", "", err
		}
	}
	return tenant, resource, nil
}

// tenantParam reads the tenant a request is about: a tenant
// administrator's own, or the one named.
func tenantParam(r *http.Request, p Principal) (string, error) {
	tenant := r.URL.Query().Get("tenant")
	if p.Role == store.RoleTenantAdmin {
		if err := p.ownTenant(tenant); err != nil {
			return "", err
		}
		tenant = p.Tenant
	}
	if tenant == "" {
		return "", errorf(codeBadRequest, "tenant is required: %s?tenant=T", r.URL.Path)
	}
	return tenant, nil
}

// linksScope reads whose links a request asks for: a tenant's (its
// administrator's own, or the operator's ?tenant=), or an organisation's in
// every tenant (a partner reader's own, or the operator's ?org=), which a
// ?tenant= narrows to one tenant.
func linksScope(r *http.Request, p Principal) (tenant, org string, err error) {
	q := r.URL.Query()
	switch p.Role {
	case store.RolePartnerReader:
		if o := q.Get("org"); o != "" && o != p.Org {
			return "", "", errorf(codeForbidden, "a partner reader reads its own organisation's links only")
		}
		return q.Get("tenant"), p.Org, nil
	case store.RoleOperator:
		if o := q.Get("org"); o != "" {
			return q.Get("tenant"), o, nil
		}
	default:
		if q.Get("org") != "" {
			return "", "", errorf(codeBadRequest, "org is for a partner reader or the operator: a tenant administrator reads its own tenant's links")
		}
	}
	if q.Get("tenant") == "" && p.Role == store.RoleOperator {
		return "", "", errorf(codeBadRequest, "tenant or org is required: %s?tenant=T, or ?org=ORG for an organisation's links in every tenant", r.URL.Path)
	}
	tenant, err = tenantParam(r, p)
	return tenant, "", err
}

// Pages are at most maxPage entries long, defaultPage unless asked.
const (
	defaultPage = 1000
	maxPage     = 10000
)

// pageParams reads the place a page starts after (?after= or ?since=, a
// sequence number, 0 by default) and its length (?limit=).
func pageParams(r *http.Request, name string) (after int64, limit int, err error) {
	q := r.URL.Query()
	if v := q.Get(name); name != "" && v != "" {
		after, err = strconv.ParseInt(v, 10, 64)
		if err != nil || after < 0 {
			return 0, 0, errorf(codeBadRequest, "%s=%q is not a sequence number: give the next of the last answer, or 0", name, v)
		}
	}
	limit = defaultPage
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > maxPage {
			return 0, 0, errorf(codeBadRequest, "limit=%q is not a page length: give a number from 1 to %d", v, maxPage)
		}
	}
	return after, limit, nil
}

// directory names partners and organisations: the engine, live or folded
// up to an instant.
type directory interface {
	PartnerOrg(partner string) string
	OrgName(org string) string
}

// shownAccount is the one rule of what a caller sees of an account, on
// every route and page: an operator and a tenant administrator see it as
// it is; a partner reader sees its own organisation's accounts by name,
// another partner's as "an account of partner P (Name)", and a customer's
// own (one that links no partner) as "a customer account". partner is the
// partner ID the account links at the instant shown, "" when none.
func (p Principal) shownAccount(d directory, account, partner string) string {
	if p.Role != store.RolePartnerReader || account == "" {
		return account
	}
	if partner == "" {
		return customerAccount
	}
	if d.PartnerOrg(partner) == p.Org {
		return account
	}
	return "an account of " + partnerWords(d, partner)
}

// customerAccount is how a partner reader sees an account that links no
// partner: the customer's own.
const customerAccount = "a customer account"

// partnerWords names a partner ID with its organisation's name.
func partnerWords(d directory, partner string) string {
	if name := d.OrgName(d.PartnerOrg(partner)); name != "" {
		return "partner " + partner + " (" + name + ")"
	}
	return "partner " + partner
}

// asPartner reports whether p reads answers as a partner does: of its own
// organisation's accounts by name, of other organisations' and customers'
// only what shownAccount shows. Every answer that names accounts is
// filtered by it, here and in the words of explanations.
func (p Principal) asPartner() bool { return p.Role == store.RolePartnerReader }

// shownExplanation is what p sees of an explanation: the accounts named as
// shownAccount says, each by the partner it links at the instant (linkOf
// for the accounts the explanation does not say it of).
func (p Principal) shownExplanation(d directory, x attribution.Explanation, linkOf func(account string) string) attribution.Explanation {
	if !p.asPartner() {
		return x
	}
	x.Candidates = slices.Clone(x.Candidates)
	for i, c := range x.Candidates {
		x.Candidates[i].Account = p.shownAccount(d, c.Account, c.Partner)
	}
	for _, w := range []**attribution.Winner{&x.Winner, &x.WouldBeWinner} {
		if *w != nil {
			v := **w
			v.Account = p.shownAccount(d, v.Account, v.Partner)
			*w = &v
		}
	}
	var others []string
	for _, a := range x.NotAttributable {
		others = append(others, p.shownAccount(d, a, linkOf(a)))
	}
	x.NotAttributable = others
	return x
}

// shownAzure is what p sees of an Azure explanation: accounts as
// shownAccount says; a principal that is a group, as a group of the
// customer unless it is the caller's own account.
func (p Principal) shownAzure(d directory, x azure.Explanation) azure.Explanation {
	if !p.asPartner() {
		return x
	}
	x.Assignments = slices.Clone(x.Assignments)
	for i, a := range x.Assignments {
		principal := "a group of the customer"
		for _, acct := range a.Accounts {
			if acct.Account == a.Principal {
				principal = p.shownAccount(d, acct.Account, acct.Partner)
			}
		}
		if principal != a.Principal {
			a.Principal = principal
			if a.PrincipalTenant != x.Tenant {
				a.PrincipalTenant = ""
			}
		}
		// An assignment's ID may name its principal: shown only of an
		// assignment through which one of the caller's accounts acts.
		if !slices.ContainsFunc(a.Accounts, func(acct azure.ExplainedAccount) bool { return p.ownsPartner(d, acct.Partner) }) {
			a.Assignment = ""
		}
		a.Accounts = slices.Clone(a.Accounts)
		for j, acct := range a.Accounts {
			a.Accounts[j].Account = p.shownAccount(d, acct.Account, acct.Partner)
			if !p.ownsPartner(d, acct.Partner) {
				// Another's words name its group and its own tenant.
				a.Accounts[j].Words = "counts"
				if acct.Reason != "" {
					a.Accounts[j].Words = credit.Words(acct.Reason)
				}
			}
		}
		x.Assignments[i] = a
	}
	return x
}

// ownsPartner reports whether a partner ID is one of p's organisation's,
// now or once.
func (p Principal) ownsPartner(d directory, partner string) bool {
	return partner != "" && p.Org != "" && d.PartnerOrg(partner) == p.Org
}

// shownHolder is what p sees of a holder of credit (a change's side).
func (p Principal) shownHolder(d directory, h attribution.Holder) attribution.Holder {
	h.Account = p.shownAccount(d, h.Account, h.Partner)
	return h
}

// orgAsked is the organisation a question of p is about: the one asked,
// or a partner reader's own when it asks of none.
func (p Principal) orgAsked(asked string) string {
	if p.Role == store.RolePartnerReader && asked == "" {
		return p.Org
	}
	return asked
}

// imports reports whether an event p pushes is an import: what the
// operator pushes of links, since only the account itself links.
func (p Principal) imports(ev *event.Event) bool {
	return p.Role == store.RoleOperator && (ev.Type == event.PalLinked || ev.Type == event.PalRemoved)
}

// scopeOf reads what a request's page is about, as p may ask: a partner
// reader its own organisation; a tenant administrator its own tenant; the
// operator an ?org=, a ?tenant=, or everything.
func scopeOf(q map[string][]string, p Principal) (scope, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	org, tenant := get("org"), get("tenant")
	switch p.Role {
	case store.RolePartnerReader:
		if org != "" && org != p.Org {
			return scope{}, errorf(codeForbidden, "a partner reader reads its own organisation's pages only")
		}
		if tenant != "" {
			return scope{}, errorf(codeBadRequest, "tenant is for a tenant administrator or the operator: a partner reader's pages are its organisation's")
		}
		return scope{org: p.Org}, nil
	case store.RoleTenantAdmin:
		if org != "" {
			return scope{}, errorf(codeBadRequest, "org is for a partner reader or the operator: a tenant administrator's pages are its tenant's")
		}
		if tenant != "" && tenant != p.Tenant {
			return scope{}, errorf(codeForbidden, "a tenant administrator reads its own tenant's pages only")
		}
		return scope{tenant: p.Tenant}, nil
	case store.RoleOperator:
		if org != "" && tenant != "" {
			return scope{}, errorf(codeBadRequest, "org and tenant do not go together: a page is an organisation's or a tenant's")
		}
		return scope{org: org, tenant: tenant}, nil
	}
	return scope{}, errorf(codeForbidden, "a %s reads no pages but its own link", p.Role)
}

// mayRead says whether p may read of a resource: anyone who reads its
// tenant, and a partner reader whose organisation is concerned at the
// instant asked (credited, or one of its accounts a candidate) or was ever
// credited for it.
func (s *Server) mayRead(r *http.Request, p Principal, tenant, resource string, concerned bool) error {
	if concerned || p.Role != store.RolePartnerReader {
		return nil
	}
	ever := false
	err := s.read(r.Context(), func(st *fold.State) error {
		if azure.IsPath(resource) {
			h, _ := st.Engine().Azure().History(tenant, resource)
			ever = slices.ContainsFunc(h, func(iv azure.Interval) bool { return iv.Org == p.Org })
			return nil
		}
		ever = slices.ContainsFunc(st.Engine().History(tenant, resource), func(iv attribution.Interval) bool {
			return credited(p.Org, iv.Credit.Org, iv.Credit.Shares)
		})
		return nil
	})
	if err != nil {
		return err
	}
	if !ever {
		return errorf(codeForbidden, "a partner reader reads of the resources its organisation is or was credited for, or on which its accounts have a role")
	}
	return nil
}

// candidateAt reports whether one of a partner reader's accounts is a
// candidate for a resource at ?at= (now by default): a Power Platform
// resource's attributable account, an Azure resource's account through an
// assignment covering it.
func (s *Server) candidateAt(r *http.Request, p Principal, tenant, resource string) (bool, error) {
	if p.Role != store.RolePartnerReader {
		return true, nil
	}
	found := false
	if azure.IsPath(resource) {
		at, err := parseAt(r)
		if err != nil {
			return false, err
		}
		err = s.read(r.Context(), func(st *fold.State) error {
			when := st.Engine().Now()
			if at != nil {
				when = *at
			}
			x, err := st.Engine().Azure().Explain(tenant, resource, when)
			if err != nil {
				return errorf(codeBadRequest, "resource: %v", err)
			}
			found = slices.ContainsFunc(x.Assignments, func(a azure.ExplainedAssignment) bool {
				return slices.ContainsFunc(a.Accounts, func(acct azure.ExplainedAccount) bool { return p.ownsPartner(st.Engine(), acct.Partner) })
			})
			return nil
		})
		return found, err
	}
	err := s.explainAt(r, tenant, func(e *attribution.Engine, when time.Time) error {
		found = p.hasRole(e, tenant, e.Explain(tenant, resource, when))
		return nil
	})
	return found, err
}
