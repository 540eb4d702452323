package server

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// Writers of different buckets do not wait for each other (SPEC.md
// section 10). A process's write locks the buckets of what it appends and
// of what its state folds, and reads nothing else: the records of other
// buckets may be in flight, numbered below its own. When its state would
// read beyond its locks (a role assignment another process stored makes
// one of its tenants read a tenant of another bucket), the write is tried
// again holding the whole log.

// errRelock ends a write of some buckets whose state would read the
// records of a bucket the write does not hold; nothing of it is kept, and
// the state stands as it was.
var errRelock = errors.New("the write's state reads a bucket the write does not lock")

// writeLocked runs fn in one write of the log that holds the locks of the
// buckets of the group's tenants and of those its state follows; a group
// that appends to the directory, or a state that follows every bucket,
// holds the whole log.
func (s *Server) writeLocked(ctx context.Context, group []*writeRequest, fn func(w store.Writer) error) error {
	buckets, some := s.writeBuckets(group)
	if !some {
		return s.writeWhole(ctx, fn)
	}
	var lw *lockedWriter
	err := s.shared.WriteBuckets(ctx, buckets, func(w store.Writer) error {
		lw = &lockedWriter{Writer: w, n: s.own.Buckets(), locked: buckets}
		return fn(lw)
	})
	// Stopped before it appended, the write is tried again whole; after,
	// it fails as any write does.
	if errors.Is(err, errRelock) && lw != nil && !lw.appended {
		s.m.relocked.Inc()
		return s.writeWhole(ctx, fn)
	}
	if err == nil {
		s.m.writes.WithLabelValues("buckets").Inc()
	}
	return err
}

// writeWhole runs fn in one write that holds the whole log.
func (s *Server) writeWhole(ctx context.Context, fn func(w store.Writer) error) error {
	err := s.store.Write(ctx, fn)
	if err == nil {
		s.m.writes.WithLabelValues("log").Inc()
	}
	return err
}

// writeBuckets returns the buckets a group's write locks, and false when
// it locks the whole log.
func (s *Server) writeBuckets(group []*writeRequest) ([]int, bool) {
	if s.own == nil {
		return nil, false
	}
	var f store.Following
	var some bool
	s.views.read(func(st *fold.State) error {
		f, some = st.Following()
		return nil
	})
	if !some {
		return nil, false
	}
	n := s.own.Buckets()
	buckets := f.Spans()
	for _, req := range group {
		if req.tenants == nil {
			return nil, false
		}
		for _, t := range req.tenants {
			if t == "" {
				return nil, false
			}
			buckets = append(buckets, store.Bucket(t, n))
		}
	}
	slices.Sort(buckets)
	return slices.Compact(buckets), true
}

// tenantsOfBatch lists the tenants of a batch's events, and those their
// role assignments name: a write locks their buckets. The directory's
// events are of "".
func tenantsOfBatch(events []*event.Event) []string {
	seen := make(map[string]bool)
	var out []string
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, ev := range events {
		add(ev.Tenant)
		if ev.Type == event.AzureRoleAssigned && ev.PrincipalTenant != "" {
			add(ev.PrincipalTenant)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// lockedWriter is a write of some buckets: it refuses (errRelock) to read
// what its locks do not hold, before reading any of it.
type lockedWriter struct {
	store.Writer
	n        int
	locked   []int
	appended bool
}

func (w *lockedWriter) Append(ctx context.Context, events []*event.Event) ([]int64, error) {
	w.appended = true
	return w.Writer.Append(ctx, events)
}

func (w *lockedWriter) holds(tenant string) bool {
	return tenant == "" || slices.Contains(w.locked, store.Bucket(tenant, w.n))
}

// Scan would read every bucket.
func (w *lockedWriter) Scan(context.Context, int64, func(store.Record) error) error {
	return errRelock
}

// ScanFollowing reads what the state follows, when the write holds it,
// and gives none of it when the state would begin to read a tenant of a
// bucket the write does not hold (readHeld).
func (w *lockedWriter) ScanFollowing(ctx context.Context, after int64, f store.Following, fn func(store.Record) error) (int64, error) {
	for _, b := range f.Spans() {
		if !slices.Contains(w.locked, b) {
			return 0, errRelock
		}
	}
	var h int64
	err := readHeld(f, w.holds, func(keep func(store.Record) error) error {
		var err error
		h, err = w.Writer.ScanFollowing(ctx, after, f, keep)
		return err
	}, fn)
	if err != nil {
		return 0, err
	}
	return h, nil
}

func (w *lockedWriter) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	if !w.holds(tenant) {
		return errRelock
	}
	return w.Writer.ScanTenant(ctx, tenant, fn)
}

func (w *lockedWriter) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	if !w.holds(tenant) {
		return errRelock
	}
	return w.Writer.ScanTenantState(ctx, tenant, fn)
}

func (w *lockedWriter) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	if !w.holds(tenant) {
		return errRelock
	}
	return w.Writer.ScanTenantBetween(ctx, tenant, from, to, fn)
}

