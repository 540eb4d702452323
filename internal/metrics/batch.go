package metrics

import (
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

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
		d.ids[user] = id
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

// tally is where one credited use of a resource in a month is counted.
type tally struct {
	users *users
	share float64
}

// slot is a resource of a batch, with the tallies of the interval and
// month it was last credited in.
type slot struct {
	tenant, resource string
	history          []attribution.Interval
	iv               int
	month            string
	tallies          []tally
}

// UsageBatch credits a batch of usage rows, each by the resource's credit
// interval that holds its time (after every control event of that time).
// It calls refuse for a row whose resource does not exist at its time, or is
// measured in profiles, and does not count it.
func (a *Aggregator) UsageBatch(h Histories, b *usage.Batch, refuse func(*event.Refusal)) {
	users := a.dict.lookup(b.Users)
	slots := make(map[uint64]*slot)
	var lo, hi int64 // the bounds of month, in microseconds
	month, counted := "", false
	for i := range b.Micros {
		at := b.Micros[i]
		if at < lo || at >= hi || month == "" {
			t := time.UnixMicro(at).UTC()
			start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
			lo, hi = start.UnixMicro(), start.AddDate(0, 1, 0).UnixMicro()
			month = start.Format("2006-01")
			counted = a.months == nil || a.months[month]
		}
		key := uint64(uint32(b.Tenant[i]))<<32 | uint64(uint32(b.Resource[i]))
		s := slots[key]
		if s == nil {
			s = &slot{tenant: b.Tenants[b.Tenant[i]], resource: b.Resources[b.Resource[i]], iv: -1}
			s.history = h.History(s.tenant, s.resource)
			slots[key] = s
		}
		iv := intervalAt(s.history, at)
		if iv < 0 {
			refuse(a.refusal(b, i, event.UnknownTenantObject, "resource %s does not exist in tenant %s at %s", s.resource, s.tenant, b.Time(i).Format(time.RFC3339)))
			continue
		}
		spec := event.Kinds[s.history[iv].Kind]
		if spec.ByActivity {
			refuse(a.refusal(b, i, event.InvalidKind, "resource %s is a %s, measured in unified profiles: send a profiles event, not usage", s.resource, s.history[iv].Kind))
			continue
		}
		c := &s.history[iv].Credit
		if !counted || !c.Attributed {
			continue
		}
		if s.iv != iv || s.month != month {
			s.iv, s.month, s.tallies = iv, month, a.talliesFor(month, s.tenant, s.resource, spec.Workload, c)
		}
		for _, t := range s.tallies {
			t.users.add(users[b.User[i]], t.share)
		}
	}
}

func (a *Aggregator) refusal(b *usage.Batch, i int, code event.Code, format string, args ...any) *event.Refusal {
	ev := &event.Event{Type: event.Usage, Line: int(b.Row(i))}
	return event.Refuse(ev, code, format, args...)
}

// intervalAt returns the index of the interval holding microsecond at, or
// -1 when the resource did not exist then.
func intervalAt(h []attribution.Interval, at int64) int {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].From.UnixMicro() <= at {
			if h[i].To.IsZero() || h[i].To.UnixMicro() > at {
				return i
			}
			return -1
		}
	}
	return -1
}

// talliesFor returns the tallies a use credited as c counts in, creating
// them: one per location and one per organisation.
func (a *Aggregator) talliesFor(month, tenant, resource, workload string, c *attribution.Credit) []tally {
	locations, orgs := holders(c)
	var ts []tally
	for _, s := range locations {
		k := resourceKey{month, tenant, resource, workload, s.Org, s.Partner}
		u := a.resources[k]
		if u == nil {
			u = &users{full: roaring.New()}
			a.resources[k] = u
		}
		ts = append(ts, tally{u, s.Share})
	}
	for org, share := range orgs {
		k := workloadKey{month, tenant, org, workload}
		u := a.workloads[k]
		if u == nil {
			u = &users{full: roaring.New()}
			a.workloads[k] = u
		}
		ts = append(ts, tally{u, share})
	}
	return ts
}
