package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/lease"
	"github.com/palproject/pal/internal/store"
)

// A process sharing the tenants with others (SPEC.md section 10) folds the
// tenants of the buckets it holds, with the directory and the tenants they
// read (fold.State.Own), and files their credit changes, for every record
// it folds: its own writes', the others' (a directory record changes
// tenants in every bucket), and, when it takes a bucket, what moved in the
// bucket's histories since its last owner filed. Each filing notes the
// buckets filed up to the record folded, under the check of their epochs,
// and the feed is read up to the lowest of those notes (feedEnd): below it,
// nothing is filed later.

// reown tells the state which buckets it owns, when the leases held
// changed since it was last told: it gains the tenants of the buckets
// taken (folded from src) and forgets those of the buckets lost. For each
// bucket taken, the changes its tenants went through after its last owner
// filed them are queued as corrections. The caller holds s.committing.
func (s *Server) reown(ctx context.Context, src fold.Source) error {
	if s.own == nil {
		return nil
	}
	held := s.own.Held()
	was := s.owning.Load()
	if was != nil && maps.Equal(*was, held) {
		return nil
	}
	n := s.own.Buckets()
	var taken []int
	for b, epoch := range held {
		if was == nil || (*was)[b] != epoch {
			taken = append(taken, b)
		}
	}
	// The tenants of the buckets taken, and what their last owners filed
	// of them: the histories up to the record they filed, folded from the
	// log. A bucket taken, its last owner files no more: its note is
	// final. The state folds the log that far first. A process that only
	// lost buckets lists no tenant.
	var gained []string
	filedUpTo := make(map[string]int64)
	filed := make(map[int]int64, len(taken))
	var listed int64
	if len(taken) > 0 {
		leases, err := s.shared.Leases(ctx)
		if err != nil {
			return err
		}
		last := int64(0)
		for _, b := range taken {
			if b < len(leases) {
				filed[b] = leases[b].Filed
				last = max(last, leases[b].Filed)
			}
		}
		// Every tenant of a record up to listed is listed.
		listed, err = s.store.LastSeq(ctx)
		if err != nil {
			return err
		}
		if err := s.listGained(ctx, 0, filed, &gained, filedUpTo); err != nil {
			return err
		}
		if err := s.syncTo(ctx, src, last); err != nil {
			return err
		}
	}
	var dir []store.Record
	var reads map[string][]string
	s.views.read(func(st *fold.State) error {
		dir = st.Directory()
		reads = make(map[string][]string)
		for _, t := range gained {
			reads[t] = st.Reads(t)
		}
		return nil
	})
	before := make(map[string]map[string][]attribution.Interval, len(gained))
	for _, t := range gained {
		upTo := filedUpTo[t]
		var known []store.Record
		for _, r := range dir {
			if r.Seq <= upTo {
				known = append(known, r)
			}
		}
		e, err := fold.Tenant(ctx, fold.UpTo(src, upTo), s.cfg.Options, known, t, reads[t], time.Time{}, nil)
		if err != nil {
			return err
		}
		before[t] = e.TenantHistory(t)
	}
	_, err := update(s.views, src, func(st *fold.State, src fold.Source) (struct{}, error) {
		r, _ := src.(*replay)
		replaying := r != nil && r.replaying
		// A tenant first stored after the listing may be folded past
		// already, while its bucket was not this state's: the tenants
		// first stored since are listed with the state held, and gained
		// too. Their last owner filed nothing of them.
		if len(taken) > 0 && !replaying {
			if err := s.listGained(ctx, listed, filed, &gained, filedUpTo); err != nil {
				// The state is as it was: a caller gone leaves it whole.
				return struct{}{}, intact{err}
			}
		}
		if err := st.OwnBuckets(ctx, src, n, slices.Collect(maps.Keys(held)), gained); err != nil {
			return struct{}{}, err
		}
		if replaying {
			return struct{}{}, nil
		}
		for _, t := range gained {
			after := st.Engine().TenantHistory(t)
			ids := slices.Sorted(maps.Keys(after))
			for id := range before[t] {
				if _, ok := after[id]; !ok {
					ids = append(ids, id)
				}
			}
			for _, id := range ids {
				for _, c := range attribution.Corrections(t, id, before[t][id], after[id]) {
					s.unfiled = append(s.unfiled, fold.Change{Seq: st.Seq(), Change: c})
				}
			}
		}
		return struct{}{}, nil
	})
	if err != nil {
		return err
	}
	s.owning.Store(&held)
	return nil
}

