package fold

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
)

// Tenant folds one tenant's records, with the directory's records dir
// in their places, into a fresh engine, up to the instant until when it is
// not zero; each hears every record of the tenant with its result. It
// touches no state: readers call it on a copy of the directory, without
// holding the state. The records of the tenants reads (see principals) are
// folded in their places too, unheard.
func Tenant(ctx context.Context, src Source, opts attribution.Options, dir []store.Record, tenant string, reads []string, until time.Time, each func(store.Record, attribution.Result)) (*attribution.Engine, error) {
	e := attribution.New(opts)
	if len(reads) > 0 {
		side := slices.Clone(dir)
		for _, pt := range reads {
			err := src.ScanTenant(ctx, pt, func(r store.Record) error {
				side = append(side, r)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("fold tenant %s: %w", pt, err)
			}
		}
		sortRecords(side)
		dir = side
	}
	// upTo applies the directory's records before p, or all of them when
	// p is nil, up to until.
	upTo := func(p *place) {
		for len(dir) > 0 && (p == nil || placeOf(dir[0]).before(*p)) && (until.IsZero() || !dir[0].Event.Time.After(until)) {
			e.Apply(dir[0].Event)
			dir = dir[1:]
		}
	}
	err := src.ScanTenant(ctx, tenant, func(r store.Record) error {
		if !until.IsZero() && r.Event.Time.After(until) {
			return store.Stop
		}
		p := placeOf(r)
		upTo(&p)
		res := e.Apply(r.Event)
		if each != nil {
			each(r, res)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.Stop) {
		return nil, fmt.Errorf("fold tenant %s: %w", tenant, err)
	}
	upTo(nil)
	return e, nil
}

// Tenants folds the records of the tenants named and those their folds
// read, with the directory's records dir, into a fresh engine, in their
// places up to the instant until, and advances it to until. Usage and
// profiles change no state and are passed over. It touches no state:
// readers call it on a copy of the directory.
func Tenants(ctx context.Context, src Source, opts attribution.Options, dir []store.Record, tenants []string, until time.Time) (*attribution.Engine, error) {
	recs := make([]store.Record, 0, len(dir))
	for _, r := range dir {
		if !r.Event.Time.After(until) {
			recs = append(recs, r)
		}
	}
	for _, t := range tenants {
		err := src.ScanTenant(ctx, t, func(r store.Record) error {
			if r.Event.Time.After(until) {
				return store.Stop
			}
			if r.Event.Type != event.Usage && r.Event.Type != event.Profiles {
				recs = append(recs, r)
			}
			return nil
		})
		if err != nil && !errors.Is(err, store.Stop) {
			return nil, fmt.Errorf("fold tenant %s: %w", t, err)
		}
	}
	sortRecords(recs)
	e := attribution.New(opts)
	for _, r := range recs {
		e.Apply(r.Event)
	}
	e.AdvanceTo(until)
	return e, nil
}
