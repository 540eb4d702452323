package azure

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
)

// Money is an exact amount, printed rounded half up to two decimals. It
// holds billionths while they hold it, as nearly every amount of a report
// is, and a rational otherwise.
type Money struct{ a amount }

// moneyOf is the amount r.
func moneyOf(r *big.Rat) Money { return Money{amount{rat: r}} }

// hoursOf is a duration in nanoseconds as hours.
func hoursOf(nanos int64) Money {
	if nanos >= 0 {
		a := amount{fixed: fixed{nanos: nanos / 3600}}
		a.addFrac(nanos%3600, 3600)
		return Money{a}
	}
	return moneyOf(big.NewRat(nanos, int64(time.Hour)))
}

// AddCost adds a cost: billionths, or when exact is not empty the decimal
// number as it was written.
func (m *Money) AddCost(nanos int64, exact string) {
	if exact == "" {
		m.a.addNanos(nanos)
		return
	}
	if r, ok := new(big.Rat).SetString(exact); ok {
		m.a.addRat(r)
	}
}

// Rat returns the exact amount.
func (m Money) Rat() *big.Rat { return m.a.Rat() }

// String prints the amount rounded half up to two decimals.
func (m Money) String() string { return string(m.append(nil)) }

func (m Money) append(b []byte) []byte {
	if m.a.rat == nil && m.a.nanos >= 0 && m.a.nanos <= math.MaxInt64-5_000_000 {
		// The fraction of a billionth, less than one, never carries a
		// half cent over: the billionths alone round the same.
		cents := (m.a.nanos + 5_000_000) / 10_000_000
		return append(strconv.AppendInt(b, cents/100, 10), '.', byte('0'+cents%100/10), byte('0'+cents%10))
	}
	return append(b, round2(m.Rat())...)
}

// MarshalJSON writes the rounded amount as a JSON number.
func (m Money) MarshalJSON() ([]byte, error) { return m.append(make([]byte, 0, 16)), nil }

// UnmarshalJSON reads an amount, as a client of the service does.
func (m *Money) UnmarshalJSON(b []byte) error {
	if n, ok := parseNanos(string(b)); ok {
		*m = Money{amount{fixed: fixed{nanos: n}}}
		return nil
	}
	r, ok := new(big.Rat).SetString(string(b))
	if !ok {
		return fmt.Errorf("amount %s is not a number", b)
	}
	*m = moneyOf(r)
	return nil
}

// round2 rounds a non-negative rational half up to two decimals.
func round2(r *big.Rat) string {
	n := new(big.Int).Mul(r.Num(), big.NewInt(100))
	n.Add(n.Mul(n, big.NewInt(2)), r.Denom())
	n.Quo(n, new(big.Int).Mul(r.Denom(), big.NewInt(2)))
	s := n.String()
	for len(s) < 3 {
		s = "0" + s
	}
	return s[:len(s)-2] + "." + s[len(s)-2:]
}

const dayNanos = int64(24 * time.Hour)

// Report is `pal report azure` (SPEC.md section 9.5).
type Report struct {
	Month         string         `json:"month"`
	Policy        Policy         `json:"azure_policy"`
	Resources     []ResourceRow  `json:"resources"`
	Subscriptions []Subscription `json:"subscriptions"`
	Orgs          []OrgRow       `json:"orgs"`
}

// ResourceRow is a location's recognition on one resource for a month.
type ResourceRow struct {
	Tenant          string `json:"tenant"`
	Resource        string `json:"resource"`
	Subscription    string `json:"subscription"`
	Org             string `json:"org"`
	Partner         string `json:"partner"`
	ACR             Money  `json:"acr"`
	PECEligibleCost Money  `json:"pec_eligible_cost"`
	RecognisedHours Money  `json:"recognised_hours"`
}

