package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
)

// maxBatchBytes bounds the body of one POST /v1/events.
const maxBatchBytes = 64 << 20

// write runs fn inside a write of the log, with the state caught up and
// locked. When the write fails after events were applied to the state, the
// state is marked stale and rebuilt on its next use.
func (s *Server) write(ctx context.Context, fn func(w store.Writer) error) error {
	// Writers of this process queue here rather than at the database's
	// lock, which SQLite grants by polling, unfairly under contention.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var base int64
	err := s.store.Write(ctx, func(w store.Writer) error {
		s.state.mu.Lock()
		defer s.state.mu.Unlock()
		if err := s.state.catchUp(ctx, w); err != nil {
			return err
		}
		base = s.state.seq
		return fn(w)
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

// submit applies events to the state and appends those applied to the
// log, inside write, and returns each one's result. Events refused by the
// engine, and duplicates, are not appended. A usage or profiles event
// earlier than the state is credited from the resources' history; any
// other earlier event makes the log be folded again once, with the batch's
// earlier events in their places.
func (s *Server) submit(ctx context.Context, w store.Writer, events []*event.Event) ([]attribution.Result, error) {
	st := s.state
	results := make([]attribution.Result, len(events))
	// The batch is applied in time order, equal times in batch order.
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return events[a].Time.Compare(events[b].Time) })
	var refold []int
	for k, i := range order {
		ev := events[i]
		var res attribution.Result
		if ev.Time.Before(st.engine.Now()) {
			if at, seen := st.engine.SeenAt(ev.ID); seen && ev.ID != "" && !at.After(ev.Time) {
				results[i] = attribution.Result{Outcome: attribution.Duplicate}
				continue
			}
			late, ok := st.engine.ApplyLate(ev)
			if !ok {
				// This event and every later one go in their places.
				refold = order[k:]
				break
			}
			res = late
			st.agg.Record(ev, res)
		} else {
			res = st.apply(ev)
		}
		results[i] = res
		if res.Outcome != attribution.Applied {
			continue
		}
		seq, err := w.Append(ctx, ev)
		if err != nil {
			// The engine applied what the log did not take.
			st.stale = true
			return nil, err
		}
		st.stamp(seq)
		st.seq = seq
		st.sinceSnapshot++
	}
	if len(refold) == 0 {
		return results, nil
	}
	extra := make([]*event.Event, len(refold))
	for k, i := range refold {
		extra[k] = events[i]
	}
	f, err := foldWith(ctx, w, st.opts, extra)
	if err != nil {
		return nil, err
	}
	seqOf := make(map[int64]int64) // placeholder -> sequence number
	for k, i := range refold {
		results[i] = f.results[k]
		if f.results[k].Outcome != attribution.Applied {
			continue
		}
		seq, err := w.Append(ctx, events[i])
		if err != nil {
			return nil, err
		}
		seqOf[-int64(k+1)] = seq
		f.seq = max(f.seq, seq)
		st.sinceSnapshot++
	}
	for j, c := range f.changes {
		if c.Seq < 0 {
			f.changes[j].Seq = seqOf[c.Seq]
		}
	}
	st.adopt(f)
	return results, nil
}

// mayPush reports whether p may push ev (the matrix of the service issue).
func mayPush(p Principal, ev *event.Event) bool {
	switch p.Role {
	case store.RoleOperator:
		return true
	case store.RoleTenantAdmin:
		switch ev.Type {
		case event.PalLinked, event.PalRemoved, event.PartnerRegistered, event.PartnerMetrics:
			return false
		}
		return ev.Tenant == p.Tenant
	case store.RoleAccount:
		return (ev.Type == event.PalLinked || ev.Type == event.PalRemoved) && ev.Tenant == p.Tenant && ev.Account == p.Account
	}
	return false
}

type ingestResult struct {
	Accepted   int              `json:"accepted"`
	Duplicates int              `json:"duplicates"`
	Refused    []*event.Refusal `json:"refused"`
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request, p Principal) error {
	body := http.MaxBytesReader(w, r.Body, maxBatchBytes)
	res := ingestResult{Refused: []*event.Refusal{}}
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
	err := s.write(r.Context(), func(wr store.Writer) error {
		outs, err := s.submit(r.Context(), wr, events)
		if err != nil {
			return err
		}
		for _, out := range outs {
			switch out.Outcome {
			case attribution.Applied:
				res.Accepted++
			case attribution.Duplicate:
				res.Duplicates++
			case attribution.Refused:
				res.Refused = append(res.Refused, out.Refusal)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.m.events.WithLabelValues("accepted").Add(float64(res.Accepted))
	s.m.events.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	s.m.events.WithLabelValues("refused").Add(float64(len(res.Refused)))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// getLog streams the log as NDJSON v1, in sequence order: all of it to the
// operator, a tenant's own events to its administrator.
func (s *Server) getLog(w http.ResponseWriter, r *http.Request, p Principal) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	out := event.NewWriter(w)
	err := s.store.Scan(r.Context(), 0, func(rec store.Record) error {
		ev := rec.Event
		if p.Role == store.RoleTenantAdmin && (ev.Tenant != p.Tenant || ev.Tenant == "") {
			return nil
		}
		return out.Write(ev)
	})
	if err != nil {
		return err
	}
	return out.Flush()
}
