package fold

import (
	"context"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
)

// Source reads the log: the records after a sequence number, in sequence
// order, and one tenant's records (the directory's for ""), by place: all
// of them, those that make its state (all but usage and profiles), or all
// of those from an instant up to another (excluded; zero: no end).
type Source interface {
	Scan(ctx context.Context, after int64, fn func(store.Record) error) error
	ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error
	ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error
	ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error
}

// A Follower is a Source that reads only the records that a state owning
// some buckets folds (store.Following), and says up to which record of the
// log it read (store.Store and store.Writer are).
type Follower interface {
	ScanFollowing(ctx context.Context, after int64, f store.Following, fn func(store.Record) error) (int64, error)
}

// Records is a log held in memory, in sequence order: a Source for a file
// read whole, or for the tests.
type Records []store.Record

// ScanFollowing calls fn on each record after the sequence number after
// that f names, and returns the last record's sequence number.
func (rs Records) ScanFollowing(ctx context.Context, after int64, f store.Following, fn func(store.Record) error) (int64, error) {
	horizon := after
	for _, r := range rs {
		if r.Seq <= after {
			continue
		}
		horizon = max(horizon, r.Seq)
		if !f.Names(r.Event.Tenant, r.Event.Type) {
			continue
		}
		if err := fn(r); err != nil {
			return 0, err
		}
	}
	return horizon, ctx.Err()
}

// Scan calls fn on each record after the sequence number after.
func (rs Records) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	for _, r := range rs {
		if r.Seq <= after {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// ScanTenant calls fn on each record of a tenant, by place.
func (rs Records) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return rs.scanTenant(ctx, tenant, func(store.Record) bool { return true }, fn)
}

// ScanTenantState calls fn on each record of a tenant that makes its
// state, by place.
func (rs Records) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return rs.scanTenant(ctx, tenant, func(r store.Record) bool { return !isMeasure(r.Event.Type) }, fn)
}

// ScanTenantBetween calls fn on each record of a tenant at or after from
// and before to (zero: no end), by place.
func (rs Records) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	return rs.scanTenant(ctx, tenant, func(r store.Record) bool {
		return !r.Event.Time.Before(from) && (to.IsZero() || r.Event.Time.Before(to))
	}, fn)
}

func (rs Records) scanTenant(ctx context.Context, tenant string, keep func(store.Record) bool, fn func(store.Record) error) error {
	var mine []store.Record
	for _, r := range rs {
		if r.Event.Tenant == tenant && keep(r) {
			mine = append(mine, r)
		}
	}
	sortRecords(mine)
	for _, r := range mine {
		if err := fn(r); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// UpTo is src read up to its record seq: what a state that folded the log
// up to there reads of it, whatever was committed after.
func UpTo(src Source, seq int64) Source { return upTo{src, seq} }

type upTo struct {
	Source
	last int64
}

func (u upTo) keep(fn func(store.Record) error) func(store.Record) error {
	return func(r store.Record) error {
		if r.Seq > u.last {
			return nil
		}
		return fn(r)
	}
}

func (u upTo) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	return u.Source.Scan(ctx, after, u.keep(fn))
}

func (u upTo) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return u.Source.ScanTenant(ctx, tenant, u.keep(fn))
}

func (u upTo) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return u.Source.ScanTenantState(ctx, tenant, u.keep(fn))
}

func (u upTo) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	return u.Source.ScanTenantBetween(ctx, tenant, from, to, u.keep(fn))
}

// isMeasure reports whether events of a type are usage or profiles:
// credited from the state, they change none of it.
func isMeasure(typ string) bool {
	return typ == event.Usage || typ == event.Profiles
}
