package fold

import (
	"cmp"
	"slices"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
)

// The order in which a log applies (SPEC.md section 3), the one place of
// that rule: events apply by time, equal times in log order (a stored
// record's sequence number, a file's line), and an event whose id an
// earlier line carried is a duplicate, whatever became of that line.

// Order returns the events of a log, given in log order, in the order in
// which they apply, and its duplicates apart. The command line, the
// what-if and the tests fold a log through it; the service's store keeps
// the same rule for what it holds (an id is stored once, in the order lines
// arrive) and the fold applies its records by place.
func Order(log []*event.Event) (apply, duplicates []*event.Event) {
	seen := make(map[string]struct{})
	apply = make([]*event.Event, 0, len(log))
	for _, ev := range log {
		if ev.ID != "" {
			if _, dup := seen[ev.ID]; dup {
				duplicates = append(duplicates, ev)
				continue
			}
			seen[ev.ID] = struct{}{}
		}
		apply = append(apply, ev)
	}
	Sort(apply)
	return apply, duplicates
}

// Sort orders events by time, keeping the log order of equal times.
func Sort(events []*event.Event) {
	slices.SortStableFunc(events, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
}

// sortRecords orders stored records by their places.
func sortRecords(recs []store.Record) {
	slices.SortFunc(recs, func(a, b store.Record) int { return placeOf(a).compare(placeOf(b)) })
}

// place is where a record applies: by time, then by sequence number.
type place struct {
	Time time.Time
	Seq  int64
}

func placeOf(r store.Record) place { return place{r.Event.Time, r.Seq} }

func (p place) compare(q place) int {
	return cmp.Or(p.Time.Compare(q.Time), cmp.Compare(p.Seq, q.Seq))
}

func (p place) before(q place) bool { return p.compare(q) < 0 }

func later(p, q place) place {
	if p.before(q) {
		return q
	}
	return p
}
