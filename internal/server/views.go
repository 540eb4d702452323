package server

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// views keeps two copies of the state so that readers never wait for a
// writer (the left-right technique). Readers read the published copy, and
// no writer changes a copy while a reader is on it: a writer folds into
// the other copy, publishes it, waits until the readers of the first have
// left, then folds the same into the first. A reader costs two atomic
// additions; a writer a second fold in memory, and the state's memory is
// held twice.
type views struct {
	copies    [2]*fold.State
	published atomic.Int32
	// Readers arrive at readers[version]; a writer drains one indicator,
	// moves version to it, then drains the other.
	version atomic.Int32
	readers [2]atomic.Int64
	// mu lets one writer at a time change the copies.
	mu sync.Mutex
	// drained hears how long each writer waited for readers to leave.
	drained func(time.Duration)
	// answers keeps what the pages computed from the published state.
	answers answers
}

func newViews(opts attribution.Options, chunk int, drained func(time.Duration)) *views {
	v := &views{drained: drained}
	v.copies = [2]*fold.State{fold.New(opts), fold.New(opts)}
	if chunk > 0 {
		for _, st := range v.copies {
			st.SetChunk(chunk)
		}
	}
	return v
}

// read runs fn on the published copy, which nothing changes meanwhile.
// What fn keeps of it past its return must be a copy.
func (v *views) read(fn func(st *fold.State) error) error {
	vi := v.version.Load()
	v.readers[vi].Add(1)
	defer v.readers[vi].Add(-1)
	return fn(v.copies[v.published.Load()])
}

// update changes both copies by fn, the unpublished one first, and returns
// what fn returned for it. fn must change both the same way: the store it
// is given reads the store for the first copy and replays the same records
// to the second. When fn fails on the first copy, nothing is published and
// that copy is marked stale; the published one is as it was.
func update[T any](v *views, src fold.Source, fn func(st *fold.State, src fold.Source) (T, error)) (T, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.published.Load()
	r := &replay{src: src}
	first, err := fn(v.copies[1-p], r)
	if err != nil {
		// A catch-up cut short (a reader gone, a connection lost) leaves
		// a fold of the log up to its last record: the copy stands.
		var whole intact
		if !errors.As(err, &whole) {
			v.copies[1-p].MarkStale()
		}
		return first, err
	}
	v.published.Store(1 - p)
	v.drain()
	r.replaying = true
	if _, err := fn(v.copies[p], r); err != nil {
		v.copies[p].MarkStale()
		return first, err
	}
	return first, nil
}

// current reports whether both copies have folded the log up to record
// last and are not stale. A write folds into the copy not published, which
// a failed catch-up may have left behind while the published one is not.
func (v *views) current(last int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, st := range v.copies {
		if st.Stale() || st.Seq() < last {
			return false
		}
	}
	return true
}

// each changes both copies by fn, with no reader about: when the service
// starts.
func (v *views) each(fn func(st *fold.State) error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, st := range v.copies {
		if err := fn(st); err != nil {
			return err
		}
	}
	return nil
}

// drain waits until no reader is left on the copy that was published
// before the last swap: readers that arrived before it may still be on it.
func (v *views) drain() {
	start := time.Now()
	prev := v.version.Load()
	next := 1 - prev
	wait := func(i int32) {
		for spins := 0; v.readers[i].Load() != 0; spins++ {
			if spins < 100 {
				runtime.Gosched()
			} else {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
	wait(next)
	v.version.Store(next)
	wait(prev)
	if v.drained != nil {
		v.drained(time.Since(start))
	}
}

// intact is an error after which a copy of the state is a fold of the log
// up to its last record: a catch-up cut short, which marks the state
// stale itself when it is not.
type intact struct{ error }

func (e intact) Unwrap() error { return e.error }

// replay reads the store for the first copy an update changes, and gives
// the second the same records, so that both fold the same whatever was
// committed in between.
type replay struct {
	src       fold.Source
	replaying bool
	reads     []read
	next      int
}

// read is one read of the store: what it asked, and what it got.
type read struct {
	asked
	recs    []store.Record
	horizon int64
}

// asked is what a read of the store asks: the records after a sequence
// number, or a tenant's, all of them, those of its state, or those
// between two instants.
type asked struct {
	kind     readKind
	after    int64
	tenant   string
	from, to time.Time
	follow   store.Following
}

type readKind int

const (
	readLog readKind = iota
	readFollowing
	readTenant
	readTenantState
	readTenantBetween
)

// whole makes a scan that reads to the end of what it asks, of horizon 0.
func whole(scan func(func(store.Record) error) error) func(func(store.Record) error) (int64, error) {
	return func(f func(store.Record) error) (int64, error) { return 0, scan(f) }
}

func (r *replay) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	_, err := r.read(asked{kind: readLog, after: after}, whole(func(f func(store.Record) error) error { return r.src.Scan(ctx, after, f) }), fn)
	return err
}

// ScanFollowing reads what the store gives a state that follows some
// buckets, or every record after after when it cannot narrow its reads.
func (r *replay) ScanFollowing(ctx context.Context, after int64, fl store.Following, fn func(store.Record) error) (int64, error) {
	return r.read(asked{kind: readFollowing, after: after, follow: fl}, func(f func(store.Record) error) (int64, error) {
		if src, ok := r.src.(fold.Follower); ok {
			return src.ScanFollowing(ctx, after, fl, f)
		}
		return 0, r.src.Scan(ctx, after, f)
	}, fn)
}

func (r *replay) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	_, err := r.read(asked{kind: readTenant, tenant: tenant}, whole(func(f func(store.Record) error) error { return r.src.ScanTenant(ctx, tenant, f) }), fn)
	return err
}

func (r *replay) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	_, err := r.read(asked{kind: readTenantBetween, tenant: tenant, from: from, to: to}, whole(func(f func(store.Record) error) error { return r.src.ScanTenantBetween(ctx, tenant, from, to, f) }), fn)
	return err
}

func (r *replay) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	_, err := r.read(asked{kind: readTenantState, tenant: tenant}, whole(func(f func(store.Record) error) error { return r.src.ScanTenantState(ctx, tenant, f) }), fn)
	return err
}

func sameRead(a, b asked) bool {
	return a.kind == b.kind && a.after == b.after && a.tenant == b.tenant && a.from.Equal(b.from) && a.to.Equal(b.to) &&
		a.follow.Buckets == b.follow.Buckets && slices.Equal(a.follow.Held, b.follow.Held) && slices.Equal(a.follow.Tenants, b.follow.Tenants)
}

// read replays the next recorded read when the second copy asks the same,
// and reads the store otherwise (a copy that was stale asks for more). It
// returns the horizon of the read (ScanFollowing).
func (r *replay) read(q asked, scan func(func(store.Record) error) (int64, error), fn func(store.Record) error) (int64, error) {
	if r.replaying {
		if r.next < len(r.reads) && sameRead(r.reads[r.next].asked, q) {
			done := r.reads[r.next]
			r.next++
			for _, rec := range done.recs {
				if err := fn(rec); err != nil {
					return 0, err
				}
			}
			return done.horizon, nil
		}
		return scan(fn)
	}
	done := read{asked: q}
	horizon, err := scan(func(rec store.Record) error {
		done.recs = append(done.recs, rec)
		return fn(rec)
	})
	done.horizon = horizon
	r.reads = append(r.reads, done)
	return horizon, err
}
