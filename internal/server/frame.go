package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// A page shows one time frame: a month, and the instant every section of
// it is as of — the month's last instant, or the present for the month the
// present is in. The present is the time of the service's state (the
// latest event), never the wall clock.

// frame is a month and the instant a page shows it as of.
type frame struct {
	Month string    `json:"month"`
	Start time.Time `json:"start"`
	// At is the month's last instant, or the present when the month is
	// the present's (Current).
	At      time.Time `json:"at"`
	Current bool      `json:"current"`
}

// frameOf returns the frame of a month (YYYY-MM; the present's month when
// empty) given the present. A month after the present's is refused: the
// log says nothing of it yet.
func frameOf(month string, now time.Time) (frame, error) {
	if month == "" {
		month = now.UTC().Format("2006-01")
	}
	start, err := time.Parse("2006-01", month)
	if err != nil {
		return frame{}, errorf(codeBadRequest, "month=%q is not a month: write it as YYYY-MM", month)
	}
	if start.Year() < 1 {
		// The score of a month reads the month a year before, which
		// YYYY-MM must write.
		return frame{}, errorf(codeBadRequest, "month %s is before the year 0001: pick a month of the log, such as %s", month, now.UTC().Format("2006-01"))
	}
	end := start.AddDate(0, 1, 0).Add(-time.Nanosecond)
	if start.After(now) {
		return frame{}, errorf(codeBadRequest, "month %s is after the log's last event (%s): the log says nothing of it yet; pick a month up to %s",
			month, now.UTC().Format(time.RFC3339), now.UTC().Format("2006-01"))
	}
	f := frame{Month: month, Start: start, At: end}
	if !end.Before(now) {
		f.At, f.Current = now, true
	}
	return f, nil
}

// logMonths lists the months of the log, from the month of its first event
// to the present's, oldest first.
func (s *Server) logMonths(ctx context.Context, st *fold.State) ([]string, error) {
	perDay, err := s.store.LogDays(ctx)
	if err != nil {
		return nil, err
	}
	first := ""
	for d := range perDay {
		if first == "" || d < first {
			first = d
		}
	}
	now := st.Engine().Now()
	if first == "" || now.IsZero() {
		return nil, nil
	}
	start, err := time.Parse(time.DateOnly, first)
	if err != nil {
		return nil, fmt.Errorf("the log's first day %q: %w", first, err)
	}
	var out []string
	for m := time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(now); m = m.AddDate(0, 1, 0) {
		out = append(out, m.Format("2006-01"))
	}
	return out, nil
}

// scope is what a page is about: an organisation (a partner's dashboard),
// a tenant (a tenant's page), or, for the operator, everything.
type scope struct {
	org, tenant string
}

func (sc scope) key() string { return sc.org + "\x00" + sc.tenant }

// tenantsOf lists the tenants a scope's past needs folded, of those owns
// names, with the tenants they read: a tenant's own; an organisation's,
// the tenants in which one of its partner IDs was ever linked, and those
// that delegate to them (Azure Lighthouse); every tenant's.
func tenantsOf(st *fold.State, sc scope, owns func(string) bool) []string {
	var scoped []string
	switch {
	case sc.tenant != "":
		scoped = []string{sc.tenant}
	case sc.org != "":
		for _, id := range st.Engine().OrgPartnerIDs(sc.org) {
			for _, t := range st.Linking(id) {
				scoped = append(scoped, t)
				scoped = append(scoped, st.Dependents(t)...)
			}
		}
	default:
		scoped = st.Tenants()
	}
	// The scope's tenants and those they read, as one process holding
	// every tenant folds them; of them, the owner folds its own, and those
	// these read.
	closure := func(from []string) map[string]bool {
		set := map[string]bool{}
		var add func(t string)
		add = func(t string) {
			if set[t] {
				return
			}
			set[t] = true
			for _, pt := range st.Reads(t) {
				add(pt)
			}
		}
		for _, t := range from {
			add(t)
		}
		return set
	}
	var mine []string
	for t := range closure(scoped) {
		if owns(t) {
			mine = append(mine, t)
		}
	}
	set := closure(mine)
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// asOf runs fn with an engine as of a frame's instant holding at least the
// scope's tenants that the owner owns, and what it owns: the service's
// own for the present (fn then runs as a reader, and must keep nothing of
// it), or otherwise a fold of those tenants and those they read up to the
// instant, kept a while for the next page of the same frame.
func (o owner) asOf(ctx context.Context, sc scope, f frame, fn func(e *attribution.Engine, owns func(string) bool, tenants []string) error) error {
	s := o.s
	var dir []store.Record
	var tenants, folded []string
	var noted []store.TenantResource
	var ver version
	owned := map[string]bool{}
	present := false
	err := o.read(ctx, func(st *fold.State, owns func(string) bool) error {
		folded = tenantsOf(st, sc, owns)
		if sc.kind() != "all" {
			tenants = folded
		}
		if f.Current || !f.At.Before(st.Engine().Now()) {
			present = true
			return fn(st.Engine(), owns, tenants)
		}
		for _, t := range folded {
			owned[t] = owns(t)
		}
		ver = s.versionOf(st)
		dir, noted = st.Directory(), st.Noted(folded)
		return nil
	})
	if err != nil || present {
		return err
	}
	key := "fold\x00" + f.At.Format(time.RFC3339Nano) + "\x00" + strings.Join(folded, "\x00")
	v, err := s.views.answers.get(ver, key, func() (any, error) {
		e, err := fold.Tenants(ctx, s.store, s.cfg.Options, dir, folded, f.At)
		if err == nil {
			noteIn(e, noted)
		}
		return &pastEngine{e: e}, err
	})
	if err != nil {
		return err
	}
	past := v.(*pastEngine)
	// An engine is not safe for concurrent use, even to answer: its
	// readers take turns.
	past.mu.Lock()
	defer past.mu.Unlock()
	return fn(past.e, func(t string) bool { return owned[t] }, tenants)
}

// noteIn notes, in an engine folded from the log alone, the resources with
// consumption kept out of it (fold.State.Noted).
func noteIn(e *attribution.Engine, noted []store.TenantResource) {
	for _, r := range noted {
		e.NoteConsumption(r.Tenant, r.Resource)
	}
}

// pastEngine is an engine folded up to a past instant, kept for the pages
// that ask of it next.
type pastEngine struct {
	mu sync.Mutex
	e  *attribution.Engine
}

// answers keeps what pages computed from one state (its last record's
// sequence number), so that the next page of a table, or another sort,
// costs no second computation. A new state empties it. Values are not to
// be changed by their readers.
type answers struct {
	mu sync.Mutex
	v  version
	m  map[string]any
}

// maxAnswers bounds what answers keeps: beyond, it starts again.
const maxAnswers = 64

// get returns the value kept under key for the state's version v,
// computing it with compute when there is none. Two readers may compute
// the same value at once; one of them is kept.
func (a *answers) get(v version, key string, compute func() (any, error)) (any, error) {
	a.mu.Lock()
	if a.v != v || a.m == nil {
		a.v, a.m = v, map[string]any{}
	}
	kept, ok := a.m[key]
	a.mu.Unlock()
	if ok {
		return kept, nil
	}
	kept, err := compute()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.v == v {
		if len(a.m) >= maxAnswers {
			a.m = map[string]any{}
		}
		a.m[key] = kept
	}
	return kept, nil
}
