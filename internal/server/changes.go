package server

import (
	"net/http"
	"strconv"

	"github.com/palproject/pal/internal/store"
)

// getChanges is the feed of credit changes after ?since= (a sequence
// number, 0 by default): what a partner, a tenant administrator or the
// operator may see of them, and the number to ask from next.
func (s *Server) getChanges(w http.ResponseWriter, r *http.Request, p Principal) error {
	since := int64(0)
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errorf(codeBadRequest, "since=%q is not a sequence number: give the next of the last answer, or 0", v)
		}
		since = n
	}
	if err := s.sync(r.Context()); err != nil {
		return err
	}
	out := []change{}
	for _, c := range s.state.changes {
		if c.Seq > since && p.sees(c) {
			out = append(out, c)
		}
	}
	next := s.state.seq
	s.state.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{"changes": out, "next": next})
	return nil
}

// sees reports whether p may see a change: a partner reader those its
// organisation gains or loses, a tenant administrator its tenant's.
func (p Principal) sees(c change) bool {
	switch p.Role {
	case store.RoleOperator:
		return true
	case store.RoleTenantAdmin:
		return c.Tenant == p.Tenant
	case store.RolePartnerReader:
		return credited(p.Org, c.From.Org, c.From.Shares) || credited(p.Org, c.To.Org, c.To.Shares)
	}
	return false
}
