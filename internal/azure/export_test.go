package azure

import (
	"fmt"
	"reflect"

	"github.com/palproject/pal/internal/event"
)

// DaysEarnAsComputed checks, for every timeline of the resources a month
// was asked for and every day of the month in the order given (their
// places in the month), that what the day earns as the month keeps it is
// what the day's credits are, computed afresh.
func (m *Month) DaysEarnAsComputed(order []int) error {
	for _, p := range m.parts {
		for _, te := range p.entries.list {
			for _, d := range order {
				day := m.first + int32(d)
				k := p.creditOf(te, day)
				if fresh := p.q.dayCredits(te.pieces, day); !te.credits[k].equal(fresh) {
					return fmt.Errorf("day %d earns %+v as kept, %+v computed afresh", day, te.credits[k], fresh)
				}
			}
		}
	}
	return nil
}

// TimelinesAsAlone checks that the timeline of each of a tenant's
// resources (canonical paths), asked of one query in the order given, is
// the one a query asked for that resource alone finds.
func (e *Engine) TimelinesAsAlone(tenant string, paths []string) error {
	shared := e.query()
	for _, path := range paths {
		sc := event.ResourceScope(path)
		got, want := shared.entry(tenant, sc), e.query().entry(tenant, sc)
		if (got == nil) != (want == nil) || got != nil && !reflect.DeepEqual(got.pieces, want.pieces) {
			return fmt.Errorf("%s of %s: asked after others, its timeline is %+v; alone, %+v", path, tenant, got, want)
		}
	}
	return nil
}
