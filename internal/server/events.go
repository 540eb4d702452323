package server

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
)

// maxBatchBytes bounds the body of one POST /v1/events.
const maxBatchBytes = 64 << 20

// write runs fn inside a write of the log, then folds what was committed
// since the state's last record, fn's appends included, before the write
// commits. When the write fails after the state folded its records, the
// state is marked stale and folded again on its next use.
func (s *Server) write(ctx context.Context, fn func(w store.Writer) error) error {
	// Writers of this process queue here rather than at the database's
	// lock, which SQLite grants by polling, unfairly under contention.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var base int64
	catchUp := func(w store.Writer) ([]change, error) {
		s.state.mu.Lock()
		defer s.state.mu.Unlock()
		err := s.state.catchUp(ctx, w)
		return s.state.takeOutbox(), err
	}
	err := s.store.Write(ctx, func(w store.Writer) error {
		// What other processes committed is folded first, so that fn
		// sees the state of the log it appends to; they filed its changes.
		if _, err := catchUp(w); err != nil {
			return err
		}
		s.state.mu.RLock()
		base = s.state.seq
		s.state.mu.RUnlock()
		if err := fn(w); err != nil {
			return err
		}
		changes, err := catchUp(w)
		if err != nil {
			return err
		}
		return fileChanges(ctx, w, changes)
	})
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	if err != nil {
		if s.state.seq != base {
			s.state.stale = true
		}
		return err
	}
	s.maybeSnapshot(ctx)
	return nil
}

// verdicts are what became of the events of a batch: each stored one is
// accepted (applied now) or held (stored, refused by the state as of now);
// a duplicate is not stored.
type verdicts struct {
	seqs []int64
	held []*event.Refusal // by event, nil unless held
}

// submit stores events at the end of the log, inside write, and returns
// their verdicts once the state has folded them. The caller holds the
// write; the state is read under its lock.
func (s *Server) submit(ctx context.Context, w store.Writer, events []*event.Event) (func() verdicts, error) {
	seqs, err := w.Append(ctx, events)
	if err != nil {
		return nil, err
	}
	return func() verdicts {
		v := verdicts{seqs: seqs, held: make([]*event.Refusal, len(events))}
		for i, seq := range seqs {
			if seq == 0 {
				continue
			}
			if rf := s.state.refusal(events[i].Tenant, seq); rf != nil {
				held := *rf
				held.Line = events[i].Line
				v.held[i] = &held
			}
		}
		return v
	}, nil
}

// Ingest stores events at the end of the log, as POST /v1/events does for
// the lines that pass its checks, and says what became of them.
func (s *Server) Ingest(ctx context.Context, events []*event.Event) (accepted, held, duplicates int, err error) {
	var res ingestResult
	err = s.ingest(ctx, events, &res)
	return res.Accepted, len(res.Held), res.Duplicates, err
}

// ingest stores events and counts their verdicts into res.
func (s *Server) ingest(ctx context.Context, events []*event.Event, res *ingestResult) error {
	var outcome func() verdicts
	err := s.write(ctx, func(wr store.Writer) error {
		var err error
		outcome, err = s.submit(ctx, wr, events)
		return err
	})
	if err != nil {
		return err
	}
	s.state.mu.RLock()
	v := outcome()
	s.state.mu.RUnlock()
	for i, seq := range v.seqs {
		switch {
		case seq == 0:
			res.Duplicates++
		case v.held[i] != nil:
			res.Held = append(res.Held, v.held[i])
		default:
			res.Accepted++
		}
	}
	return nil
}

// ingestResult is the answer to a batch (SPEC.md section 8).
type ingestResult struct {
	Accepted   int              `json:"accepted"`
	Held       []*event.Refusal `json:"held"`
	Duplicates int              `json:"duplicates"`
	Refused    []*event.Refusal `json:"refused"`
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request, p Principal) error {
	body := http.MaxBytesReader(w, r.Body, maxBatchBytes)
	res := ingestResult{Held: []*event.Refusal{}, Refused: []*event.Refusal{}}
	var events []*event.Event
	rd := event.NewReader(body)
	for {
		ev, rf, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return errorf(codeBadRequest, "the batch is larger than %d bytes; send it in smaller batches", maxBatchBytes)
			}
			return errorf(codeBadRequest, "read the batch: %v", err)
		}
		if rf != nil {
			res.Refused = append(res.Refused, rf)
			continue
		}
		if !mayPush(p, ev) {
			res.Refused = append(res.Refused, event.Refuse(ev, event.Forbidden, "a %s may not push a %s event for tenant %q", p.Role, ev.Type, ev.Tenant))
			continue
		}
		// What the operator pushes of links is an import: only the account
		// itself links.
		ev.Imported = p.Role == store.RoleOperator && (ev.Type == event.PalLinked || ev.Type == event.PalRemoved)
		events = append(events, ev)
	}
	if err := s.ingest(r.Context(), events, &res); err != nil {
		return err
	}
	slices.SortFunc(res.Refused, func(a, b *event.Refusal) int { return a.Line - b.Line })
	s.m.events.WithLabelValues("accepted").Add(float64(res.Accepted))
	s.m.events.WithLabelValues("held").Add(float64(len(res.Held)))
	s.m.events.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	s.m.events.WithLabelValues("refused").Add(float64(len(res.Refused)))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// getLog streams the log as NDJSON v1, in sequence order: all of it to the
// operator, a tenant's own events to its administrator, read from the store
// by tenant.
func (s *Server) getLog(w http.ResponseWriter, r *http.Request, p Principal) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	out := event.NewWriter(w)
	write := func(rec store.Record) error { return out.Write(rec.Event) }
	var err error
	if tenant, scoped := p.tenantScope(); scoped {
		err = s.store.TenantLog(r.Context(), tenant, write)
	} else {
		err = s.store.Scan(r.Context(), 0, write)
	}
	if err != nil {
		return err
	}
	return out.Flush()
}

// getRefusals pages through the stored records that the state refuses as
// it stands, by sequence number after ?after=, at most ?limit= a page.
func (s *Server) getRefusals(w http.ResponseWriter, r *http.Request, p Principal) error {
	after, limit, err := pageParams(r, "after")
	if err != nil {
		return err
	}
	if err := s.sync(r.Context()); err != nil {
		return err
	}
	var all []storedRefusal
	if tenant, scoped := p.tenantScope(); scoped {
		all = s.state.refusals(&tenant)
	} else {
		all = s.state.refusals(nil)
	}
	s.state.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(all, after+1, func(rf storedRefusal, seq int64) int { return cmp.Compare(rf.Seq, seq) })
	page := all[i:]
	var next *int64
	if len(page) > limit {
		page = page[:limit]
		n := page[limit-1].Seq
		next = &n
	}
	if page == nil {
		page = []storedRefusal{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"refused": page, "next": next})
	return nil
}
