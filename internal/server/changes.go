package server

import (
	"net/http"
)

// getChanges pages through the feed of credit changes after ?since= (a
// sequence number, 0 by default), at most ?limit= changes a page but never
// part of one record's: what a partner, a tenant administrator or the
// operator may see of them, and the number to ask from next.
func (s *Server) getChanges(w http.ResponseWriter, r *http.Request, p Principal) error {
	since, limit, err := pageParams(r, "since")
	if err != nil {
		return err
	}
	if err := s.sync(r.Context()); err != nil {
		return err
	}
	out := []change{}
	next := s.state.seq
	for _, c := range s.state.changes {
		if c.Seq <= since || !p.sees(c) {
			continue
		}
		if len(out) >= limit && c.Seq != out[len(out)-1].Seq {
			next = out[len(out)-1].Seq
			break
		}
		out = append(out, c)
	}
	s.state.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{"changes": out, "next": next})
	return nil
}
