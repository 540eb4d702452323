package server

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
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
	var tenants []string
	if tenant, scoped := p.tenantScope(); scoped {
		tenants = []string{tenant}
	}
	var rows []attribution.Row
	var when time.Time
	err = s.read(r.Context(), func(st *fold.State) error {
		when = st.Engine().Now()
		if at != nil {
			when = *at
		}
		if at == nil || !at.Before(st.Engine().Now()) {
			rows = st.Engine().Attribution(tenants...)
		} else {
			rows = st.Engine().AttributionAt(*at, tenants...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	visible := []attribution.Row{}
	var next *string
	var names directory
	s.read(r.Context(), func(st *fold.State) error {
		names = orgDirectory(st.Engine())
		return nil
	})
	for _, row := range rows {
		if !p.seesCredit(row.Org, row.Shares) || !after.before(row) {
			continue
		}
		if len(visible) == limit {
			c := cursorOf(visible[limit-1])
			next = &c
			break
		}
		row.Account = p.shownAccount(names, row.Account, row.Partner)
		visible = append(visible, row)
	}
	writeJSON(w, http.StatusOK, api.AttributionPage{At: when, Resources: visible, Next: next})
	return nil
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
	var rep azure.Report
	err := s.read(r.Context(), func(st *fold.State) error {
		var err error
		rep, err = s.azureReport(r.Context(), st, month)
		return err
	})
	if err != nil {
		return err
	}
	rep = filterAzure(rep, p)
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) getMonthly(w http.ResponseWriter, r *http.Request, p Principal) error {
	month := r.URL.Query().Get("month")
	if _, err := time.Parse("2006-01", month); err != nil {
		return errorf(codeBadRequest, "month=%q is not a month: write it as YYYY-MM", month)
	}
	var m metrics.Monthly
	err := s.read(r.Context(), func(st *fold.State) error {
		m = st.Metrics().Report(s.cfg.Metrics, month, metrics.SegmentsAtMonthEnd(st.Engine()))
		metrics.NameOrgs(&m, st.Engine())
		return nil
	})
	if err != nil {
		return err
	}
	m = filterMonthly(m, p)
	_, limit, err := pageParams(r, "")
	if err != nil {
		return err
	}
	page, next := pageMonthly(m, r.URL.Query().Get("after"), limit)
	writeJSON(w, http.StatusOK, api.MonthlyPage{Monthly: page, Next: next})
	return nil
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
	var score metrics.Score
	err = s.read(r.Context(), func(st *fold.State) error {
		e := st.Engine()
		if _, err := registered(e, org); err != nil {
			return err
		}
		seg := metrics.SegmentsAtMonthEnd(e)
		inputs, has := e.MetricsInputs(org, month)
		score = metrics.CapabilityScore(s.cfg.Metrics, org, seg(org, month),
			st.Metrics().Report(s.cfg.Metrics, month, seg), st.Metrics().Report(s.cfg.Metrics, baseline, seg), inputs, has)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, score)
	return nil
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
	var d attribution.Diagnosis
	err := s.read(r.Context(), func(st *fold.State) error {
		if _, err := registered(st.Engine(), org); err != nil {
			return err
		}
		d = st.Engine().Diagnose(org)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
