package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// fileChanges files changes in the store, inside the write that committed
// the records that caused them, numbered within each record from 1.
func fileChanges(ctx context.Context, w store.Writer, changes []fold.Change) error {
	if len(changes) == 0 {
		return nil
	}
	filed := make([]store.FiledChange, 0, len(changes))
	k := 0
	for i, c := range changes {
		if i > 0 && changes[i-1].Seq != c.Seq {
			k = 0
		}
		k++
		body, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("file changes: %w", err)
		}
		filed = append(filed, store.FiledChange{At: store.Cursor{Seq: c.Seq, K: k}, Tenant: c.Tenant, Orgs: c.Change.Orgs(), Body: body})
	}
	return w.FileChanges(ctx, filed)
}

// getChanges pages through the feed of credit changes after ?since= (a
// sequence number, 0 by default), at most ?limit= changes a page but never
// part of one record's: what the caller may see of them, read from the
// store by tenant or organisation, and the number to ask from next.
func (s *Server) getChanges(w http.ResponseWriter, r *http.Request, p Principal) error {
	since, limit, err := pageParams(r, "since")
	if err != nil {
		return err
	}
	filter, err := p.changeFilter(r.URL.Query().Get("tenant"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	// The changes of every record up to last are filed.
	last, err := s.feedEnd(ctx)
	if err != nil {
		return err
	}
	out := []json.RawMessage{}
	var at store.Cursor
	keep := func(c store.FiledChange) error {
		if c.At.Seq > last {
			return store.Stop
		}
		out = append(out, c.Body)
		at = c.At
		return nil
	}
	err = s.store.Changes(ctx, filter, store.Cursor{Seq: since, K: math.MaxInt64}, limit, keep)
	next := max(since, last)
	if err == nil && len(out) == limit {
		// The rest of the last record's changes come on this page too.
		err = s.store.Changes(ctx, filter, at, math.MaxInt32, func(c store.FiledChange) error {
			if c.At.Seq != at.Seq {
				return store.Stop
			}
			return keep(c)
		})
		next = at.Seq
	}
	if err != nil && !errors.Is(err, store.Stop) {
		return err
	}
	if out, err = s.shownChanges(r.Context(), p, out); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.ChangesPage{Changes: out, Next: next})
	return nil
}

// shownChanges is what p sees of filed changes: a partner reader sees the
// accounts of each side named as shownAccount says; the others, who read
// the tenants whose changes these are, see them as filed.
func (s *Server) shownChanges(ctx context.Context, p Principal, bodies []json.RawMessage) ([]json.RawMessage, error) {
	if !p.asPartner() {
		return bodies, nil
	}
	out := make([]json.RawMessage, 0, len(bodies))
	err := s.read(ctx, func(st *fold.State) error {
		for _, b := range bodies {
			var c fold.Change
			if err := json.Unmarshal(b, &c); err != nil {
				return fmt.Errorf("read a filed change: %w", err)
			}
			c.From, c.To = p.shownHolder(st.Engine(), c.From), p.shownHolder(st.Engine(), c.To)
			body, err := json.Marshal(c)
			if err != nil {
				return fmt.Errorf("write a change: %w", err)
			}
			out = append(out, body)
		}
		return nil
	})
	return out, err
}
