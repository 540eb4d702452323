package metrics

import (
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/usage"
)

// dictionary numbers the users of each tenant from 0. Distinct users are
// only ever counted within a tenant, and small dense numbers let a tally
// mark its users in a plain bitset (see users). Aggregators forked from one
// share it, so that their counts can be merged.
type dictionary struct {
	mu      sync.RWMutex
	tenants map[string]map[string]uint32
}

func newDictionary() *dictionary {
	return &dictionary{tenants: make(map[string]map[string]uint32)}
}

// id numbers one user of a tenant.
func (d *dictionary) id(tenant, user string) uint32 {
	d.mu.RLock()
	id, ok := d.tenants[tenant][user]
	d.mu.RUnlock()
	if ok {
		return id
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.add(tenant, user)
}

// add numbers a user, which may have been numbered since the caller
// looked; the caller holds the write lock.
func (d *dictionary) add(tenant, user string) uint32 {
	users := d.tenants[tenant]
	if users == nil {
		users = make(map[string]uint32)
		d.tenants[strings.Clone(tenant)] = users
	}
	id, ok := users[user]
	if !ok {
		id = uint32(len(users))
		users[strings.Clone(user)] = id
	}
	return id
}

// entries packs a batch's tenant and user (or resource) entries in one key.
func entries(tenant, other int32) uint64 { return uint64(uint32(tenant))<<32 | uint64(uint32(other)) }

// numbering holds the numbers of a batch's users. Nearly every user entry
// of a batch belongs to one tenant: owner and ids give, per user entry, the
// tenant entry it was first seen with and its number there; others numbers
// the few (tenant, user) entries seen under a second tenant.
type numbering struct {
	owner  []int32
	ids    []uint32
	others map[uint64]uint32
	want   []uint64
	users  []map[string]uint32 // per tenant entry, its users, while reading
	looked []bool
}

// of returns the number of user entry u in tenant entry t.
func (n *numbering) of(t, u int32) uint32 {
	if n.owner[u] == t {
		return n.ids[u]
	}
	return n.others[entries(t, u)]
}

func (n *numbering) set(k uint64, id uint32) {
	t, u := int32(k>>32), int32(uint32(k))
	if n.owner[u] == t {
		n.ids[u] = id
	} else {
		n.others[k] = id
	}
}

// number numbers the users of a batch: it finds the distinct (tenant,
// user) entries, looks them all up under one read lock, and takes the
// write lock only for the users it has not seen before.
func (n *numbering) number(d *dictionary, b *usage.Batch) {
	users := b.Users.Len()
	n.owner = slices.Grow(n.owner[:0], users)[:users]
	for i := range n.owner {
		n.owner[i] = -1
	}
	n.ids = slices.Grow(n.ids[:0], users)[:users]
	clear(n.others)
	want := n.want[:0]
	for i, u := range b.User {
		t := b.Tenant[i]
		switch o := n.owner[u]; {
		case o == t:
		case o < 0:
			n.owner[u] = t
			want = append(want, entries(t, u))
		default:
			k := entries(t, u)
			if n.others == nil {
				n.others = make(map[uint64]uint32)
			}
			if _, ok := n.others[k]; !ok {
				n.others[k] = 0
				want = append(want, k)
			}
		}
	}
	tenants := b.Tenants.Len()
	n.users = slices.Grow(n.users[:0], tenants)[:tenants]
	n.looked = slices.Grow(n.looked[:0], tenants)[:tenants]
	clear(n.looked)
	missed := 0
	d.mu.RLock()
	for _, k := range want {
		t, u := int32(k>>32), int32(uint32(k))
		if !n.looked[t] {
			n.users[t], n.looked[t] = d.tenants[string(b.Tenants.Bytes(t))], true
		}
		id, ok := n.users[t][string(b.Users.Bytes(u))]
		if !ok {
			want[missed] = k
			missed++
			continue
		}
		n.set(k, id)
	}
	d.mu.RUnlock()
	if missed > 0 {
		d.mu.Lock()
		for _, k := range want[:missed] {
			t, u := int32(k>>32), int32(uint32(k))
			n.set(k, d.add(string(b.Tenants.Bytes(t)), string(b.Users.Bytes(u))))
		}
		d.mu.Unlock()
	}
	clear(n.users)
	n.want = want
}

// pairTable finds the slot of a batch's (tenant, resource) entries: a table
// of open addressing, several times cheaper per row than a map.
type pairTable struct {
	keys  []uint64 // the entries plus one; 0 marks a free place
	slots []*slot
	used  int
}

func (p *pairTable) reset() {
	if p.keys == nil {
		p.keys, p.slots = make([]uint64, 1024), make([]*slot, 1024)
	}
	clear(p.keys)
	clear(p.slots)
	p.used = 0
}

func (p *pairTable) place(k uint64) int {
	mask := len(p.keys) - 1
	i := int((k*0x9E3779B97F4A7C15)>>32) & mask
	for p.keys[i] != 0 && p.keys[i] != k {
		i = (i + 1) & mask
	}
	return i
}

func (p *pairTable) get(k uint64) *slot { return p.slots[p.place(k+1)] }

func (p *pairTable) put(k uint64, s *slot) {
	if 2*(p.used+1) > len(p.keys) {
		keys, slots := p.keys, p.slots
		p.keys, p.slots = make([]uint64, 2*len(keys)), make([]*slot, 2*len(keys))
		for i, old := range keys {
			if old != 0 {
				j := p.place(old)
				p.keys[j], p.slots[j] = old, slots[i]
			}
		}
	}
	i := p.place(k + 1)
	p.keys[i], p.slots[i] = k+1, s
	p.used++
}

// Fork returns an empty aggregator of the same months that shares this
// one's user dictionary, for another goroutine; Merge adds it back.
func (a *Aggregator) Fork() *Aggregator {
	f := NewAggregator()
	f.months, f.dict = a.months, a.dict
	return f
}

// Merge adds what other collected, which must be a fork of a.
func (a *Aggregator) Merge(other *Aggregator) {
	mergeUsers := func(dst, src *users) {
		dst.full.Or(src.bitmap())
		for u, s := range src.partial {
			dst.add(u, s)
		}
	}
	for k, u := range other.resources {
		if mine := a.resources[k]; mine != nil {
			mergeUsers(mine, u)
		} else {
			a.resources[k] = u
		}
	}
	for k, u := range other.workloads {
		if mine := a.workloads[k]; mine != nil {
			mergeUsers(mine, u)
		} else {
			a.workloads[k] = u
		}
	}
	for k, v := range other.profiles {
		a.profiles[k] = max(a.profiles[k], v)
	}
	for k, v := range other.instances {
		a.instances[k] = max(a.instances[k], v)
	}
}

// Histories gives the credit history of resources.
type Histories interface {
	History(tenant, resource string) []attribution.Interval
}

// tally is where one credited use of a resource in a month is counted.
type tally struct {
	users *users
	share float64
}

// slot is a resource of a batch: its history, with each interval's bounds
// in microseconds, and the tallies of the interval and month it was last
// credited in.
type slot struct {
	tenant, resource string
	history          []attribution.Interval
	from, to         []int64 // to is math.MaxInt64 while open
	iv               int
	month            string
	tallies          []tally
}

// slot returns the slot of a resource, made on first use.
func (a *Aggregator) slot(h Histories, tenant, resource string) *slot {
	if s := a.slots[attribution.ResourceKey{Tenant: tenant, Resource: resource}]; s != nil {
		return s
	}
	s := newSlot(h, tenant, resource)
	a.slots[attribution.ResourceKey{Tenant: s.tenant, Resource: s.resource}] = s
	return s
}

func newSlot(h Histories, tenant, resource string) *slot {
	tenant, resource = strings.Clone(tenant), strings.Clone(resource)
	s := &slot{tenant: tenant, resource: resource, iv: -1, history: h.History(tenant, resource)}
	for _, iv := range s.history {
		to := int64(math.MaxInt64)
		if !iv.To.IsZero() {
			to = iv.To.UnixMicro()
		}
		s.from = append(s.from, iv.From.UnixMicro())
		s.to = append(s.to, to)
	}
	return s
}

// at returns the index of the interval holding microsecond at, or -1 when
// the resource did not exist then.
func (s *slot) at(at int64) int {
	for i := len(s.from) - 1; i >= 0; i-- {
		if s.from[i] <= at {
			if s.to[i] > at {
				return i
			}
			return -1
		}
	}
	return -1
}

// UsageBatch credits a batch of usage rows, each by the resource's credit
// interval that holds its time (after every control event of that time).
// It calls refuse for a row whose resource does not exist at its time, or is
// measured in profiles, and does not count it.
func (a *Aggregator) UsageBatch(h Histories, b *usage.Batch, refuse func(*event.Refusal)) {
	n := &a.numbering
	n.number(a.dict, b)
	// The batch's (tenant, resource) entries find their slots here; the
	// slots themselves last from batch to batch.
	pairs := &a.pairs
	pairs.reset()
	var lo, hi int64 // the bounds of month, in microseconds
	month, counted := "", false
	for i, at := range b.Micros {
		if at < lo || at >= hi || month == "" {
			t := time.UnixMicro(at).UTC()
			start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
			lo, hi = start.UnixMicro(), start.AddDate(0, 1, 0).UnixMicro()
			month = start.Format("2006-01")
			counted = a.months == nil || a.months[month]
		}
		tenant := b.Tenant[i]
		k := entries(tenant, b.Resource[i])
		s := pairs.get(k)
		if s == nil {
			s = a.slot(h, b.Tenants.String(tenant), b.Resources.String(b.Resource[i]))
			pairs.put(k, s)
		}
		iv := s.iv
		if iv < 0 || at < s.from[iv] || at >= s.to[iv] {
			iv = s.at(at)
		}
		if iv < 0 {
			refuse(a.refusal(b, i, event.UnknownTenantObject, "resource %s does not exist in tenant %s at %s", s.resource, s.tenant, b.Time(i).Format(time.RFC3339)))
			continue
		}
		if iv != s.iv || month != s.month {
			kind := s.history[iv].Kind
			if event.Kinds[kind].ByActivity {
				refuse(a.refusal(b, i, event.InvalidKind, "resource %s is a %s, measured in unified profiles: send a profiles event, not usage", s.resource, kind))
				continue
			}
			s.iv, s.month, s.tallies = iv, month, nil
			if c := &s.history[iv].Credit; counted && c.Attributed {
				s.tallies = a.talliesFor(month, s.tenant, s.resource, event.Kinds[kind].Workload, c)
			}
		}
		if len(s.tallies) == 0 {
			continue
		}
		id := n.of(tenant, b.User[i])
		for _, t := range s.tallies {
			t.users.add(id, t.share)
		}
	}
}

func (a *Aggregator) refusal(b *usage.Batch, i int, code event.Code, format string, args ...any) *event.Refusal {
	ev := &event.Event{Type: event.Usage, Line: int(b.Row(i))}
	return event.Refuse(ev, code, format, args...)
}

// talliesFor returns the tallies a use credited as c counts in, creating
// them: one per location and one per organisation.
func (a *Aggregator) talliesFor(month, tenant, resource, workload string, c *attribution.Credit) []tally {
	locations, orgs := holders(c)
	var ts []tally
	for _, s := range locations {
		u := a.resourceUsers(resourceKey{month, tenant, resource, workload, s.Org, s.Partner})
		ts = append(ts, tally{u, s.Share})
	}
	if len(c.Shares) == 0 {
		// A user of a resource credited whole counts for its workload
		// through the resource's bitmap (see Report).
		return ts
	}
	for org, share := range orgs {
		u := a.workloadUsers(workloadKey{month, tenant, org, workload})
		ts = append(ts, tally{u, share})
	}
	return ts
}