// Subscription is an organisation's recognition on one subscription.
type Subscription struct {
	Tenant          string `json:"tenant"`
	Subscription    string `json:"subscription"`
	Org             string `json:"org"`
	ACR             Money  `json:"acr"`
	PECEligibleCost Money  `json:"pec_eligible_cost"`
}

// OrgRow is an organisation's recognition for the month.
type OrgRow struct {
	Org             string `json:"org"`
	ACR             Money  `json:"acr"`
	PECEligibleCost Money  `json:"pec_eligible_cost"`
	PECCredit       Money  `json:"pec_credit"`
	Customers       int    `json:"customers"`
	Subscriptions   int    `json:"subscriptions"`
}

// dayCredit is what a location earns of one day of a resource.
type dayCredit struct {
	partner, org string
	// nanos is how long it was credited; weight the share-weighted
	// fraction of the day, nil when it is the whole day (a fast path).
	nanos  int64
	weight *big.Rat
	// active tells whether an active assignment recognised it all day.
	active bool
	// loc is the location's index in the locations of the part of a
	// month that keeps the day.
	loc int32
}

// orgDay is what an organisation earns of one day of a resource, counting
// each record once however many of its locations are credited (SPEC.md
// section 9.4): its weight sums, over the day, the shares of its credited
// locations capped at 1 (nil when it is the whole day); active tells
// whether, at every instant, one of its locations was recognised through
// an active assignment.
type orgDay struct {
	org    string
	weight *big.Rat
	active bool
}

// dayCredits is what one day of a resource earns: each credited
// location's row, and each organisation's once.
type dayCredits struct {
	locations []dayCredit
	orgs      []orgDay
}

// equal tells whether two days earn the same.
func (a *dayCredits) equal(b dayCredits) bool {
	sameWeight := func(x, y *big.Rat) bool { return x == nil && y == nil || x != nil && y != nil && x.Cmp(y) == 0 }
	return slices.EqualFunc(a.locations, b.locations, func(x, y dayCredit) bool {
		return x.partner == y.partner && x.org == y.org && x.nanos == y.nanos && x.active == y.active && sameWeight(x.weight, y.weight)
	}) && slices.EqualFunc(a.orgs, b.orgs, func(x, y orgDay) bool {
		return x.org == y.org && x.active == y.active && sameWeight(x.weight, y.weight)
	})
}

// dayCredits returns what each credited location, and each organisation,
// earns of day d.
func (q *query) dayCredits(tl []azPiece, d int32) dayCredits {
	day := span{event.DayStart(d), event.DayStart(d + 1)}
	var out []dayCredit
	var orgs []orgDay
	orgWeight := map[string]*big.Rat{}
	orgActive := map[string]int64{}
	find := func(p, org string) *dayCredit {
		for i := range out {
			if out[i].partner == p && out[i].org == org {
				return &out[i]
			}
		}
		out = append(out, dayCredit{partner: p, org: org, weight: new(big.Rat)})
		return &out[len(out)-1]
	}
	activeNanos := map[string]int64{}
	for i := piecesAfter(tl, day.from); i < len(tl) && tl[i].from.Before(day.to); i++ {
		s, ok := tl[i].clip(day)
		if !ok {
			continue
		}
		ns := s.to.Sub(s.from).Nanoseconds()
		activeOrgs := map[string]bool{}
		for _, r := range tl[i].recognised {
			if r.Active {
				activeNanos[r.Partner+"\x00"+r.Org] += ns
				activeOrgs[r.Org] = true
			}
		}
		for org := range activeOrgs {
			orgActive[org] += ns
		}
		who, den := q.policy.credited(tl[i].recognised)
		// The organisations credited, in the order of their first
		// location, each with its number of locations credited.
		var credited []string
		count := map[string]int{}
		for _, k := range who {
			r := tl[i].recognised[k]
			c := find(r.Partner, r.Org)
			c.nanos += ns
			c.weight.Add(c.weight, big.NewRat(ns, int64(den)*dayNanos))
			if count[r.Org]++; count[r.Org] == 1 {
				credited = append(credited, r.Org)
			}
		}
		for _, org := range credited {
			n := count[org]
			w := orgWeight[org]
			if w == nil {
				w = new(big.Rat)
				orgWeight[org] = w
				orgs = append(orgs, orgDay{org: org})
			}
			w.Add(w, big.NewRat(ns*int64(min(n, den)), int64(den)*dayNanos))
		}
	}
	whole := big.NewRat(1, 1)
	for i := range out {
		c := &out[i]
		c.active = activeNanos[c.partner+"\x00"+c.org] == dayNanos
		if c.weight.Cmp(whole) == 0 {
			c.weight = nil
		}
	}
	for i := range orgs {
		o := &orgs[i]
		o.active = orgActive[o.org] == dayNanos
		if o.weight = orgWeight[o.org]; o.weight.Cmp(whole) == 0 {
			o.weight = nil
		}
	}
	return dayCredits{out, orgs}
}