// A reader brings the state up to the log holding it, and this process's
// writers wait for the state while they hold their locks of the log: a
// reader must not wait for them then. It takes its horizon first (the
// writers in flight of what its state follows are done), then catches up
// to it without waiting. What would make its state read beyond that (a
// tenant it comes to read through Lighthouse, a state that follows every
// bucket anew) it leaves to a catch-up that holds s.committing, when no
// writer of this process is in flight, and that may wait.

// readerSync brings the published copy of the state up to the log's
// record last, for a reader.
func (s *Server) readerSync(ctx context.Context, last int64) error {
	var current, some bool
	var f store.Following
	s.views.read(func(st *fold.State) error {
		current = last <= st.Seq() && !st.Stale()
		f, some = st.Following()
		return nil
	})
	if current {
		return nil
	}
	var spans []int
	if some {
		spans = f.Spans()
	}
	h, err := s.store.Horizon(ctx, spans)
	if err != nil {
		return err
	}
	err = s.catchUp(ctx, &readSource{Store: s.store, horizon: h, spans: spans}, last)
	if !errors.Is(err, errRelock) {
		return err
	}
	s.committing.Lock()
	defer s.committing.Unlock()
	return s.syncTo(ctx, s.waiting(), last)
}

// readSource is the store as a reader's catch-up reads it: up to a horizon
// of the buckets spans (nil: every one), waiting for no writer.
type readSource struct {
	store.Store
	horizon int64
	spans   []int
}

// covers reports whether the horizon holds the buckets of f.
func (r *readSource) covers(f []int) bool {
	if r.spans == nil {
		return true
	}
	if f == nil {
		return false
	}
	for _, b := range f {
		if !slices.Contains(r.spans, b) {
			return false
		}
	}
	return true
}

func (r *readSource) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	if r.spans != nil {
		return errRelock
	}
	return r.Store.ScanTo(ctx, after, r.horizon, fn)
}

func (r *readSource) ScanFollowing(ctx context.Context, after int64, f store.Following, fn func(store.Record) error) (int64, error) {
	if !r.covers(f.Spans()) {
		return 0, errRelock
	}
	n := f.Buckets
	holds := func(tenant string) bool {
		return r.spans == nil || tenant == "" || slices.Contains(r.spans, store.Bucket(tenant, n))
	}
	err := readHeld(f, holds, func(keep func(store.Record) error) error {
		return r.Store.ScanFollowingTo(ctx, after, r.horizon, f, keep)
	}, fn)
	if err != nil {
		return 0, err
	}
	return r.horizon, nil
}

// readHeld gives fn the records scan reads, once it read them all, and
// none of them when a role assignment among them of a tenant f names (a
// tenant the state owns) names a tenant of a bucket that is not held: the
// state would begin to read that tenant, whose records in flight are not
// waited for (errRelock).
func readHeld(f store.Following, holds func(tenant string) bool, scan func(keep func(store.Record) error) error, fn func(store.Record) error) error {
	var recs []store.Record
	err := scan(func(r store.Record) error {
		ev := r.Event
		if ev.Type == event.AzureRoleAssigned && f.Names(ev.Tenant) && !holds(ev.PrincipalTenant) {
			return errRelock
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// waiting returns the store as a catch-up that holds s.committing reads
// it: a tenant's records once the writers in flight of its bucket are
// done, so that a tenant the state begins to fold (a bucket taken, a
// tenant read through Lighthouse) is read whole up to the state's last
// record.
func (s *Server) waiting() fold.Source {
	w := waitingSource{Store: s.store}
	if s.own != nil {
		w.n = s.own.Buckets()
	}
	return w
}

// waitingSource is the store read by a catch-up that may wait, of n
// buckets (0: one process writes the whole log, and in the order of its
// numbers).
type waitingSource struct {
	store.Store
	n int
}

func (w waitingSource) wait(ctx context.Context, tenant string) error {
	if w.n == 0 || tenant == "" {
		return nil
	}
	_, err := w.Store.Horizon(ctx, []int{store.Bucket(tenant, w.n)})
	return err
}

func (w waitingSource) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	if err := w.wait(ctx, tenant); err != nil {
		return err
	}
	return w.Store.ScanTenant(ctx, tenant, fn)
}

func (w waitingSource) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	if err := w.wait(ctx, tenant); err != nil {
		return err
	}
	return w.Store.ScanTenantState(ctx, tenant, fn)
}

func (w waitingSource) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	if err := w.wait(ctx, tenant); err != nil {
		return err
	}
	return w.Store.ScanTenantBetween(ctx, tenant, from, to, fn)
}