// listGained adds to gained the tenants of the buckets taken (those filed
// has) first stored after record after that it does not have yet, each
// filed up to its bucket's note.
func (s *Server) listGained(ctx context.Context, after int64, filed map[int]int64, gained *[]string, filedUpTo map[string]int64) error {
	all, err := s.shared.Tenants(ctx, slices.Sorted(maps.Keys(filed)), after)
	if err != nil {
		return err
	}
	for _, t := range all {
		f, ok := filed[store.Bucket(t, s.own.Buckets())]
		if _, listed := filedUpTo[t]; ok && !listed {
			*gained = append(*gained, t)
			filedUpTo[t] = f
		}
	}
	return nil
}

// queue keeps the changes a catch-up folded of the tenants the state owns,
// to be filed by the next filing (fileOwned); views.mu is held.
func (s *Server) queue(changes []fold.Change) {
	if s.own != nil {
		s.unfiled = append(s.unfiled, changes...)
	}
}

// fileOwned files the changes queued and those of a write (caused), with
// the buckets the state owns, and still holds, noted filed up to its last
// record and the present it knows, inside w's transaction when w is a
// writer of the log. The changes of a bucket lost meanwhile are dropped:
// its next owner files them, as corrections. The caller holds
// s.committing. It returns the changes it took from the queue, for a
// write that fails to put back (requeue).
func (s *Server) fileOwned(ctx context.Context, w store.Writer, caused []fold.Change) ([]fold.Change, error) {
	owning := s.owning.Load()
	if owning == nil {
		return nil, nil
	}
	still := s.own.Held()
	held := make(map[int]int64, len(*owning))
	for b, epoch := range *owning {
		if still[b] == epoch {
			held[b] = epoch
		}
	}
	s.views.mu.Lock()
	queued := s.unfiled
	s.unfiled = nil
	st := s.views.copies[s.views.published.Load()]
	seq, present := st.Seq(), st.Engine().Now()
	s.views.mu.Unlock()
	n := s.own.Buckets()
	changes := append(slices.Clone(queued), caused...)
	slices.SortStableFunc(changes, func(a, b fold.Change) int { return cmp.Compare(a.Seq, b.Seq) })
	filed := make([]store.FiledChange, 0, len(changes))
	for _, c := range changes {
		b := store.Bucket(c.Tenant, n)
		if _, ok := held[b]; !ok {
			continue
		}
		body, err := json.Marshal(c)
		if err != nil {
			return queued, fmt.Errorf("file changes: %w", err)
		}
		// The store numbers a record's changes within their bucket.
		filed = append(filed, store.FiledChange{At: store.Cursor{Seq: c.Seq, K: b << 32}, Tenant: c.Tenant, Orgs: c.Change.Orgs(), Body: body})
	}
	err := s.shared.FileOwned(ctx, w, held, seq, present, filed)
	var fenced *store.FencedBucket
	if errors.As(err, &fenced) {
		s.log.Warn("a bucket was taken before its changes were filed: its new owner files them", "bucket", fenced.Bucket)
		s.own.Lost(fenced.Bucket, fenced.Epoch)
	}
	return queued, err
}

// requeue puts back changes taken from the queue by a filing that failed.
func (s *Server) requeue(changes []fold.Change) {
	if len(changes) == 0 {
		return
	}
	s.views.mu.Lock()
	s.unfiled = append(changes, s.unfiled...)
	s.views.mu.Unlock()
}