func totals[K comparable](rows map[K]*azTotals, k K) *azTotals {
	t := rows[k]
	if t == nil {
		t = &azTotals{}
		rows[k] = t
	}
	return t
}

// azureReport makes the report of the rows of resources (by location,
// sorted) and of subscriptions (by organisation, each record counted once),
// sums the subscriptions into organisations, and sorts them.
func (e *Engine) azureReport(month string, policy Policy, rows []ResourceRow, subs map[azSubKey]*azTotals) Report {
	rep := Report{Month: month, Policy: policy, Resources: rows, Subscriptions: []Subscription{}}
	if rep.Resources == nil {
		rep.Resources = []ResourceRow{}
	}
	for k, t := range subs {
		if t.acr.isZero() && t.pec.isZero() {
			continue
		}
		rep.Subscriptions = append(rep.Subscriptions, Subscription{Tenant: k.tenant, Subscription: k.sub, Org: k.org,
			ACR: Money{t.acr}, PECEligibleCost: Money{t.pec}})
	}
	sortSubscriptions(rep.Subscriptions)
	rep.Orgs = e.opts.orgTotals(rep.Subscriptions)
	return rep
}

// sortSubscriptions sorts a report's subscriptions by tenant, subscription
// and organisation: each is one organisation's on one subscription.
func sortSubscriptions(subs []Subscription) {
	slices.SortFunc(subs, func(a, b Subscription) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Subscription, b.Subscription), cmp.Compare(a.Org, b.Org))
	})
}

// orgTotals sums a report's subscriptions, exactly, into its organisations'
// totals, sorted: an organisation's consumed revenue and PEC-eligible cost,
// its partner earned credit, its customers and its subscriptions with
// revenue. A subscription counts each record once for an organisation
// however many of its locations are credited, so the sums do too.
func (o Options) orgTotals(subs []Subscription) []OrgRow {
	type totals struct {
		acr, pec  amount
		customers map[string]*amount
		subs      int
	}
	byOrg := map[string]*totals{}
	for _, s := range subs {
		t := byOrg[s.Org]
		if t == nil {
			t = &totals{customers: map[string]*amount{}}
			byOrg[s.Org] = t
		}
		t.acr.add(s.ACR.a)
		t.pec.add(s.PECEligibleCost.a)
		if t.customers[s.Tenant] == nil {
			t.customers[s.Tenant] = &amount{}
		}
		t.customers[s.Tenant].add(s.ACR.a)
		if s.ACR.a.Rat().Sign() > 0 {
			t.subs++
		}
	}
	rate := o.pecRate()
	rows := []OrgRow{}
	for org, t := range byOrg {
		acr := t.acr.Rat()
		if acr.Sign() == 0 {
			continue
		}
		n := 0
		for _, a := range t.customers {
			if a.Rat().Sign() > 0 {
				n++
			}
		}
		pec := t.pec.Rat()
		rows = append(rows, OrgRow{Org: org, ACR: moneyOf(acr), PECEligibleCost: moneyOf(pec),
			PECCredit: moneyOf(new(big.Rat).Mul(pec, rate)), Customers: n, Subscriptions: t.subs})
	}
	slices.SortFunc(rows, func(a, b OrgRow) int { return cmp.Compare(a.Org, b.Org) })
	return rows
}

