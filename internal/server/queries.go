package server

import (
	"cmp"
	"encoding/base64"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	partners "github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
)

// parseAt reads the optional at parameter: RFC 3339, or a date.
func parseAt(r *http.Request) (*time.Time, error) {
	s := r.URL.Query().Get("at")
	if s == "" {
		return nil, nil
	}
	if t, ok := event.ParseInstant(s); ok {
		return &t, nil
	}
	return nil, errorf(codeBadRequest, "at=%q is not a time: write 2026-03-01T12:00:00Z (RFC 3339) or 2026-03-01", s)
}

// registered returns an organisation the directory registers, or a 404
// that says so, and which organisation lists it when org is a location ID.
func registered(e *attribution.Engine, org string) (attribution.Organisation, error) {
	o, ok := e.Org(org)
	if ok {
		return o, nil
	}
	if owner, isLocation := e.LocationOrg(org); isLocation {
		return o, errorf(codeNotFound, "%s is a location ID of organisation %s; org takes the global ID", org, owner)
	}
	return o, errorf(codeNotFound, "organisation %s is not registered", org)
}

// explainAt runs fn with an engine holding the state of one tenant at the
// instant the request asks for with ?at= (the present by default), and the
// instant. A past instant is the tenant's own fold up to it, made from a
// copy of the directory without holding the state.
func (s *Server) explainAt(r *http.Request, tenant string, fn func(e *attribution.Engine, when time.Time) error) error {
	at, err := parseAt(r)
	if err != nil {
		return err
	}
	present := false
	var dir []store.Record
	var reads []string
	err = s.read(r.Context(), func(st *fold.State) error {
		e := st.Engine()
		if at == nil || !at.Before(e.Now()) {
			present = true
			when := e.Now()
			if at != nil {
				when = *at
			}
			return fn(e, when)
		}
		dir, reads = st.Directory(), st.Reads(tenant)
		return nil
	})
	if err != nil || present {
		return err
	}
	until := *at
	if until.Before(store.Earliest) {
		// Before every record the service keeps (and not the zero time,
		// which would fold them all).
		until = store.Earliest.Add(-time.Nanosecond)
	}
	past, err := fold.Tenant(r.Context(), s.store, s.cfg.Options, dir, tenant, reads, until, nil)
	if err != nil {
		return err
	}
	return fn(past, *at)
}

// getAttribution answers who is credited at ?at= (now by default); a past
// instant is read from the credit history. The rows come in pages of at
// most ?limit= (by tenant then resource), after the row ?after= names;
// next names the last row of a full page, null after the last page.
func (s *Server) getAttribution(w http.ResponseWriter, r *http.Request, p Principal) error {
	at, err := parseAt(r)
	if err != nil {
		return err
	}
	after, limit, err := rowPage(r)
	if err != nil {
		return err
	}
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (attributionPart, error) {
		return attributionPartOf(st.Engine(), owns, p, at, after, limit), nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mergeAttribution(parts, limit))
	return nil
}

// attributionPart is an owner's part of a page of the attribution: the
// instant it is of, and the rows of its tenants that the caller sees after
// the page's start, as the caller sees them.
type attributionPart struct {
	At   time.Time                 `json:"at"`
	Rows pagePart[attribution.Row] `json:"rows"`
}

// attributionPartOf returns the part of a page of the attribution over the
// tenants owns names, at the instant at (the present when nil), of the
// rows after the cursor after, at most limit of them.
func attributionPartOf(e *attribution.Engine, owns func(string) bool, p Principal, at *time.Time, after rowCursor, limit int) attributionPart {
	var tenants []string
	if tenant, scoped := p.tenantScope(); scoped {
		tenants = []string{tenant}
	}
	part := attributionPart{At: e.Now(), Rows: pagePart[attribution.Row]{Items: []attribution.Row{}}}
	rows := e.Attribution(tenants...)
	if at != nil {
		part.At = *at
		if at.Before(e.Now()) {
			rows = e.AttributionAt(*at, tenants...)
		}
	}
	for _, row := range rows {
		if !owns(row.Tenant) || !p.seesCredit(row.Org, row.Shares) || !after.before(row) {
			continue
		}
		row.Account = p.shownAccount(e, row.Account, row.Partner)
		if !part.Rows.add(row, limit) {
			break
		}
	}
	return part
}

