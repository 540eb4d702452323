package metrics

import (
	"hash/maphash"
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
	tenants map[string]*tenantUsers
}

func newDictionary() *dictionary {
	return &dictionary{tenants: make(map[string]*tenantUsers)}
}

// id numbers one user of a tenant.
func (d *dictionary) id(tenant, user string) uint32 {
	h := maphash.String(seed, user)
	d.mu.RLock()
	id, ok := find(d.tenants[tenant], user, h)
	d.mu.RUnlock()
	if ok {
		return id
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return add(d.users(tenant), user, h)
}

// users returns a tenant's users, made on first use; the caller holds the
// write lock.
func (d *dictionary) users(tenant string) *tenantUsers {
	t := d.tenants[tenant]
	if t == nil {
		t = &tenantUsers{}
		d.tenants[strings.Clone(tenant)] = t
	}
	return t
}

// seed is the hash seed of user names, for this process.
var seed = maphash.MakeSeed()

// tenantUsers numbers one tenant's users. Their names lie one after
// another in names, user id's ending at ends[id]; table finds a name's
// number from its hash, each place holding the hash's high half and the
// number plus one (0 marks a free place). A lookup touches the table and
// the name it finds, both the tenant's own: far fewer cache misses than a
// map of strings allocated one by one.
type tenantUsers struct {
	names []byte
	ends  []uint32
	table []uint64
}

func (t *tenantUsers) len() int { return len(t.ends) }

func (t *tenantUsers) name(id uint32) []byte {
	var start uint32
	if id > 0 {
		start = t.ends[id-1]
	}
	return t.names[start:t.ends[id]]
}

// find returns the number of the user called name, whose hash is h; t may
// be nil.
func find[S string | []byte](t *tenantUsers, name S, h uint64) (uint32, bool) {
	if t == nil || len(t.table) == 0 {
		return 0, false
	}
	mask := uint64(len(t.table) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := t.table[i]
		if e == 0 {
			return 0, false
		}
		if e>>32 == h>>32 && string(t.name(uint32(e)-1)) == string(name) {
			return uint32(e) - 1, true
		}
	}
}

// add numbers the user called name, whose hash is h, unless it is already.
func add[S string | []byte](t *tenantUsers, name S, h uint64) uint32 {
	if id, ok := find(t, name, h); ok {
		return id
	}
	id := uint32(len(t.ends))
	t.names = append(t.names, name...)
	t.ends = append(t.ends, uint32(len(t.names)))
	if 2*len(t.ends) > len(t.table) {
		old := len(t.table)
		t.table = make([]uint64, max(64, 2*old))
		for i := range id {
			t.place(maphash.Bytes(seed, t.name(i)), i)
		}
	}
	t.place(h, id)
	return id
}

func (t *tenantUsers) place(h uint64, id uint32) {
	mask := uint64(len(t.table) - 1)
	i := h & mask
	for t.table[i] != 0 {
		i = (i + 1) & mask
	}
	t.table[i] = h>>32<<32 | uint64(id+1)
}

// entries packs a batch's tenant and user (or resource) entries in one key.
func entries(tenant, other int32) uint64 { return uint64(uint32(tenant))<<32 | uint64(uint32(other)) }

// numbering holds the numbers of the users of a group of batches, which
// share their dictionaries. Nearly every user entry belongs to one tenant:
// entry gives, per user entry, the tenant entry it was first seen with and
// its number there; others numbers the few (tenant, user) entries seen
// under a second tenant.
type numbering struct {
	group  int64
	entry  []numbered
	others map[uint64]uint32
	want   []uint64
	users  []*tenantUsers // per tenant entry, its users, while reading
	looked []bool
}

// numbered is a user entry's tenant entry, or -1 before it is seen, and
// its number in that tenant.
type numbered struct {
	owner int32
	id    uint32
}

// of returns the number of user entry u in tenant entry t.
func (n *numbering) of(t, u int32) uint32 {
	if e := n.entry[u]; e.owner == t {
		return e.id
	}
	return n.others[entries(t, u)]
}

func (n *numbering) set(k uint64, id uint32) {
	t, u := int32(k>>32), int32(uint32(k))
	if n.entry[u].owner == t {
		n.entry[u].id = id
	} else {
		n.others[k] = id
	}
}

// number numbers the users of a batch: it finds the (tenant, user) entries
// not numbered yet in the batch's group, looks them all up under one read
// lock, and takes the write lock only for the users it has not seen before.
func (n *numbering) number(d *dictionary, b *usage.Batch) {
	if b.Group != n.group {
		users := b.Users.Len()
		n.entry = slices.Grow(n.entry[:0], users)[:users]
		for i := range n.entry {
			n.entry[i].owner = -1
		}
		clear(n.others)
		n.group = b.Group
	}
	want := n.want[:0]
	for i, u := range b.User {
		t := b.Tenant[i]
		switch o := n.entry[u].owner; {
		case o == t:
		case o < 0:
			n.entry[u].owner = t
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
		id, ok := find(n.users[t], b.Users.Bytes(u), maphash.Bytes(seed, b.Users.Bytes(u)))
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
			name := b.Users.Bytes(u)
			n.set(k, add(d.users(string(b.Tenants.Bytes(t))), name, maphash.Bytes(seed, name)))
		}
		d.mu.Unlock()
	}
	clear(n.users)
	n.want = want
}

// pairTable finds the slot of a batch's (tenant, resource) entries: a table
// of open addressing, several times cheaper per row than a map.
type pairTable struct {
	places []pairPlace
	used   int
}

// pairPlace holds a key, the entries plus one (0 marks a free place), and
// its slot.
type pairPlace struct {
	key  uint64
	slot *slot
}

func (p *pairTable) reset() {
	if p.places == nil {
		p.places = make([]pairPlace, 1024)
	}
	clear(p.places)
	p.used = 0
}

func (p *pairTable) place(k uint64) int {
	mask := len(p.places) - 1
	i := int((k*0x9E3779B97F4A7C15)>>32) & mask
	for p.places[i].key != 0 && p.places[i].key != k {
		i = (i + 1) & mask
	}
	return i
}

func (p *pairTable) get(k uint64) *slot { return p.places[p.place(k+1)].slot }

func (p *pairTable) put(k uint64, s *slot) {
	if 2*(p.used+1) > len(p.places) {
		old := p.places
		p.places = make([]pairPlace, 2*len(old))
		for _, e := range old {
			if e.key != 0 {
				p.places[p.place(e.key)] = e
			}
		}
	}
	p.places[p.place(k+1)] = pairPlace{k + 1, s}
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
	for tenant, theirs := range other.tenants {
		mine := a.of(tenant)
		for k, u := range theirs.resources {
			if m := mine.resources[k]; m != nil {
				mergeUsers(m, u)
			} else {
				mine.resources[k] = u
			}
		}
		for k, u := range theirs.workloads {
			if m := mine.workloads[k]; m != nil {
				mergeUsers(m, u)
			} else {
				mine.workloads[k] = u
			}
		}
		for k, v := range theirs.profiles {
			mine.profiles[k] = max(mine.profiles[k], v)
		}
		for k, v := range theirs.instances {
			mine.instances[k] = max(mine.instances[k], v)
		}
	}
}

// Histories gives the credit history of resources.
type Histories interface {
	History(tenant, resource string) []attribution.Interval
}

// tally is where one credited use of a resource in a month is counted.
type tally struct {
	// words is users.dense as UsageBatch last saw it, for a tally of the
	// slot's own at share 1: setting a bit through it saves a load of users
	// a row. Only this slot and Usage grow users.dense; Usage moves the
	// aggregator's epoch, and UsageBatch then drops these copies.
	words []uint64
	users *users
	share float64
	// own says users are this resource's alone; an organisation's users
	// under a shared credit are grown by each of its resources' slots.
	own bool
}

// slot is a resource of a batch: its history, with each interval's bounds
// in microseconds, and the tallies of the interval and month it was last
// credited in. A row is read with the slot's first fields only, which stay
// in one cache line: from lo to hi, both that interval and that month, a
// use counts in tallies.
type slot struct {
	lo, hi  int64
	tallies []tally
	inline  [2]tally

	tenant, resource string
	history          []attribution.Interval
	from, to         []int64 // to is math.MaxInt64 while open
	iv               int
	month            string
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
	// The group's (tenant, resource) entries find their slots here; the
	// slots themselves last from group to group.
	pairs := &a.pairs
	if b.Group != a.numbering.group {
		pairs.reset()
	}
	if a.epoch != a.seen {
		for _, s := range a.slots {
			for j := range s.tallies {
				s.tallies[j].words = nil
			}
		}
		a.seen = a.epoch
	}
	n := &a.numbering
	n.number(a.dict, b)
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
		if at < s.lo || at >= s.hi {
			if !a.enter(s, at, month, lo, hi, counted) {
				a.refuseRow(s, b, i, refuse)
				continue
			}
		}
		if len(s.tallies) == 0 {
			continue
		}
		id := n.of(tenant, b.User[i])
		for j := range s.tallies {
			t := &s.tallies[j]
			if w := int(id >> 6); w < len(t.words) {
				t.words[w] |= 1 << (id & 63)
				continue
			}
			t.users.add(id, t.share)
			if t.own && t.share >= 1 {
				t.words = t.users.dense
			}
		}
	}
}

