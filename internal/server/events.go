package server

import (
	"context"
	"errors"
	"io"
	"net/http"

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

// submit applies ev to the state and appends it to the log, inside write.
// An event refused by the engine, or a duplicate, is not appended. An event
// earlier than the state is folded in its place in a fresh fold of the log.
func (s *Server) submit(ctx context.Context, w store.Writer, ev *event.Event) (attribution.Result, error) {
	st := s.state
	if ev.ID != "" && st.engine.Seen(ev.ID) {
		return attribution.Result{Outcome: attribution.Duplicate}, nil
	}
	if ev.Time.Before(st.engine.Now()) {
		e, agg, seq, res, err := foldWith(ctx, w, st.opts, ev)
		if err != nil || res.Outcome != attribution.Applied {
			return res, err
		}
		newSeq, err := w.Append(ctx, ev)
		if err != nil {
			return res, err
		}
		st.engine, st.agg, st.seq = e, agg, max(seq, newSeq)
		st.sinceSnapshot++
		return res, nil
	}
	res := st.apply(ev)
	if res.Outcome != attribution.Applied {
		return res, nil
	}
	seq, err := w.Append(ctx, ev)
	if err != nil {
		// The engine applied what the log did not take.
		st.stale = true
		return res, err
	}
	st.seq = seq
	st.sinceSnapshot++
	return res, nil
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
		for _, ev := range events {
			out, err := s.submit(r.Context(), wr, ev)
			if err != nil {
				return err
			}
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
