package azure

import "fmt"

// DaysEarnAsComputed checks, for every timeline of the resources a month
// was asked for and every day of the month in the order given (their
// places in the month), that what the day earns as the month keeps it is
// what the day's credits are, computed afresh.
func (m *Month) DaysEarnAsComputed(order []int) error {
	for _, p := range m.parts {
		for _, te := range p.entries {
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