// enter moves a slot to the interval holding at, in month (lo to hi):
// false when the resource cannot be used then, which leaves the slot to be
// entered again by the next row.
func (a *Aggregator) enter(s *slot, at int64, month string, lo, hi int64, counted bool) bool {
	s.lo, s.hi = 0, 0
	iv := s.at(at)
	if iv < 0 || event.Kinds[s.history[iv].Kind].ByActivity {
		return false
	}
	if iv != s.iv || month != s.month {
		s.iv, s.month, s.tallies = iv, month, nil
		if c := &s.history[iv].Credit; counted && c.Attributed {
			kind := s.history[iv].Kind
			s.tallies = append(s.inline[:0], a.talliesFor(month, s.tenant, s.resource, event.Kinds[kind].Workload, c)...)
		}
	}
	s.lo, s.hi = max(s.from[iv], lo), min(s.to[iv], hi)
	return true
}

// refuseRow refuses row i, whose resource cannot be used at its time.
func (a *Aggregator) refuseRow(s *slot, b *usage.Batch, i int, refuse func(*event.Refusal)) {
	at := b.Micros[i]
	iv := s.at(at)
	if iv < 0 {
		refuse(a.refusal(b, i, event.UnknownTenantObject, "resource %s does not exist in tenant %s at %s", s.resource, s.tenant, b.Time(i).Format(time.RFC3339)))
		return
	}
	kind := s.history[iv].Kind
	refuse(a.refusal(b, i, event.InvalidKind, "resource %s is a %s, measured in unified profiles: send a profiles event, not usage", s.resource, kind))
}

func (a *Aggregator) refusal(b *usage.Batch, i int, code event.Code, format string, args ...any) *event.Refusal {
	ev := &event.Event{Type: event.Usage, Line: int(b.Row(i))}
	return event.Refuse(ev, code, format, args...)
}
