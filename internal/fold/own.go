package fold

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/store"
)

// Several processes share the tenants of one log (SPEC.md section 10): each
// owns the tenants of its buckets and folds those alone, with the directory,
// which every process folds, and with the tenants whose accounts and groups
// an owned tenant's role assignments name (Azure Lighthouse), which it folds
// to read them. What only an owner does is counting a tenant's usage and
// profiles, keeping the verdicts on its records and filing its credit
// changes: the state of a tenant folded for reading is not answered for.

// owned reports whether the state owns a tenant: it counts its usage and
// profiles, keeps its verdicts and files its changes. The directory is
// every process's.
func (s *State) owned(tenant string) bool {
	return tenant == "" || s.owns == nil || s.owns(tenant)
}

// folds reports whether the state folds a tenant's records: it owns the
// tenant, or a tenant it owns reads its accounts and groups.
func (s *State) folds(tenant string) bool {
	if s.owned(tenant) {
		return true
	}
	for d := range s.dependents[tenant] {
		if s.owned(d) {
			return true
		}
	}
	return false
}

// Owns reports whether the state owns a tenant (Own).
func (s *State) Owns(tenant string) bool { return s.owned(tenant) }

// Owner returns what Owns says now, for a reader to keep past its read.
func (s *State) Owner() func(tenant string) bool {
	owns := s.owns
	return func(tenant string) bool { return tenant == "" || owns == nil || owns(tenant) }
}

// Own makes the state the owner of the tenants owns says, nil meaning
// every tenant; owns must not change afterwards (give a new one to Own
// again). From then on the state counts, keeps verdicts for and files the
// changes of those alone, and folds only them, the directory and the
// tenants they read. A tenant it no longer folds is forgotten; one it now
// owns or reads is folded from the records of src that the state has
// folded up to (its Seq), with its usage counted when owned, and nothing
// filed: the changes it went through are its former owner's to file.
// tenants lists the tenants of the log that owns may newly give: the state
// knows only those it folds. On an error in reading the log the state is
// marked stale.
//
// The state's present (its engine's Now) is that of the records it folds:
// processes sharing the tenants share the latest of theirs.
func (s *State) Own(ctx context.Context, src Source, owns func(tenant string) bool, tenants []string) error {
	s.follow = nil
	return s.own(ctx, src, owns, tenants)
}

// OwnBuckets makes the state the owner of the tenants of the buckets held,
// of n (store.Bucket), as Own does, and makes it read only what it folds
// of the log, when the source of CatchUp is a Follower: the records of
// those tenants and of the tenants they read, and those every process
// reads. Then it folds the log as one that reads every record would.
func (s *State) OwnBuckets(ctx context.Context, src Source, n int, held []int, tenants []string) error {
	mine := make(map[int]bool, len(held))
	for _, b := range held {
		mine[b] = true
	}
	s.follow = &store.Following{Buckets: n, Held: slices.Sorted(maps.Keys(mine))}
	return s.own(ctx, src, func(t string) bool { return mine[store.Bucket(t, n)] }, tenants)
}

// readOutside lists the tenants the state folds without owning them:
// those whose accounts its own tenants read.
func (s *State) readOutside() []string {
	var out []string
	for pt, ds := range s.dependents {
		if s.owned(pt) {
			continue
		}
		for d := range ds {
			if s.owned(d) {
				out = append(out, pt)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func (s *State) own(ctx context.Context, src Source, owns func(tenant string) bool, tenants []string) error {
	type was struct{ owned, folded bool }
	seen := make(map[string]was)
	note := func(t string) {
		if _, ok := seen[t]; !ok && t != "" {
			seen[t] = was{s.owned(t), s.folds(t)}
		}
	}
	for _, t := range tenants {
		note(t)
		for pt := range s.principals[t] {
			note(pt)
		}
	}
	for t := range s.held() {
		note(t)
	}
	s.owns = owns
	for _, t := range slices.Sorted(maps.Keys(seen)) {
		w, owned, folded := seen[t], s.owned(t), s.folds(t)
		switch {
		case !folded && w.folded:
			s.drop(t)
		case folded && (!w.folded || owned && !w.owned):
			if err := s.gain(ctx, src, t, owned); err != nil {
				s.stale = true
				return err
			}
		case !owned && w.owned:
			s.agg.Forget(t)
			delete(s.refused, t)
		}
	}
	return nil
}

// gain folds a tenant from the log, up to the state's last record, in
// place of what the state held of it; owned, it counts its usage and
// profiles and keeps its verdicts.
func (s *State) gain(ctx context.Context, src Source, tenant string, owned bool) error {
	delete(s.refused, tenant)
	s.agg.DropTenant(tenant)
	src = UpTo(src, s.seq)
	scan := src.ScanTenantState
	if owned {
		scan = src.ScanTenant
	}
	var last place
	fresh, err := foldTenant(ctx, src, scan, s.opts, s.directory, tenant, s.Reads(tenant), time.Time{}, func(r store.Record, res attribution.Result) {
		if r.Event.Tenant == tenant {
			s.noteLink(r.Event)
		}
		last = later(last, placeOf(r))
		s.verdict(r, res)
		if isMeasure(r.Event.Type) {
			s.count(r.Event, res)
		}
	})
	if err != nil {
		return err
	}
	s.engine.DropTenant(tenant)
	s.engine.AdoptTenant(tenant, fresh)
	s.renoteTenant(tenant)
	delete(s.last, tenant)
	if last != (place{}) {
		s.last[tenant] = last
		s.latest = later(s.latest, last)
	}
	return nil
}

// held returns the tenants the state holds anything of.
func (s *State) held() map[string]bool {
	out := make(map[string]bool, len(s.last))
	for t := range s.last {
		out[t] = true
	}
	for t := range s.refused {
		out[t] = true
	}
	for t := range s.agg.Tenants() {
		out[t] = true
	}
	for t := range s.engine.Tenants() {
		out[t] = true
	}
	for t := range s.noted {
		out[t] = true
	}
	delete(out, "")
	return out
}

// drop forgets a tenant the state no longer folds.
func (s *State) drop(tenant string) {
	s.engine.DropTenant(tenant)
	s.agg.Forget(tenant)
	delete(s.refused, tenant)
	delete(s.last, tenant)
	for id, ts := range s.linkedBy {
		delete(ts, tenant)
		if len(ts) == 0 {
			delete(s.linkedBy, id)
		}
	}
}
