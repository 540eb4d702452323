package server

import (
	"net/http"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
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
	err = s.read(r.Context(), func(st *fold.State) error {
		now, dir, reads = st.Engine().Now(), st.Directory(), st.Reads(tenant)
		return nil
	})
	if err != nil {
		return err
	}
	e, err := fold.Tenant(r.Context(), s.store, s.cfg.Options, dir, tenant, reads, time.Time{}, nil)
	if err != nil {
		return err
	}
	before := tenantRows(e, tenant)
	events, _ = fold.Order(events)
	for _, ev := range events {
		if ev.Time.Before(now) {
			refused = append(refused, event.Refuse(ev, event.InvalidTime, "a what-if happens after %s, the time of the state", now.Format(time.RFC3339)))
			continue
		}
		if res := e.Apply(ev); res.Outcome == attribution.Refused {
			refused = append(refused, res.Refusal)
		}
	}
	writeJSON(w, http.StatusOK, api.WhatIf{Tenant: tenant, Before: before, After: tenantRows(e, tenant), Refused: refused})
	return nil
}

// tenantRows is the attribution of one tenant, an empty list when it has
// no resource.
func tenantRows(e *attribution.Engine, tenant string) []attribution.Row {
	return append([]attribution.Row{}, e.Attribution(tenant)...)
}
