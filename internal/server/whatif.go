package server

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// maxWhatIfBytes is the largest what-if the service reads.
const maxWhatIfBytes = 1 << 20

// postWhatIf applies hypothetical events to a copy of the state, and
// answers the attribution of the tenant before and after, and each event's
// refusal if any. Nothing is written.
func (s *Server) postWhatIf(w http.ResponseWriter, r *http.Request, p Principal) error {
	tenant, err := tenantParam(r, p)
	if err != nil {
		return err
	}
	refused := []*event.Refusal{}
	events, err := readBatch(http.MaxBytesReader(w, r.Body, maxWhatIfBytes), func(ev *event.Event) *event.Refusal {
		if ev.Tenant != tenant {
			return event.Refuse(ev, event.Forbidden, "a what-if is about tenant %s only", tenant)
		}
		if why := otherPrincipal(p, ev); why != "" {
			return event.Refuse(ev, event.Forbidden, "%s", why)
		}
		return nil
	}, &refused)
	if err != nil {
		return err
	}
	// The what-if folds its tenant alone, then applies the hypothetical
	// events after it: nothing of the state is copied or changed.
	var now time.Time
	var dir []store.Record
	var reads []string
	var noted []store.TenantResource
	err = s.read(r.Context(), func(st *fold.State) error {
		now, dir, reads = st.Engine().Now(), st.Directory(), st.Reads(tenant)
		noted = st.Noted([]string{tenant})
		return nil
	})
	if err != nil {
		return err
	}
	e, err := fold.Tenant(r.Context(), s.store, s.cfg.Options, dir, tenant, reads, time.Time{}, nil)
	if err != nil {
		return err
	}
	// The copy is of the state, whose present is its latest record's.
	e.AdvanceTo(now)
	noteIn(e, noted)
	before := tenantRows(e, tenant)
	events, _ = fold.Order(events)
	var named []string
	for _, ev := range events {
		if ev.Time.Before(now) {
			refused = append(refused, event.Refuse(ev, event.InvalidTime, "a what-if happens after %s, the time of the state", now.Format(time.RFC3339)))
			continue
		}
		if res := e.Apply(ev); res.Outcome == attribution.Refused {
			refused = append(refused, res.Refusal)
			continue
		}
		named = append(named, ev.Resource)
		for _, r := range ev.Resources {
			named = append(named, r.Resource)
		}
	}
	after := tenantRows(e, tenant)
	// The values of the tenant's resources are its owner's.
	month := event.MonthOf(now)
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (valuesPart, error) {
		return s.valuesPart(r.Context(), st, func(t string) bool { return t == tenant && owns(t) }, month, "")
	})
	if err != nil {
		return err
	}
	mv := s.monthValues(parts)
	writeJSON(w, http.StatusOK, api.WhatIf{Tenant: tenant, Before: before, After: after, Refused: refused,
		Verdicts: whatIfVerdicts(p, e, mv, tenant, month, named, before, after)})
	return nil
}

// tenantRows is the attribution of one tenant, an empty list when it has
// no resource.
func tenantRows(e *attribution.Engine, tenant string) []attribution.Row {
	return append([]attribution.Row{}, e.Attribution(tenant)...)
}

// whatIfVerdicts says what a what-if does to the resources its events name
// (first, in their order) and to every other resource whose credit it
// changes, as of the engine's instant after the events.
func whatIfVerdicts(p Principal, e *attribution.Engine, mv *monthValues, tenant, month string, named []string, before, after []attribution.Row) []api.WhatIfVerdict {
	index := func(rows []attribution.Row) map[string]attribution.Row {
		m := make(map[string]attribution.Row, len(rows))
		for _, r := range rows {
			m[r.Resource] = r
		}
		return m
	}
	was, is := index(before), index(after)
	holder := func(r attribution.Row, ok bool) string {
		switch {
		case !ok:
			return "no one (" + credit.Words(credit.ResourceNotFound) + ")"
		case r.Partner == "":
			return "no one (" + credit.Words(r.Reason) + ")"
		}
		return partnerWords(e, r.Partner)
	}
	var order []string
	for _, res := range named {
		if res != "" && !slices.Contains(order, res) {
			order = append(order, res)
		}
	}
	for _, r := range after {
		b, ok := was[r.Resource]
		if (!ok || b.Partner != r.Partner || !slices.Equal(b.Shares, r.Shares)) && !slices.Contains(order, r.Resource) {
			order = append(order, r.Resource)
		}
	}
	for _, r := range before {
		if _, ok := is[r.Resource]; !ok && !slices.Contains(order, r.Resource) {
			order = append(order, r.Resource)
		}
	}
	out := []api.WhatIfVerdict{}
	for _, res := range order {
		b, hadB := was[res]
		a, hasA := is[res]
		kind := cmp.Or(a.Kind, b.Kind)
		v := api.WhatIfVerdict{Resource: res, Name: displayName(e, tenant, res), Kind: kindInWords(kind), Before: holder(b, hadB), After: holder(a, hasA), Month: month}
		v.Changes = hadB != hasA || b.Partner != a.Partner || !slices.Equal(b.Shares, a.Shares)
		if !azure.IsPath(res) {
			v.Words = explanationWords(p, e, e.Explain(tenant, res, e.Now()))
		}
		w := mv.of(tenant, res)
		v.MAU, v.Profiles, v.MCV = w.mau, w.profiles, w.mcv
		out = append(out, v)
	}
	return out
}