// feedEnd is the last record whose changes are all filed: the log's last,
// and, while processes share the tenants, the lowest their owners filed
// up to.
func (s *Server) feedEnd(ctx context.Context) (int64, error) {
	last, err := s.store.LastSeq(ctx)
	if err != nil || s.own == nil {
		return last, err
	}
	filed, err := s.shared.Filed(ctx)
	return min(last, filed), err
}

// share follows the others: it folds what they committed, takes the
// present they know, tells the state the buckets it holds now, and files
// what is queued, so that the feed moves on.
func (s *Server) share(ctx context.Context) error {
	s.committing.Lock()
	defer s.committing.Unlock()
	if err := s.read(ctx, func(*fold.State) error { return nil }); err != nil || s.own == nil {
		return err
	}
	present, err := s.shared.Present(ctx)
	if err != nil {
		return err
	}
	var now time.Time
	s.views.read(func(st *fold.State) error {
		now = st.Engine().Now()
		return nil
	})
	if present.After(now) {
		update(s.views, s.store, func(st *fold.State, _ fold.Source) (struct{}, error) {
			st.Engine().AdvanceTo(present)
			return struct{}{}, nil
		})
	}
	if err := s.reown(ctx, s.store); err != nil {
		return err
	}
	queued, err := s.fileOwned(ctx, nil, nil)
	if err != nil && !errors.Is(err, store.ErrFenced) {
		s.requeue(queued)
	}
	return err
}

// judged checks, before a write, that every bucket of its tenants has an
// owner to say what became of its lines: a write that could not be
// answered is not stored.
func (s *Server) judged(ctx context.Context, events []*event.Event) error {
	if s.own == nil {
		return nil
	}
	n := s.own.Buckets()
	need := make(map[int]bool)
	for _, ev := range events {
		if ev.Tenant != "" {
			need[store.Bucket(ev.Tenant, n)] = true
		}
	}
	if len(need) == 0 {
		return nil
	}
	for fresh := false; ; fresh = true {
		routes, err := s.own.Routes(ctx, fresh)
		if err != nil {
			return err
		}
		missing := -1
		for b := range need {
			if _, ok := routes[b]; !ok {
				missing = b
				break
			}
		}
		switch {
		case missing < 0:
			return nil
		case fresh:
			return &apiError{Code: codeUnavailable, Message: fmt.Sprintf("no process holds bucket %d of the tenants for the moment, to say what becomes of its lines: nothing was stored; send them again in a few seconds", missing), RetryAfter: 2}
		}
	}
}