// pecRate returns the partner earned credit rate.
func (o Options) pecRate() *big.Rat {
	if r, ok := new(big.Rat).SetString(o.PECRate); ok && o.PECRate != "" {
		return r
	}
	return big.NewRat(15, 100)
}

// IsPath reports whether a resource named on the command line or the
// API is an Azure path rather than a Power Platform resource ID.
func IsPath(resource string) bool { return strings.HasPrefix(resource, "/") }

// ExplainedAccount is an account acting through an assignment, in an
// explanation.
type ExplainedAccount struct {
	Account  string `json:"account"`
	Partner  string `json:"partner"`
	Org      string `json:"org"`
	Eligible bool   `json:"eligible"`
	// Reason is why the account does not count, a code as section 4 of
	// SPEC.md gives them (and credit.RoleEarnsNothing, credit.NotActivated for what the
	// assignment lacks); empty when it counts. Words say it, or how it
	// counts.
	Reason string `json:"reason"`
	Words  string `json:"words"`
}

// ExplainedAssignment is an assignment covering a resource, in an explanation.
type ExplainedAssignment struct {
	Assignment      string             `json:"assignment"`
	Principal       string             `json:"principal"`
	PrincipalTenant string             `json:"principal_tenant"`
	Role            string             `json:"role"`
	RoleEligible    bool               `json:"role_eligible"`
	Scope           string             `json:"scope"`
	PIM             string             `json:"pim"`
	Active          bool               `json:"active"`
	Accounts        []ExplainedAccount `json:"accounts"`
}

// Recognised is a recognised location, in an explanation.
type Recognised struct {
	Partner string    `json:"partner"`
	Org     string    `json:"org"`
	Since   time.Time `json:"since"`
}

// Explanation says who is recognised and credited for an Azure
// resource at an instant, assignment by assignment (section 9.5).
type Explanation struct {
	Tenant      string                `json:"tenant"`
	Resource    string                `json:"resource"`
	At          time.Time             `json:"at"`
	Policy      Policy                `json:"azure_policy"`
	Assignments []ExplainedAssignment `json:"assignments"`
	Recognised  []Recognised          `json:"recognised"`
	Credited    []credit.Share        `json:"credited"`
	OrgNames    map[string]string     `json:"org_names,omitempty"`
}

// Explain explains an Azure resource (a canonical or raw path) of a
// tenant at an instant.
func (e *Engine) Explain(tenantID, path string, at time.Time) (Explanation, error) {
	return e.explain(e.query(), tenantID, path, at)
}

// explain explains through a query whose routes and timelines it
// shares with the caller's other questions.
func (e *Engine) explain(q *query, tenantID, path string, at time.Time) (Explanation, error) {
	sc, err := event.ParseResourcePath(path)
	if err != nil {
		return Explanation{}, err
	}
	x := Explanation{Tenant: tenantID, Resource: sc.Path, At: at, Policy: q.policy,
		Assignments: []ExplainedAssignment{}, Recognised: []Recognised{}, Credited: []credit.Share{}, OrgNames: map[string]string{}}
	t := e.tenants[tenantID]
	if t == nil {
		return x, nil
	}
	covs, _ := q.coverings(tenantID, t, sc)
	for _, c := range covs {
		a := c.a
		if a.From.After(at) || !endOr(a.To).After(at) || e.principalGone(a, at) {
			continue
		}
		if c.spans != nil && !slices.ContainsFunc(c.spans, func(s span) bool { return !s.from.After(at) && s.to.After(at) }) {
			continue
		}
		x.Assignments = append(x.Assignments, e.explainAssignment(q, a, at))
	}
	slices.SortFunc(x.Assignments, func(a, b ExplainedAssignment) int { return cmp.Compare(a.Assignment, b.Assignment) })
	if p := pieceAt(q.timeline(tenantID, sc), at); p != nil {
		for _, r := range p.recognised {
			x.Recognised = append(x.Recognised, Recognised{r.Partner, r.Org, r.Since})
		}
		x.Credited = sharesOf(q.policy, p.recognised)
	}
	dir := e.accounts.Directory()
	for _, r := range x.Recognised {
		x.OrgNames[r.Org] = dir.Org(r.Org).Name
	}
	for _, a := range x.Assignments {
		for _, acct := range a.Accounts {
			if o := dir.Org(acct.Org); o != nil {
				x.OrgNames[acct.Org] = o.Name
			}
		}
	}
	return x, nil
}

