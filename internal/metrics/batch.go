package metrics

import (
	"math"
	"strings"
	"sync"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/usage"
)

// dictionary numbers user identifiers; aggregators forked from one share it,
// so that their bitmaps can be merged.
type dictionary struct {
	mu  sync.Mutex
	ids map[string]uint32
}

func (d *dictionary) id(user string) uint32 {
	id, ok := d.ids[user]
	if !ok {
		id = uint32(len(d.ids))
		// The user may be a slice of a batch's whole dictionary.
		d.ids[strings.Clone(user)] = id
	}
	return id
}

// lookup numbers a batch's users, taking the lock once.
func (d *dictionary) lookup(users []string) []uint32 {
	ids := make([]uint32, len(users))
	d.mu.Lock()
	for i, u := range users {
		ids[i] = d.id(u)
	}
	d.mu.Unlock()
	return ids
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
		dst.full.Or(src.full)
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

// tally is where one credited use of a resource in a month is counted; id
// numbers its users within the aggregator, for UsageBatch.
type tally struct {
	users *users
	share float64
	id    uint32
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
	ids := a.dict.lookup(b.Users)
	// The batch's (tenant, resource) pairs find their slots here; the
	// slots themselves last from batch to batch.
	pairs := make(map[uint64]*slot)
	// Uses at share 1 are collected as (tally, user) pairs, sorted once, and
	// added to each tally's bitmap in order: far faster than one by one.
	uses := a.scratch[:0]
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
		k := uint64(uint32(b.Tenant[i]))<<32 | uint64(uint32(b.Resource[i]))
		s := pairs[k]
		if s == nil {
			s = a.slot(h, b.Tenants[b.Tenant[i]], b.Resources[b.Resource[i]])
			pairs[k] = s
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
		uid := ids[b.User[i]]
		for _, t := range s.tallies {
			if t.share < 1 {
				t.users.add(uid, t.share)
				continue
			}
			uses = append(uses, uint64(t.id)<<32|uint64(uid))
		}
	}
	uses = radixSort(uses, &a.radix)
	var run []uint32
	for i := 0; i < len(uses); {
		id := uint32(uses[i] >> 32)
		run = run[:0]
		for ; i < len(uses) && uint32(uses[i]>>32) == id; i++ {
			if u := uint32(uses[i]); len(run) == 0 || run[len(run)-1] != u {
				run = append(run, u)
			}
		}
		a.byID[id].full.AddMany(run)
	}
	a.scratch = uses
}

// radixSort sorts values by their bytes, least significant first, skipping
// the bytes in which all values agree. buf is kept for the next call.
func radixSort(values []uint64, buf *[]uint64) []uint64 {
	if len(values) < 2 {
		return values
	}
	if cap(*buf) < len(values) {
		*buf = make([]uint64, len(values))
	}
	tmp := (*buf)[:len(values)]
	var or, and uint64 = 0, ^uint64(0)
	for _, v := range values {
		or |= v
		and &= v
	}
	varying := or ^ and
	for shift := 0; shift < 64; shift += 8 {
		if (varying>>shift)&0xff == 0 {
			continue
		}
		var count [257]int
		for _, v := range values {
			count[(v>>shift)&0xff+1]++
		}
		for d := 1; d < 257; d++ {
			count[d] += count[d-1]
		}
		for _, v := range values {
			d := (v >> shift) & 0xff
			tmp[count[d]] = v
			count[d]++
		}
		values, tmp = tmp, values
	}
	*buf = tmp
	return values
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
		ts = append(ts, tally{u, s.Share, a.idOf(u)})
	}
	if len(c.Shares) == 0 {
		// A user of a resource credited whole counts for its workload
		// through the resource's bitmap (see Report).
		return ts
	}
	for org, share := range orgs {
		u := a.workloadUsers(workloadKey{month, tenant, org, workload})
		ts = append(ts, tally{u, share, a.idOf(u)})
	}
	return ts
}

// idOf numbers a tally's users within the aggregator.
func (a *Aggregator) idOf(u *users) uint32 {
	id, ok := a.ids[u]
	if !ok {
		id = uint32(len(a.byID))
		a.ids[u] = id
		a.byID = append(a.byID, u)
	}
	return id
}
