package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/palproject/pal/internal/fold"
)

// A question across tenants is answered from parts (SPEC.md section 10):
// each process that owns tenants computes the answer's part over its own,
// and the process asked merges the parts into the answer one process
// holding every tenant gives. A part holds what concerns its owner's
// tenants only, and the directory's facts its merge needs, which every
// process folds: a merge counts those once. A part crosses between
// processes as JSON, so it is a plain value whose fields are exported and
// read back exactly. A process that holds every tenant (SQLite, or alone)
// computes one part; one sharing the tenants computes its own and asks the
// other owners for theirs (transport.go).

// owner is the share of the tenants that one part is computed over: those
// the state owns and, when group is set, of them those in the group.
type owner struct {
	s     *Server
	group func(tenant string) bool
}

// owners returns the shares of the tenants that an answer's parts are
// computed over: one, every tenant the state owns, unless a test split
// them (split).
func (s *Server) owners() []owner {
	if s.split == nil {
		return []owner{{s: s}}
	}
	out := make([]owner, len(s.split))
	for i, g := range s.split {
		out[i] = owner{s: s, group: g}
	}
	return out
}

// owns returns what the owner owns of a state's tenants; the directory
// ("") is every process's.
func (o owner) owns(st *fold.State) func(tenant string) bool {
	if o.group == nil {
		return st.Owns
	}
	return func(tenant string) bool { return st.Owns(tenant) && (tenant == "" || o.group(tenant)) }
}

// read runs fn on the state as Server.read does, with what the owner owns
// of it.
func (o owner) read(ctx context.Context, fn func(st *fold.State, owns func(tenant string) bool) error) error {
	return o.s.read(ctx, func(st *fold.State) error { return fn(st, o.owns(st)) })
}

// gather computes a cross-tenant answer's parts: today one, over every
// tenant the state folds, each computed by part on the state, which
// nothing changes meanwhile.
func gather[T any](ctx context.Context, s *Server, part func(st *fold.State, owns func(tenant string) bool) (T, error)) ([]T, error) {
	return gatherFrom(ctx, s, func(o owner) (T, error) {
		var out T
		err := o.read(ctx, func(st *fold.State, owns func(tenant string) bool) error {
			var err error
			out, err = part(st, owns)
			return err
		})
		return out, err
	})
}

// gatherFrom is gather for parts that read more than the state as it
// stands (a past frame's fold, the store): part computes each owner's.
func gatherFrom[T any](ctx context.Context, s *Server, part func(o owner) (T, error)) ([]T, error) {
	if g := gatheringOf(ctx); g != nil && s.split == nil {
		return gatherShared(ctx, s, g, part)
	}
	owners := s.owners()
	parts := make([]T, 0, len(owners))
	for _, o := range owners {
		p, err := part(o)
		if err == nil && s.split != nil {
			p, err = relay(p)
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// relay carries a part as it travels between processes: through
// encoding/json. The tests that split the tenants relay every part, so
// that a part that does not read back exactly changes their answers.
func relay[T any](part T) (T, error) {
	var out T
	data, err := json.Marshal(part)
	if err != nil {
		return out, fmt.Errorf("write a part: %w", err)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("read a part: %w", err)
	}
	return out, nil
}

// pagePart is a part of a page of a list sorted by a key: the items after
// the page's start of one owner's tenants, at most a page of them, and
// whether more follow.
type pagePart[T any] struct {
	Items []T  `json:"items"`
	More  bool `json:"more"`
}

// add adds an item to a page's part, and reports false when the part is
// full: the item is then left out, and more follow.
func (p *pagePart[T]) add(item T, limit int) bool {
	if len(p.Items) == limit {
		p.More = true
		return false
	}
	p.Items = append(p.Items, item)
	return true
}

// mergePage merges the parts of a page: their items sorted by key, each
// once (the directory's are every part's), at most limit of them, and
// whether more follow. Each part holds the first items of its owner's after the page's
// start, so the first of all are among them.
func mergePage[T any](parts []pagePart[T], limit int, key func(a, b T) int) ([]T, bool) {
	items := []T{}
	more := false
	for _, p := range parts {
		items = append(items, p.Items...)
		more = more || p.More
	}
	slices.SortStableFunc(items, key)
	items = slices.CompactFunc(items, func(a, b T) bool { return key(a, b) == 0 })
	if len(items) > limit {
		items, more = items[:limit], true
	}
	return items, more
}

// present returns the latest of the parts' instants: the present of the
// answer. Each owner knows the present of its own records, and follows the
// latest any owner knows (share): the latest of the parts is that.
func present[T any](parts []T, at func(T) time.Time) time.Time {
	var out time.Time
	for _, p := range parts {
		if t := at(p); t.After(out) {
			out = t
		}
	}
	return out
}

// byTenant returns the items of parts, each part's in its order, in the
// order of their tenants: an answer whose items come tenant by tenant,
// every item of a tenant its owner's, is their concatenation in that order.
func byTenant[T any](parts [][]T, tenant func(T) string) []T {
	out := []T{}
	for _, p := range parts {
		out = append(out, p...)
	}
	slices.SortStableFunc(out, func(a, b T) int { return cmp.Compare(tenant(a), tenant(b)) })
	return out
}
