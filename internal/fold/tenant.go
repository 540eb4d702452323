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

// Tenant folds the records that make one tenant's state (all but its usage
// and profiles, which change none of it), with the directory's records dir
// in their places, into a fresh engine, up to the instant until when it is
// not zero, and then advances it to until; each hears every record folded
// with its result. It touches no state: readers call it on a copy of the
// directory, without holding the state. The records of the tenants reads
// (see principals) are folded in their places too, unheard.
func Tenant(ctx context.Context, src Source, opts attribution.Options, dir []store.Record, tenant string, reads []string, until time.Time, each func(store.Record, attribution.Result)) (*attribution.Engine, error) {
	return foldTenant(ctx, src, src.ScanTenantState, opts, dir, tenant, reads, until, each)
}

// foldTenant is Tenant, reading the tenant's records with scan, in their
// places: with its uses among them, each hears them credited in their
// places.
func foldTenant(ctx context.Context, src Source, scan func(context.Context, string, func(store.Record) error) error, opts attribution.Options, dir []store.Record, tenant string, reads []string, until time.Time, each func(store.Record, attribution.Result)) (*attribution.Engine, error) {
	e := attribution.New(opts)
	if len(reads) > 0 {
		side := slices.Clone(dir)
		for _, pt := range reads {
			err := src.ScanTenantState(ctx, pt, func(r store.Record) error {
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
	err := scan(ctx, tenant, func(r store.Record) error {
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
	if !until.IsZero() {
		e.AdvanceTo(until)
	}
	return e, nil
}

// Tenants folds the records of the tenants named and those their folds
// read, with the directory's records dir, into a fresh engine, in their
// places up to the instant until, and advances it to until. Usage and
// profiles change no state and are not read. It touches no state:
// readers call it on a copy of the directory.
func Tenants(ctx context.Context, src Source, opts attribution.Options, dir []store.Record, tenants []string, until time.Time) (*attribution.Engine, error) {
	recs := make([]store.Record, 0, len(dir))
	for _, r := range dir {
		if !r.Event.Time.After(until) {
			recs = append(recs, r)
		}
	}
	for _, t := range tenants {
		err := src.ScanTenantState(ctx, t, func(r store.Record) error {
			if r.Event.Time.After(until) {
				return store.Stop
			}
			recs = append(recs, r)
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

// Verdicts folds one tenant's records, its usage and profiles among them,
// up to record seq, with the directory's records dir, and returns the
// refusals of those the fold refuses, by sequence number: what a state
// that owns the tenant says of them. The records of the tenants reads are
// folded in their places too.
func Verdicts(ctx context.Context, src Source, opts attribution.Options, dir []store.Record, tenant string, reads []string, seq int64) (map[int64]*event.Refusal, error) {
	src = UpTo(src, seq)
	var known []store.Record
	for _, r := range dir {
		if r.Seq <= seq {
			known = append(known, r)
		}
	}
	out := make(map[int64]*event.Refusal)
	_, err := foldTenant(ctx, src, src.ScanTenant, opts, known, tenant, reads, time.Time{}, func(r store.Record, res attribution.Result) {
		if res.Outcome == attribution.Refused {
			out[r.Seq] = res.Refusal
		}
	})
	return out, err
}