// sharesOf lists the locations a policy credits, with their shares.
func sharesOf(p Policy, rec []recognition) []credit.Share {
	who, den := p.credited(rec)
	out := make([]credit.Share, 0, len(who))
	for _, k := range who {
		out = append(out, credit.Share{Partner: rec[k].Partner, Org: rec[k].Org, Share: 1 / float64(den)})
	}
	return out
}

// principalGone reports whether an assignment's principal account was
// deleted by an instant, which ends the assignment.
func (e *Engine) principalGone(a *Assignment, at time.Time) bool {
	states, _ := e.accounts.AccountStates(a.PrincipalTenant, a.Principal)
	return stateAt(states, at).Deleted
}

// orgAt returns the organisation holding a location ID at an instant.
func (q *query) orgAt(partner string, at time.Time) string {
	for _, lp := range q.locs()[partner] {
		if !lp.from.After(at) && lp.to.After(at) {
			return lp.org
		}
	}
	return ""
}

func (e *Engine) explainAssignment(q *query, a *Assignment, at time.Time) ExplainedAssignment {
	roleOK := e.opts.roles().Eligible(a.Role)
	pim := event.PIMActive
	active := true
	if a.Eligible {
		pim = event.PIMEligible
		active = slices.ContainsFunc(a.windows(), func(w window) bool { return !w.from.After(at) && w.to.After(at) })
	}
	x := ExplainedAssignment{Assignment: a.ID, Principal: a.Principal, PrincipalTenant: a.PrincipalTenant, Role: a.Role,
		RoleEligible: roleOK, Scope: a.Scope.Path, PIM: pim, Active: active, Accounts: []ExplainedAccount{}}
	for _, m := range e.members(a) {
		if m.from.After(at) || !m.to.After(at) {
			continue
		}
		states, ok := e.accounts.AccountStates(a.PrincipalTenant, m.account)
		if !ok {
			continue
		}
		st := stateAt(states, at)
		if m.group != "" && st.Link == "" {
			continue
		}
		v := ExplainedAccount{Account: m.account, Partner: st.Link}
		if st.Link != "" {
			v.Org = q.orgAt(st.Link, at)
		}
		switch {
		case !roleOK && strings.Contains(strings.ToLower(a.Role), "reader"):
			v.Reason, v.Words = credit.RoleEarnsNothing, fmt.Sprintf("%s can only read: it earns no recognition", a.Role)
		case !roleOK:
			v.Reason, v.Words = credit.RoleEarnsNothing, fmt.Sprintf("%s is not a role that may change anything: it earns no recognition", a.Role)
		case !active:
			v.Reason, v.Words = credit.NotActivated, credit.Words(credit.NotActivated)
		case st.Disabled:
			v.Reason, v.Words = credit.AccountDisabled, credit.Words(credit.AccountDisabled)
		case st.Link == "":
			v.Reason, v.Words = credit.NoLink, credit.Words(credit.NoLink)
		case v.Org == "":
			v.Reason, v.Words = credit.PartnerIDNotEligible, credit.Words(credit.PartnerIDNotEligible)
		default:
			v.Eligible = true
			via := ""
			if m.group != "" {
				via = fmt.Sprintf(" as a member of group %s", m.group)
			}
			v.Words = fmt.Sprintf("counts: %s on %s%s, linked to %s", a.Role, a.Scope.Path, via, st.Link)
			if a.PrincipalTenant != a.Tenant {
				v.Words = fmt.Sprintf("counts: the link is in the partner's own tenant %s through Azure Lighthouse; %s on %s%s, linked to %s", a.PrincipalTenant, a.Role, a.Scope.Path, via, st.Link)
			}
		}
		x.Accounts = append(x.Accounts, v)
	}
	return x
}

