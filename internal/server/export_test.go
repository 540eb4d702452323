package server

import (
	"context"

	"github.com/palproject/pal/internal/fold"
)

// SplitTenants makes s answer every question across tenants from one part
// per group of tenants, as processes that own those groups would, each
// part carried through encoding/json as it will be between processes:
// group gives a tenant's group, from 0 to n-1.
func SplitTenants(s *Server, n int, group func(tenant string) int) {
	s.split = nil
	for i := range n {
		s.split = append(s.split, func(tenant string) bool { return group(tenant) == i })
	}
	// What the pages kept was computed from one part.
	s.views.answers.mu.Lock()
	s.views.answers.m = nil
	s.views.answers.mu.Unlock()
}

// Share runs one round of what Follow does every period: s folds what the
// others committed, is told the buckets it holds, and files its changes.
func Share(ctx context.Context, s *Server) error { return s.share(ctx) }

// CatchUp brings s's published state up to the log's end, as a reader
// does.
func CatchUp(ctx context.Context, s *Server) error {
	return s.read(ctx, func(*fold.State) error { return nil })
}

// Stale reports whether a copy of s's state is marked stale: it would be
// folded again from the snapshot at its next catch-up.
func Stale(s *Server) bool {
	s.views.mu.Lock()
	defer s.views.mu.Unlock()
	for _, st := range s.views.copies {
		if st.Stale() {
			return true
		}
	}
	return false
}
