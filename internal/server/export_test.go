package server

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