// Holding is who is credited for an Azure resource at an instant, as its
// attribution row says it (section 9.5): the location of the latest
// association, and the shares the Azure policy credits. Partner is empty
// when none is recognised.
type Holding struct {
	Resource              string
	Partner, Org, Account string
	Since                 time.Time
	Shares                []credit.Share
}

// The kind and workload of Azure resources in attribution rows.
const (
	Kind     = "azure_resource"
	Workload = "azure"
)

// Holdings returns who is credited, at an instant, for each of a tenant's
// Azure resources with consumption.
func (e *Engine) Holdings(tenantID string, at time.Time) []Holding {
	t := e.tenants[tenantID]
	if t == nil {
		return nil
	}
	q := e.query()
	out := make([]Holding, 0, len(t.Usage.Paths))
	for _, path := range t.Usage.Paths {
		sc, _ := event.ParseScope(path)
		h := Holding{Resource: path}
		if p := pieceAt(q.timeline(tenantID, sc), at); p != nil {
			best := p.recognised[latestIndex(p.recognised)]
			h.Partner, h.Org, h.Account, h.Since = best.Partner, best.Org, best.Account, best.Since
			h.Shares = sharesOf(q.policy, p.recognised)
		}
		out = append(out, h)
	}
	return out
}

// Interval is a span over which a location is credited for an Azure
// resource, with its share. To is zero while it goes on.
type Interval struct {
	From, To time.Time
	Partner  string
	Org      string
	Account  string
	Share    float64
}

// Timeline calls fn with the credit intervals of every Azure resource
// with consumption, in the order of tenant then resource, until fn returns
// false: one interval per credited location and maximal span with one
// share, ordered by start then location.
func (e *Engine) Timeline(fn func(tenant, resource string, h []Interval) bool) {
	e.eachResource(func(q *query, tenant, resource string, tl []azPiece) bool {
		return fn(tenant, resource, q.policy.intervals(tl))
	})
}

