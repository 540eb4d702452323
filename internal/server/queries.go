package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
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

// engineAt returns the engine with the state at the instant the request
// asks for with ?at= (the present by default), the instant, and a function
// to call when done. A past instant is folded from the log: from one
// tenant's records when tenant is set, from the whole log otherwise.
func (s *Server) engineAt(r *http.Request, tenant string) (*attribution.Engine, time.Time, func(), error) {
	at, err := parseAt(r)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	if err := s.sync(r.Context()); err != nil {
		return nil, time.Time{}, nil, err
	}
	e := s.state.engine
	if at == nil || !at.Before(e.Now()) {
		when := e.Now()
		if at != nil {
			when = *at
		}
		return e, when, s.state.mu.RUnlock, nil
	}
	defer s.state.mu.RUnlock()
	if tenant != "" {
		past, err := s.state.asOf(r.Context(), s.store, tenant, *at)
		return past, *at, func() {}, err
	}
	past, err := foldUntil(r.Context(), s.store, s.state.opts, *at)
	return past, *at, func() {}, err
}

// foldUntil folds the whole log, in the order its records apply, up to the
// instant at.
func foldUntil(ctx context.Context, src store.Store, opts attribution.Options, at time.Time) (*attribution.Engine, error) {
	e := attribution.New(opts)
	err := src.ScanByTime(ctx, func(r store.Record) error {
		if r.Event.Time.After(at) {
			return errStop
		}
		e.Apply(r.Event)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("fold the log up to %s: %w", at.Format(time.RFC3339), err)
	}
	return e, nil
}

// credited reports whether a credit, held by holder or shared as shares,
// goes whole or in part to org.
func credited(org, holder string, shares []attribution.Share) bool {
	return holder == org || slices.ContainsFunc(shares, func(sh attribution.Share) bool { return sh.Org == org })
}

func (s *Server) getAttribution(w http.ResponseWriter, r *http.Request, p Principal) error {
	tenant, _ := p.tenantScope()
	e, when, done, err := s.engineAt(r, tenant)
	if err != nil {
		return err
	}
	rows := e.Attribution()
	done()
	visible := []attribution.Row{}
	for _, row := range rows {
		if p.Role == store.RoleOperator ||
			(p.Role == store.RoleTenantAdmin && row.Tenant == p.Tenant) ||
			(p.Role == store.RolePartnerReader && credited(p.Org, row.Org, row.Shares)) {
			visible = append(visible, row)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"at": when, "resources": visible})
	return nil
}

func (s *Server) getExplain(w http.ResponseWriter, r *http.Request, p Principal) error {
	tenant, resource, err := resourceParams(r, p)
	if err != nil {
		return err
	}
	e, when, done, err := s.engineAt(r, tenant)
	if err != nil {
		return err
	}
	x := e.Explain(tenant, resource, when)
	done()
	if p.Role == store.RolePartnerReader {
		holder := ""
		if x.Winner != nil {
			holder = x.Winner.Org
		}
		if !credited(p.Org, holder, x.Shares) {
			return errorf(codeForbidden, "a partner reader reads the explanations of resources credited to its organisation only")
		}
	}
	writeJSON(w, http.StatusOK, x)
	return nil
}

func (s *Server) getMonthly(w http.ResponseWriter, r *http.Request, p Principal) error {
	month := r.URL.Query().Get("month")
	if _, err := time.Parse("2006-01", month); err != nil {
		return errorf(codeBadRequest, "month=%q is not a month: write it as YYYY-MM", month)
	}
	if err := s.sync(r.Context()); err != nil {
		return err
	}
	m := s.state.agg.Report(s.cfg.Metrics, month, metrics.SegmentsAtMonthEnd(s.state.engine))
	metrics.NameOrgs(&m, s.state.engine)
	s.state.mu.RUnlock()
	if p.Role != store.RoleOperator {
		m = filterMonthly(m, p)
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// filterMonthly keeps what a partner reader or a tenant administrator may
// see of a monthly report. A tenant administrator gets no organisation
// rows: they sum an organisation's other customers too.
func filterMonthly(m metrics.Monthly, p Principal) metrics.Monthly {
	out := metrics.Monthly{Month: m.Month, Resources: []metrics.ResourceRow{}, Workloads: []metrics.WorkloadRow{}, Orgs: []metrics.OrgRow{}}
	keep := func(tenant, org string) bool {
		return (p.Role == store.RolePartnerReader && org == p.Org) || (p.Role == store.RoleTenantAdmin && tenant == p.Tenant)
	}
	for _, row := range m.Resources {
		if keep(row.Tenant, row.Org) {
			out.Resources = append(out.Resources, row)
		}
	}
	for _, row := range m.Workloads {
		if keep(row.Tenant, row.Org) {
			out.Workloads = append(out.Workloads, row)
		}
	}
	for _, row := range m.Orgs {
		if p.Role == store.RolePartnerReader && row.Org == p.Org {
			out.Orgs = append(out.Orgs, row)
		}
	}
	return out
}

func (s *Server) getPCS(w http.ResponseWriter, r *http.Request, p Principal) error {
	q := r.URL.Query()
	month, org := q.Get("month"), q.Get("org")
	baseline, err := metrics.BaselineMonth(month)
	if err != nil {
		return errorf(codeBadRequest, "month=%q is not a month: write it as YYYY-MM", month)
	}
	if org == "" {
		return errorf(codeBadRequest, "org is required: the organisation's global partner ID")
	}
	if p.Role == store.RolePartnerReader && org != p.Org {
		return errorf(codeForbidden, "a partner reader reads its own organisation's score only")
	}
	if err := s.sync(r.Context()); err != nil {
		return err
	}
	defer s.state.mu.RUnlock()
	e := s.state.engine
	if _, ok := e.Org(org); !ok {
		if owner, isLocation := e.LocationOrg(org); isLocation {
			return errorf(codeNotFound, "%s is a location ID of organisation %s; org takes the global ID", org, owner)
		}
		return errorf(codeNotFound, "organisation %s is not registered", org)
	}
	seg := metrics.SegmentsAtMonthEnd(s.state.engine)
	inputs, has := e.MetricsInputs(org, month)
	score := metrics.CapabilityScore(s.cfg.Metrics, org, seg(org, month),
		s.state.agg.Report(s.cfg.Metrics, month, seg), s.state.agg.Report(s.cfg.Metrics, baseline, seg), inputs, has)
	writeJSON(w, http.StatusOK, score)
	return nil
}

// resourceParams reads the tenant and resource a request is about; a
// tenant administrator asks of its own tenant only.
func resourceParams(r *http.Request, p Principal) (tenant, resource string, err error) {
	q := r.URL.Query()
	tenant, resource = q.Get("tenant"), q.Get("resource")
	if tenant == "" || resource == "" {
		return "", "", errorf(codeBadRequest, "tenant and resource are required: %s?tenant=T&resource=R", r.URL.Path)
	}
	if p.Role == store.RoleTenantAdmin && tenant != p.Tenant {
		return "", "", errorf(codeForbidden, "a tenant administrator reads its own tenant's resources only")
	}
	return tenant, resource, nil
}

// tenantParam reads the tenant a request is about: a tenant
// administrator's own, or the one named.
func tenantParam(r *http.Request, p Principal) (string, error) {
	tenant := r.URL.Query().Get("tenant")
	if p.Role == store.RoleTenantAdmin {
		tenant = p.Tenant
	}
	if tenant == "" {
		return "", errorf(codeBadRequest, "tenant is required: %s?tenant=T", r.URL.Path)
	}
	return tenant, nil
}