// mergeAttribution makes a page of the attribution of its parts.
func mergeAttribution(parts []attributionPart, limit int) api.AttributionPage {
	pages := make([]pagePart[attribution.Row], len(parts))
	for i, p := range parts {
		pages[i] = p.Rows
	}
	rows, more := mergePage(pages, limit, func(a, b attribution.Row) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
	page := api.AttributionPage{At: present(parts, func(p attributionPart) time.Time { return p.At }), Resources: rows}
	if more {
		c := cursorOf(rows[len(rows)-1])
		page.Next = &c
	}
	return page
}

// rowCursor names a row of the attribution: its tenant and resource.
type rowCursor struct{ tenant, resource string }

// before reports whether the cursor comes before row, in the order of
// tenant then resource; the zero cursor comes before every row.
func (c rowCursor) before(row attribution.Row) bool {
	return c.tenant < row.Tenant || (c.tenant == row.Tenant && c.resource < row.Resource)
}

// cursorOf encodes a row's place for ?after=.
func cursorOf(row attribution.Row) string {
	return base64.RawURLEncoding.EncodeToString([]byte(row.Tenant + "\x00" + row.Resource))
}

// rowPage reads ?after= (a next of an earlier answer) and ?limit=.
func rowPage(r *http.Request) (rowCursor, int, error) {
	_, limit, err := pageParams(r, "")
	if err != nil {
		return rowCursor{}, 0, err
	}
	v := r.URL.Query().Get("after")
	if v == "" {
		return rowCursor{}, limit, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	tenant, resource, ok := strings.Cut(string(raw), "\x00")
	if err != nil || !ok {
		return rowCursor{}, 0, errorf(codeBadRequest, "after=%q is not a place in the attribution: give the next of the last answer", v)
	}
	return rowCursor{tenant, resource}, limit, nil
}

// getExplain explains a resource's credit at ?at= (now by default). A
// partner reader reads the explanation of a resource its organisation is,
// was or could be credited for (one of its accounts is a candidate), its
// own accounts by name and the others as shownAccount says: so it reads
// why it lost an interval, and to whom, by partner ID and date.
func (s *Server) getExplain(w http.ResponseWriter, r *http.Request, p Principal) error {
	tenant, resource, err := resourceParams(r, p)
	if err != nil {
		return err
	}
	if azure.IsPath(resource) {
		return s.explainAzure(w, r, p, tenant, resource)
	}
	var x attribution.Explanation
	var words string
	concerned := false
	err = s.explainAt(r, tenant, func(e *attribution.Engine, when time.Time) error {
		x = e.Explain(tenant, resource, when)
		holder := ""
		if x.Winner != nil {
			holder = x.Winner.Org
		}
		concerned = concerned || credited(p.Org, holder, x.Shares) || p.hasRole(e, tenant, x)
		words = explanationWords(p, e, x)
		x = p.shownExplanation(e, x, func(a string) string { return e.AccountLinkAt(tenant, a) })
		if x.Candidates == nil {
			x.Candidates = []attribution.Candidate{}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.mayRead(r, p, tenant, resource, concerned); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Explanation{Explanation: x, Summary: words})
	return nil
}

// hasRole reports whether one of p's organisation's accounts holds a role
// on the resource an explanation is of: a candidate, or a co-owner that is
// never credited (of a flow).
func (p Principal) hasRole(e *attribution.Engine, tenant string, x attribution.Explanation) bool {
	return slices.ContainsFunc(x.Candidates, func(c attribution.Candidate) bool { return p.ownsPartner(e, c.Partner) }) ||
		slices.ContainsFunc(x.NotAttributable, func(a string) bool { return p.ownsPartner(e, e.AccountLinkAt(tenant, a)) })
}

// explainAzure explains an Azure resource. Recognition is read from the
// histories the state keeps, at any instant.
func (s *Server) explainAzure(w http.ResponseWriter, r *http.Request, p Principal, tenant, resource string) error {
	at, err := parseAt(r)
	if err != nil {
		return err
	}
	var x azure.Explanation
	var words string
	concerned := false
	err = s.read(r.Context(), func(st *fold.State) error {
		when := st.Engine().Now()
		if at != nil {
			when = *at
		}
		var err error
		x, err = st.Engine().Azure().Explain(tenant, resource, when)
		if err != nil {
			return errorf(codeBadRequest, "resource: %v", err)
		}
		concerned = concerned || credited(p.Org, "", x.Credited) || slices.ContainsFunc(x.Assignments, func(a azure.ExplainedAssignment) bool {
			return slices.ContainsFunc(a.Accounts, func(acct azure.ExplainedAccount) bool { return p.ownsPartner(st.Engine(), acct.Partner) })
		})
		words = azureWords(p, st.Engine(), x)
		x = p.shownAzure(st.Engine(), x)
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.mayRead(r, p, tenant, resource, concerned); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.AzureExplanation{Explanation: x, Summary: words})
	return nil
}

// getAzureReport answers the Azure report of ?month=: all of it for the
// operator, a tenant administrator's tenant, a partner reader's
// organisation.
func (s *Server) getAzureReport(w http.ResponseWriter, r *http.Request, p Principal) error {
	month := r.URL.Query().Get("month")
	if _, err := time.Parse("2006-01", month); err != nil {
		return errorf(codeBadRequest, "month=%q is not a month: write it as YYYY-MM", month)
	}
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (azure.Part, error) {
		return s.azurePart(r.Context(), st, owns, month)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, filterAzure(s.mergeAzureReport(month, parts), p))
	return nil
}

func (s *Server) getMonthly(w http.ResponseWriter, r *http.Request, p Principal) error {
	month := r.URL.Query().Get("month")
	if _, err := time.Parse("2006-01", month); err != nil {
		return errorf(codeBadRequest, "month=%q is not a month: write it as YYYY-MM", month)
	}
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (monthlyPart, error) {
		return s.monthlyPart(st, owns, month), nil
	})
	if err != nil {
		return err
	}
	m := filterMonthly(s.mergeMonthly(month, parts), p)
	_, limit, err := pageParams(r, "")
	if err != nil {
		return err
	}
	page, next := pageMonthly(m, r.URL.Query().Get("after"), limit)
	writeJSON(w, http.StatusOK, api.MonthlyPage{Monthly: page, Next: next})
	return nil
}

// monthlyPart is an owner's part of a monthly report: the rows of its
// tenants (metrics.Aggregator.Part), and the directory's facts of the
// organisations they name.
type monthlyPart struct {
	Rows metrics.Monthly     `json:"rows"`
	Orgs map[string]orgFacts `json:"orgs"`
}

// orgFacts are what a monthly report reads of an organisation in the
// directory: its registered name, and its segment at the month's end,
// which its deployments are counted by.
type orgFacts struct {
	Name    string `json:"name"`
	Segment string `json:"segment"`
}

// monthlyPart returns the part of the monthly report of month over the
// tenants owns names.
func (s *Server) monthlyPart(st *fold.State, owns func(string) bool, month string) monthlyPart {
	e := st.Engine()
	seg := metrics.SegmentsAtMonthEnd(e)
	part := monthlyPart{Rows: st.Metrics().Part(s.cfg.Metrics, month, owns), Orgs: map[string]orgFacts{}}
	for _, w := range part.Rows.Workloads {
		if _, ok := part.Orgs[w.Org]; !ok {
			f := orgFacts{Segment: seg(w.Org, month)}
			if o, ok := e.Org(w.Org); ok {
				f.Name = o.Name
			}
			part.Orgs[w.Org] = f
		}
	}
	return part
}

// mergeMonthly makes the monthly report of month of its parts, its
// organisations named.
func (s *Server) mergeMonthly(month string, parts []monthlyPart) metrics.Monthly {
	rows := make([]metrics.Monthly, len(parts))
	facts := map[string]orgFacts{}
	for i, p := range parts {
		rows[i] = p.Rows
		maps.Copy(facts, p.Orgs)
	}
	m := metrics.Merge(s.cfg.Metrics, month, rows, func(org, _ string) string { return facts[org].Segment })
	for i, o := range m.Orgs {
		m.Orgs[i].Name = facts[o.Org].Name
	}
	return m
}

// pageMonthly keeps the rows of a monthly report of at most limit tenants
// after the tenant after, and says the last of them when more follow. The
// organisations' totals, few and over every tenant, come on every page.
func pageMonthly(m metrics.Monthly, after string, limit int) (metrics.Monthly, *string) {
	var tenants []string
	for _, r := range m.Resources {
		tenants = append(tenants, r.Tenant)
	}
	for _, r := range m.Workloads {
		tenants = append(tenants, r.Tenant)
	}
	slices.Sort(tenants)
	tenants = slices.Compact(tenants)
	i, _ := slices.BinarySearch(tenants, after)
	if i < len(tenants) && tenants[i] == after {
		i++
	}
	tenants = tenants[i:]
	var next *string
	if len(tenants) > limit {
		last := tenants[limit-1]
		next, tenants = &last, tenants[:limit]
	}
	in := func(tenant string) bool { _, ok := slices.BinarySearch(tenants, tenant); return ok }
	page := metrics.Monthly{Month: m.Month, Resources: []metrics.ResourceRow{}, Workloads: []metrics.WorkloadRow{}, Orgs: m.Orgs}
	for _, r := range m.Resources {
		if in(r.Tenant) {
			page.Resources = append(page.Resources, r)
		}
	}
	for _, r := range m.Workloads {
		if in(r.Tenant) {
			page.Workloads = append(page.Workloads, r)
		}
	}
	return page, next
}

func (s *Server) getPCS(w http.ResponseWriter, r *http.Request, p Principal) error {
	q := r.URL.Query()
	month, org := q.Get("month"), p.orgAsked(q.Get("org"))
	baseline, err := metrics.BaselineMonth(month)
	if err != nil {
		return errorf(codeBadRequest, "month=%q is not a month: write it as YYYY-MM", month)
	}
	if org == "" {
		return errorf(codeBadRequest, "org is required: the organisation's global partner ID")
	}
	if err := p.readsOrg(org, "score"); err != nil {
		return err
	}
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (scorePart, error) {
		return s.scorePart(st, owns, org, month, baseline)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.mergeScore(org, month, baseline, parts))
	return nil
}

// scorePart is an owner's part of an organisation's capability score: the
// organisation's rows of the monthly reports of the month and of its
// baseline, and what the directory says of it.
type scorePart struct {
	Month     monthlyPart     `json:"month"`
	Baseline  monthlyPart     `json:"baseline"`
	Segment   string          `json:"segment"`
	Inputs    partners.Inputs `json:"inputs"`
	HasInputs bool            `json:"has_inputs"`
}

// scorePart returns the part of an organisation's score of month over the
// tenants owns names, or a 404 when the organisation is not registered.
func (s *Server) scorePart(st *fold.State, owns func(string) bool, org, month, baseline string) (scorePart, error) {
	e := st.Engine()
	if _, err := registered(e, org); err != nil {
		return scorePart{}, err
	}
	// The score reads the organisation's workloads only.
	mine := func(m monthlyPart) monthlyPart {
		m.Rows.Resources = []metrics.ResourceRow{}
		m.Rows.Workloads = kept(m.Rows.Workloads, func(w metrics.WorkloadRow) bool { return w.Org == org })
		return m
	}
	part := scorePart{Month: mine(s.monthlyPart(st, owns, month)), Baseline: mine(s.monthlyPart(st, owns, baseline)),
		Segment: metrics.SegmentsAtMonthEnd(e)(org, month)}
	part.Inputs, part.HasInputs = e.MetricsInputs(org, month)
	return part, nil
}

// mergeScore scores an organisation from the parts of its score.
func (s *Server) mergeScore(org, month, baseline string, parts []scorePart) metrics.Score {
	cur, base := make([]monthlyPart, len(parts)), make([]monthlyPart, len(parts))
	for i, p := range parts {
		cur[i], base[i] = p.Month, p.Baseline
	}
	// The directory's facts are every part's.
	d := parts[0]
	return metrics.CapabilityScore(s.cfg.Metrics, org, d.Segment, s.mergeMonthly(month, cur), s.mergeMonthly(baseline, base), d.Inputs, d.HasInputs)
}

// getDiagnosis says where an organisation's credit is missing: a partner
// reader's own, or the one the operator names.
func (s *Server) getDiagnosis(w http.ResponseWriter, r *http.Request, p Principal) error {
	org := p.orgAsked(r.URL.Query().Get("org"))
	if err := p.readsOrg(org, "diagnosis"); err != nil {
		return err
	}
	if org == "" {
		return errorf(codeBadRequest, "org is required: %s?org=ORG", r.URL.Path)
	}
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (attribution.Diagnosis, error) {
		if _, err := registered(st.Engine(), org); err != nil {
			return attribution.Diagnosis{}, err
		}
		return diagnosisPart(st.Engine(), owns, org), nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mergeDiagnosis(org, parts))
	return nil
}

// diagnosisPart is the part of an organisation's diagnosis of the tenants
// owns names: its resources' entries.
func diagnosisPart(e *attribution.Engine, owns func(string) bool, org string) attribution.Diagnosis {
	d := e.Diagnose(org)
	d.Missing = kept(d.Missing, func(m attribution.Missing) bool { return owns(m.Tenant) })
	d.AtRisk = kept(d.AtRisk, func(a attribution.AtRisk) bool { return owns(a.Tenant) })
	return d
}

// mergeDiagnosis makes an organisation's diagnosis of its parts.
func mergeDiagnosis(org string, parts []attribution.Diagnosis) attribution.Diagnosis {
	d := attribution.Diagnosis{Org: org, At: present(parts, func(d attribution.Diagnosis) time.Time { return d.At }),
		Missing: []attribution.Missing{}, AtRisk: []attribution.AtRisk{}}
	for _, p := range parts {
		d.Missing = append(d.Missing, p.Missing...)
		d.AtRisk = append(d.AtRisk, p.AtRisk...)
	}
	attribution.SortDiagnosis(&d)
	return d
}