// verdictsAway returns the verdicts on the stored lines of a write whose
// tenants this process does not fold: their owners say, once they folded
// them, each asked for the refusals of its buckets after the first of
// those lines (its part of the operator's /v1/refusals), by event. Lines
// that no owner answers for are judged here, by a fold of their tenants
// from the log: the write is stored, and its caller is told what became
// of it.
func (s *Server) verdictsAway(ctx context.Context, events []*event.Event, seqs []int64) (map[int]*event.Refusal, error) {
	owning := s.owning.Load()
	if s.own == nil || owning == nil {
		return nil, nil
	}
	n := s.own.Buckets()
	at := make(map[int64]int)
	first, last := make(map[int]int64), make(map[int]int64)
	for i, seq := range seqs {
		t := events[i].Tenant
		if seq == 0 || t == "" {
			continue
		}
		b := store.Bucket(t, n)
		if _, ok := (*owning)[b]; ok {
			continue
		}
		at[seq] = i
		if f, ok := first[b]; !ok || seq < f {
			first[b] = seq
		}
		last[b] = max(last[b], seq)
	}
	if len(at) == 0 {
		return nil, nil
	}
	routes, err := s.own.Routes(ctx, false)
	if err != nil {
		return nil, err
	}
	for b := range first {
		if r, ok := routes[b]; !ok || r.Self {
			// The last round's leases are behind: read them again.
			if routes, err = s.own.Routes(ctx, true); err != nil {
				return nil, err
			}
			break
		}
	}
	type ask struct {
		route      lease.Route
		buckets    []int
		from, upto int64
	}
	asks := make(map[string]*ask)
	var here []int
	for b := range first {
		r, ok := routes[b]
		if !ok || r.Self {
			here = append(here, b)
			continue
		}
		a := asks[r.Owner]
		if a == nil {
			a = &ask{route: r, from: first[b], upto: last[b]}
			asks[r.Owner] = a
		}
		a.buckets = append(a.buckets, b)
		a.from, a.upto = min(a.from, first[b]), max(a.upto, last[b])
	}
	out := make(map[int]*event.Refusal)
	for _, a := range asks {
		// An owner that did not answer a moment ago is not waited for
		// again: its lines are judged here meanwhile.
		if until, failed := s.silent.Load(a.route.Owner); failed && time.Now().Before(until.(time.Time)) {
			here = append(here, a.buckets...)
			continue
		}
		if err := s.askVerdicts(ctx, a.route, a.buckets, a.from, a.upto, func(rf fold.StoredRefusal) {
			if i, ok := at[rf.Seq]; ok {
				out[i] = &event.Refusal{Line: events[i].Line, Type: rf.Type, Code: rf.Code, Message: rf.Message}
			}
		}); err != nil {
			s.log.Warn("the owner of buckets did not say what became of lines written; they are judged here", "owner", a.route.Owner, "buckets", a.buckets, "error", err)
			if ctx.Err() == nil {
				s.silent.Store(a.route.Owner, time.Now().Add(silentFor*s.forwardTimeout))
			}
			here = append(here, a.buckets...)
		}
	}
	if len(here) == 0 {
		return out, nil
	}
	// Judged here: each tenant of those buckets folded from the log.
	judged := make(map[int]bool)
	for _, b := range here {
		judged[b] = true
	}
	var dir []store.Record
	reads := make(map[string][]string)
	s.views.read(func(st *fold.State) error {
		dir = st.Directory()
		for _, i := range at {
			t := events[i].Tenant
			reads[t] = st.Reads(t)
		}
		return nil
	})
	byTenant := make(map[string][]int64)
	for seq, i := range at {
		if t := events[i].Tenant; judged[store.Bucket(t, n)] {
			byTenant[t] = append(byTenant[t], seq)
		}
	}
	for t, seqs := range byTenant {
		refused, err := fold.Verdicts(ctx, s.store, s.cfg.Options, dir, t, reads[t], slices.Max(seqs))
		if err != nil {
			return nil, err
		}
		for _, seq := range seqs {
			if rf := refused[seq]; rf != nil {
				held := *rf
				held.Line = events[at[seq]].Line
				out[at[seq]] = &held
			}
		}
	}
	return out, nil
}

// askVerdicts asks an owner for the refusals of its buckets from record
// from to record upto, and gives each to fn. The owner folds the records
// first, which may take longer than a question.
func (s *Server) askVerdicts(ctx context.Context, to lease.Route, buckets []int, from, upto int64, fn func(fold.StoredRefusal)) error {
	// An owner is waited for half a forward's timeout, to be reached and
	// to fold the lines first (milliseconds, as a rule): one paused with
	// its connections open holds the write no longer, its lines judged
	// here, and the next ones too while it is silent.
	ctx, cancel := context.WithTimeout(ctx, s.forwardTimeout/2)
	defer cancel()
	for after := from - 1; after < upto; {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("/v1/refusals?after=%d&limit=%d", after, maxPage), nil)
		if err != nil {
			return err
		}
		req.Header.Set(keyHeader, s.key)
		var part pagePart[fold.StoredRefusal]
		if err := s.askPart(ctx, &gathering{r: req, patient: true}, 1, to, buckets, &part); err != nil {
			return err
		}
		for _, rf := range part.Items {
			fn(rf)
			after = rf.Seq
		}
		if !part.More {
			return nil
		}
	}
	return nil
}