// eachResource calls fn with the recognition timeline of every Azure
// resource with consumption, in the order of tenant then resource, until
// fn returns false.
func (e *Engine) eachResource(fn func(q *query, tenant, resource string, tl []azPiece) bool) {
	q := e.query()
	var keys [][2]string
	for tid, t := range e.tenants {
		for _, p := range t.Usage.Paths {
			keys = append(keys, [2]string{tid, p})
		}
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	for _, k := range keys {
		sc, _ := event.ParseScope(k[1])
		if !fn(q, k[0], k[1], q.timeline(k[0], sc)) {
			return
		}
	}
}

// History returns the credit intervals of one Azure resource of a
// tenant, as Timeline gives them.
func (e *Engine) History(tenantID, path string) ([]Interval, error) {
	sc, err := event.ParseResourcePath(path)
	if err != nil {
		return nil, err
	}
	q := e.query()
	return q.policy.intervals(q.timeline(tenantID, sc)), nil
}

// intervals turns a timeline into the maximal spans of each credited
// location.
func (p Policy) intervals(tl []azPiece) []Interval {
	var out []Interval
	open := map[string]int{} // partner → index in out of its open interval
	for _, pc := range tl {
		seen := map[string]bool{}
		for _, s := range sharesOf(p, pc.recognised) {
			seen[s.Partner] = true
			if i, ok := open[s.Partner]; ok && out[i].To.Equal(pc.from) && out[i].Org == s.Org && out[i].Share == s.Share {
				out[i].To = pc.to
				continue
			}
			acct := pc.recognised[slices.IndexFunc(pc.recognised, func(r recognition) bool { return r.Partner == s.Partner })].Account
			open[s.Partner] = len(out)
			out = append(out, Interval{From: pc.from, To: pc.to, Partner: s.Partner, Org: s.Org, Account: acct, Share: s.Share})
		}
		for partner := range open {
			if !seen[partner] {
				delete(open, partner)
			}
		}
	}
	for i := range out {
		if out[i].To.Equal(forever) {
			out[i].To = time.Time{}
		}
	}
	slices.SortStableFunc(out, func(a, b Interval) int {
		return cmp.Or(a.From.Compare(b.From), cmp.Compare(a.Partner, b.Partner))
	})
	return out
}

// LiveAssignment is a role assignment that has not ended, as an importer
// compares a snapshot with the log.
type LiveAssignment struct {
	ID, Principal, PrincipalTenant, Role, Scope string
	Eligible                                    bool
	From                                        time.Time
}

// LiveAssignments lists a tenant's role assignments that have not ended,
// by ID.
func (e *Engine) LiveAssignments(tenantID string) []LiveAssignment {
	out := []LiveAssignment{}
	t := e.tenants[tenantID]
	if t == nil {
		return out
	}
	for _, a := range t.Assignments {
		if a.To.IsZero() && !e.principalGone(a, forever) {
			out = append(out, LiveAssignment{a.ID, a.Principal, a.PrincipalTenant, a.Role, a.Scope.Path, a.Eligible, a.From})
		}
	}
	slices.SortFunc(out, func(a, b LiveAssignment) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// AssignmentEnd returns when a tenant's role assignment ended (removed,
// or its principal deleted), and whether the log knows it at all; a zero
// end is a live assignment. Assignment IDs are never reused.
func (e *Engine) AssignmentEnd(tenantID, id string) (time.Time, bool) {
	t := e.tenants[tenantID]
	if t == nil || t.Assignments[id] == nil {
		return time.Time{}, false
	}
	a := t.Assignments[id]
	if a.To.IsZero() && e.principalGone(a, forever) {
		states, _ := e.accounts.AccountStates(a.PrincipalTenant, a.Principal)
		for _, st := range states {
			if st.Deleted {
				return st.At, true
			}
		}
	}
	return a.To, true
}

// KnownUntil returns the time of the latest event of a tenant's
// Azure directory and roles (consumption aside): what an import of a
// snapshot must not date its changes before.
func (e *Engine) KnownUntil(tenantID string) time.Time {
	if t := e.tenants[tenantID]; t != nil {
		return t.Latest
	}
	return time.Time{}
}

// Placements returns where a tenant's management groups and subscriptions
// are placed now ("" for the root).
func (e *Engine) Placements(tenantID string) (groups, subscriptions map[string]string) {
	groups, subscriptions = map[string]string{}, map[string]string{}
	if t := e.tenants[tenantID]; t != nil {
		for g, h := range t.Parents {
			groups[g] = placedUnder(h)
		}
		for s, h := range t.Subs {
			subscriptions[s] = placedUnder(h)
		}
	}
	return groups, subscriptions
}

// GroupMembers lists the accounts that are members of a tenant's security
// group now.
func (e *Engine) GroupMembers(tenantID, group string) []string {
	out := []string{}
	if e.IsGroup(tenantID, group) {
		for acct := range e.tenants[tenantID].Groups[group].current {
			out = append(out, acct)
		}
	}
	slices.Sort(out)
	return out
}
