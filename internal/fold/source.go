package fold

import (
	"context"

	"github.com/palproject/pal/internal/store"
)

// Source reads the log: the records after a sequence number, in sequence
// order, and one tenant's records (the directory's for ""), by place.
type Source interface {
	Scan(ctx context.Context, after int64, fn func(store.Record) error) error
	ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error
}

// Records is a log held in memory, in sequence order: a Source for a file
// read whole, or for the tests.
type Records []store.Record

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
	var mine []store.Record
	for _, r := range rs {
		if r.Event.Tenant == tenant {
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
