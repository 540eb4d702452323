package azure

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
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
	if nanos%3600 == 0 {
		return Money{amount{nanos: nanos / 3600}}
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
func (m Money) String() string {
	if m.a.rat == nil && m.a.nanos >= 0 {
		cents := (m.a.nanos + 5_000_000) / 10_000_000
		return fmt.Sprintf("%d.%02d", cents/100, cents%100)
	}
	return round2(m.Rat())
}

// MarshalJSON writes the rounded amount as a JSON number.
func (m Money) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalJSON reads an amount, as a client of the service does.
func (m *Money) UnmarshalJSON(b []byte) error {
	if n, ok := parseNanos(string(b)); ok {
		*m = Money{amount{nanos: n}}
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
	i, _ := slices.BinarySearchFunc(tl, day.from, func(p azPiece, t time.Time) int {
		if p.to.After(t) {
			return 1
		}
		return -1
	})
	for ; i < len(tl) && tl[i].from.Before(day.to); i++ {
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
		credited := map[string]int{}
		for _, k := range who {
			r := tl[i].recognised[k]
			c := find(r.Partner, r.Org)
			c.nanos += ns
			c.weight.Add(c.weight, big.NewRat(ns, int64(den)*dayNanos))
			credited[r.Org]++
		}
		for org, n := range credited {
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

// part is what a record of cost earns at a weight (nil: whole).
func (c *consumption) part(rec CostRecord, weight *big.Rat) amount {
	var part amount
	switch {
	case weight == nil && rec.Nanos >= 0:
		part.addNanos(rec.Nanos)
	case weight == nil:
		part.addRat(c.cost(rec))
	default:
		part.addRat(new(big.Rat).Mul(c.cost(rec), weight))
	}
	return part
}

type azSubKey struct{ tenant, sub, org string }

type azTotals struct {
	acr, pec amount
	nanos    int64
}

// Report computes the Azure report of a month (YYYY-MM) from the
// consumption records the engine holds.
func (e *Engine) Report(month string) (Report, error) {
	m, err := e.Month(month)
	if err != nil {
		return Report{}, err
	}
	m.addKept()
	return m.report(), nil
}

// Month sums the consumption records of a month as they are read,
// without keeping them: each is credited by its resource's recognition on
// its day, computed once a timeline and day and shared by the resources of
// the same assignments. What it holds grows with the resources, never with
// the records. Report feeds it the engine's records; the command line
// feeds it a consumption file's rows (Slot), and Report adds the engine's
// own records of the month.
type Month struct {
	e           *Engine
	q           *query
	month       string
	first, next int32
	res         map[[2]string]*resMonth
	records     int
	// repeated is set when a record repeats the resource, day and meter of
	// one added before: the later replaces the earlier (section 9.2), which
	// sums kept as they go cannot do.
	repeated bool
}

// resMonth is a resource's sums for the month.
type resMonth struct {
	tenant, path, sub string
	te                *timelineEntry
	// days are the month's days with a record, by bit; seen the same by
	// meter.
	days uint32
	seen [8]uint32
	locs []locTotals
	orgs []orgTotals
}

// Month returns an empty sum of a month (YYYY-MM).
func (e *Engine) Month(month string) (*Month, error) {
	start, err := time.Parse("2006-01", month)
	if err != nil {
		return nil, fmt.Errorf("month %q is not YYYY-MM", month)
	}
	return &Month{e: e, q: e.query(), month: month, res: map[[2]string]*resMonth{},
		first: event.DayOf(start), next: event.DayOf(start.AddDate(0, 1, 0))}, nil
}

// resource returns the sums of a resource (a canonical path) of a tenant,
// made on first use.
func (m *Month) resource(tenant, path string) *resMonth {
	k := [2]string{tenant, path}
	r := m.res[k]
	if r == nil {
		sc, _ := event.ParseScope(path)
		r = &resMonth{tenant: tenant, path: path, sub: sc.Subscription, te: m.q.entry(tenant, sc)}
		m.res[k] = r
	}
	return r
}

// credit adds a record of a resource's day and meter; part says what it
// earns at a weight (nil: the whole of it).
func (m *Month) credit(r *resMonth, day int32, meter uint8, part func(weight *big.Rat) amount) {
	m.records++
	bit := uint32(1) << (day - m.first)
	if r.seen[meter]&bit != 0 {
		m.repeated = true
	}
	r.seen[meter] |= bit
	te := r.te
	if te == nil || te.pieces == nil {
		return
	}
	if te.from != m.first || te.days == nil {
		te.from, te.set, te.days = m.first, 0, make([]dayCredits, m.next-m.first)
	}
	if te.set&bit == 0 {
		te.days[day-m.first] = m.q.dayCredits(te.pieces, day)
		te.set |= bit
	}
	dc := &te.days[day-m.first]
	if r.days&bit == 0 {
		r.days |= bit
		for _, d := range dc.locations {
			r.locs = locTotalsOf(r.locs, d.org, d.partner)
			r.locs[len(r.locs)-1].nanos += d.nanos
		}
	}
	name := event.Meters[meter]
	if name == event.MeterMarketplace {
		return
	}
	for _, d := range dc.locations {
		r.locs = locTotalsOf(r.locs, d.org, d.partner)
		tot := &r.locs[len(r.locs)-1].azTotals
		p := part(d.weight)
		tot.acr.add(p)
		if name == event.MeterStandard && d.active {
			tot.pec.add(p)
		}
	}
	for _, o := range dc.orgs {
		r.orgs = orgTotalsOf(r.orgs, o.org)
		tot := &r.orgs[len(r.orgs)-1].azTotals
		p := part(o.weight)
		tot.acr.add(p)
		if name == event.MeterStandard && o.active {
			tot.pec.add(p)
		}
	}
}

// MonthSlot is where the records of one resource go.
type MonthSlot struct {
	m *Month
	r *resMonth
}

// Slot returns where the records of an Azure resource (a canonical path) of
// a tenant go.
func (m *Month) Slot(tenant, path string) MonthSlot {
	return MonthSlot{m, m.resource(tenant, path)}
}

// Put adds a record of a day (days since 1970-01-01) of the month, meter (an
// index in event.Meters) and cost in billionths.
func (s MonthSlot) Put(day int32, meter uint8, nanos int64) {
	s.m.credit(s.r, day, meter, func(w *big.Rat) amount {
		var a amount
		if w == nil {
			a.addNanos(nanos)
		} else {
			a.addRat(new(big.Rat).Mul(new(big.Rat).SetFrac64(nanos, 1e9), w))
		}
		return a
	})
}

// PutExact adds a record whose cost billionths cannot hold: exact is the
// decimal number as it was written.
func (s MonthSlot) PutExact(day int32, meter uint8, exact string) {
	cost, ok := new(big.Rat).SetString(exact)
	if !ok {
		return
	}
	s.m.credit(s.r, day, meter, func(w *big.Rat) amount {
		var a amount
		if w == nil {
			a.addRat(cost)
		} else {
			a.addRat(new(big.Rat).Mul(cost, w))
		}
		return a
	})
}

// Merged returns the report of the records fed, which the caller merged
// itself with the engine's own records of the month (MonthRecords), each
// resource, day and meter once: the engine's records are not added again.
// Like Report, it empties the sums: a Month makes one report.
func (m *Month) Merged() Report { return m.report() }

// MonthRecords calls fn with the engine's own consumption records of a
// month (YYYY-MM): each resource, day and meter once, the one reported
// last. exact, when not empty, is a cost that rec.Nanos cannot hold.
func (e *Engine) MonthRecords(month string, fn func(tenant, path string, rec CostRecord, exact string)) error {
	m, err := e.Month(month)
	if err != nil {
		return err
	}
	for tid, t := range e.tenants {
		c := &t.Usage
		for i, path := range c.Paths {
			for _, rec := range c.Records[i] {
				if !m.Contains(rec.Day) {
					continue
				}
				exact := ""
				if rec.Nanos < 0 {
					exact = c.Exact[-1-rec.Nanos]
				}
				fn(tid, path, rec, exact)
			}
		}
	}
	return nil
}

// Contains reports whether a day (days since 1970-01-01) is of the month.
func (m *Month) Contains(day int32) bool { return day >= m.first && day < m.next }

// Records counts the records added, the engine's own included once Report
// ran.
func (m *Month) Records() int { return m.records }

// Report adds the engine's own records of the month and returns the report.
// It returns false, and no report, when records repeat a resource, day and
// meter, or the engine holds records of a resource that was fed: the later
// record replaces the earlier, which only the engine's records can say;
// the caller then puts its records in the engine and asks Report.
func (m *Month) Report() (Report, bool) {
	if !m.addKept() || m.repeated {
		return Report{}, false
	}
	return m.report(), true
}

// addKept adds the engine's own records of the month. It returns false,
// having added some or none, when one is of a resource that was fed.
func (m *Month) addKept() bool {
	fed := len(m.res)
	for tid, t := range m.e.tenants {
		c := &t.Usage
		for i, path := range c.Paths {
			var r *resMonth
			for _, rec := range c.Records[i] {
				if !m.Contains(rec.Day) {
					continue
				}
				if r == nil {
					if fed > 0 && m.res[[2]string{tid, path}] != nil {
						return false
					}
					r = m.resource(tid, path)
				}
				m.credit(r, rec.Day, rec.Meter, func(w *big.Rat) amount { return c.part(rec, w) })
			}
		}
	}
	return true
}

// report makes the report of the sums, which it empties as it goes: a
// resource's sums give way to its rows. A resource's locations are
// distinct, so each row is one location's on one resource.
func (m *Month) report() Report {
	var rows []ResourceRow
	subs := map[azSubKey]*azTotals{}
	for k, r := range m.res {
		for _, l := range r.locs {
			if l.acr.isZero() && l.pec.isZero() && l.nanos == 0 {
				continue
			}
			rows = append(rows, ResourceRow{Tenant: r.tenant, Resource: r.path, Subscription: r.sub,
				Org: l.org, Partner: l.partner, ACR: Money{l.acr}, PECEligibleCost: Money{l.pec},
				RecognisedHours: hoursOf(l.nanos)})
		}
		for _, o := range r.orgs {
			totals(subs, azSubKey{r.tenant, r.sub, o.org}).addTotals(o.azTotals)
		}
		delete(m.res, k)
	}
	return m.e.azureReport(m.month, m.q.policy, rows, subs)
}

func (t *azTotals) addTotals(u azTotals) {
	t.acr.add(u.acr)
	t.pec.add(u.pec)
	t.nanos += u.nanos
}

// locTotals and orgTotals are a resource's sums by location and by
// organisation.
type locTotals struct {
	org, partner string
	azTotals
}

type orgTotals struct {
	org string
	azTotals
}

// locTotalsOf moves the sums of a location to the end of ls, made when
// new, and returns ls: the same location comes record after record.
func locTotalsOf(ls []locTotals, org, partner string) []locTotals {
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i].org == org && ls[i].partner == partner {
			ls[i], ls[len(ls)-1] = ls[len(ls)-1], ls[i]
			return ls
		}
	}
	return append(ls, locTotals{org: org, partner: partner})
}

// orgTotalsOf does the same for an organisation.
func orgTotalsOf(os []orgTotals, org string) []orgTotals {
	for i := len(os) - 1; i >= 0; i-- {
		if os[i].org == org {
			os[i], os[len(os)-1] = os[len(os)-1], os[i]
			return os
		}
	}
	return append(os, orgTotals{org: org})
}

func totals[K comparable](rows map[K]*azTotals, k K) *azTotals {
	t := rows[k]
	if t == nil {
		t = &azTotals{}
		rows[k] = t
	}
	return t
}

// azureReport makes the report of the rows of resources (by location) and
// of subscriptions (by organisation, each record counted once), sums the
// subscriptions into organisations, and sorts them all.
func (e *Engine) azureReport(month string, policy Policy, rows []ResourceRow, subs map[azSubKey]*azTotals) Report {
	rep := Report{Month: month, Policy: policy, Resources: rows,
		Subscriptions: []Subscription{}, Orgs: []OrgRow{}}
	if rep.Resources == nil {
		rep.Resources = []ResourceRow{}
	}
	orgs := map[string]*azTotals{}
	customers := map[string]map[string]*amount{}
	for k, t := range subs {
		if orgs[k.org] == nil {
			orgs[k.org] = &azTotals{}
			customers[k.org] = map[string]*amount{}
		}
		orgs[k.org].acr.add(t.acr)
		orgs[k.org].pec.add(t.pec)
		if customers[k.org][k.tenant] == nil {
			customers[k.org][k.tenant] = &amount{}
		}
		customers[k.org][k.tenant].add(t.acr)
	}
	subsWithACR := map[string]int{}
	for k, t := range subs {
		if t.acr.isZero() && t.pec.isZero() {
			continue
		}
		rep.Subscriptions = append(rep.Subscriptions, Subscription{Tenant: k.tenant, Subscription: k.sub, Org: k.org,
			ACR: Money{t.acr}, PECEligibleCost: Money{t.pec}})
		if t.acr.Rat().Sign() > 0 {
			subsWithACR[k.org]++
		}
	}
	rate := e.pecRate()
	for org, t := range orgs {
		acr := t.acr.Rat()
		if acr.Sign() == 0 {
			continue
		}
		n := 0
		for _, a := range customers[org] {
			if a.Rat().Sign() > 0 {
				n++
			}
		}
		pec := t.pec.Rat()
		rep.Orgs = append(rep.Orgs, OrgRow{Org: org, ACR: moneyOf(acr), PECEligibleCost: moneyOf(pec),
			PECCredit: moneyOf(new(big.Rat).Mul(pec, rate)), Customers: n, Subscriptions: subsWithACR[org]})
	}
	slices.SortFunc(rep.Resources, func(a, b ResourceRow) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource),
			cmp.Compare(a.Subscription, b.Subscription), cmp.Compare(a.Org, b.Org), cmp.Compare(a.Partner, b.Partner))
	})
	slices.SortFunc(rep.Subscriptions, func(a, b Subscription) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Subscription, b.Subscription), cmp.Compare(a.Org, b.Org))
	})
	slices.SortFunc(rep.Orgs, func(a, b OrgRow) int { return cmp.Compare(a.Org, b.Org) })
	return rep
}

// pecRate returns the partner earned credit rate.
func (e *Engine) pecRate() *big.Rat {
	if r, ok := new(big.Rat).SetString(e.opts.PECRate); ok && e.opts.PECRate != "" {
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
