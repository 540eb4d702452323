package azure

import (
	"cmp"
	"container/heap"
	"fmt"
	"hash/maphash"
	"math/big"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/palproject/pal/internal/event"
)

type azSubKey struct{ tenant, sub, org string }

type azTotals struct {
	acr, pec amount
	nanos    int64
}

func (t *azTotals) addTotals(u azTotals) {
	t.acr.add(u.acr)
	t.pec.add(u.pec)
	t.nanos += u.nanos
}

// Report computes the Azure report of a month (YYYY-MM) from the
// consumption records the engine holds.
func (e *Engine) Report(month string) (Report, error) { return e.ReportOf(month, nil) }

// ReportOf is Report over the tenants owns names, every tenant when nil:
// the part of the report that a process owning those tenants makes (SPEC.md
// section 10). Its organisations' totals are those tenants' alone; Merge
// sums them over every tenant from the parts.
func (e *Engine) ReportOf(month string, owns func(tenant string) bool) (Report, error) {
	m, err := e.Month(month)
	if err != nil {
		return Report{}, err
	}
	m.addKept(owns)
	return m.report(), nil
}

// Month sums the consumption records of a month as they are read, without
// keeping them. Report feeds it the engine's records; the command line
// feeds it a consumption file's rows (Slot), and Report adds the engine's
// own records of the month.
//
// What it holds grows with the resources, never with the records: by
// resource that a location is ever recognised on, about 70 bytes and its
// rows; by any other, about 24 bytes, so that its timeline is found once
// however often it is asked for. A resource's records are summed while it
// is open, by what their day earns (the days of a timeline that
// earn the same share one sum), and shared out into its rows when another
// resource's record comes: once a resource in a file sorted by resource,
// as pal gen and the service write them, and once a record in a file
// sorted by day.
//
// A Month made in parts (MonthIn) sums each tenant in one part, and its
// parts can be fed at once, each from one goroutine.
type Month struct {
	e           *Engine
	month       string
	first, next int32
	seeds       [2]maphash.Seed
	parts       []*part
}

// part is the sums of the tenants of one part of a month.
type part struct {
	m *Month
	q *query

	// ids numbers the resources: an open-addressing table of numbers + 1
	// (0: empty), placed by the first of two 64-bit hashes of tenant and
	// path, which the state of each holds; and of minus the place + 1 of
	// those in never; each beside the high 32 bits of its second hash.
	// Two resources are one when both of their hashes are: among 10⁶
	// resources, two are taken for one with a chance of about 10⁻²⁷, and
	// no path is compared to tell them apart.
	ids   []uint64
	state blocks[resState]
	// The resources' timelines, subscriptions and tenants, and the
	// locations (organisation and partner) of the rows, each once.
	entries   interned[*timelineEntry]
	subs      interned[string]
	tenants   interned[string]
	locations interned[location]

	// never holds the hashes of the resources that no location is ever
	// recognised on, which have no number.
	never blocks[[2]uint64]

	// paths holds the paths of the resources, by number.
	paths blocks[string]

	open openResource
	// locs is where a resource's rows are summed, kept for the next.
	locs []locTotals
	rows blocks[row]
	// exact holds the rationals of the rows that have any, by row.exact.
	exact  [][3]*big.Rat
	totals map[azSubKey]*azTotals

	records int
	// repeated is set when a record repeats the resource, day and meter of
	// one added before: the later replaces the earlier (section 9.2), which
	// sums kept as they go cannot do.
	repeated bool
}

// resState is what a month knows of a resource beyond the sums of its
// open records: its hashes; by bit, the month's days with a record, and
// the same by meter; its tenant, timeline and subscription, by their index
// in the part; and where its rows begin and how many follow. It holds no
// pointer, so that the collector has nothing to scan in what grows with the
// resources.
type resState struct {
	hash            [2]uint64
	days            uint32
	seen            [event.MeterCount]uint32
	tenant, te, sub int32
	row             int32
	rows            uint16
}

// row is a resource's row of a location as a month sums it: its resource's
// number, its location's index, and its amounts, whose rationals, rarely
// any, are kept aside (exact holds their index + 1, 0 when none). It holds
// no pointer either: the rows of a million resources are nothing for the
// collector to scan.
type row struct {
	n, loc, exact   int32
	acr, pec, hours fixed
}

// location is a partner's location ID and the organisation that held it.
type location struct{ org, partner string }

// openResource is the resource whose records are being summed.
type openResource struct {
	n           int32 // its number, -1 when none is open
	tenant, sub string
	te          *timelineEntry
	sums        []creditSums
}

// creditSums are an open resource's costs on the days of one of its
// timeline's day credits, with the number of those days it had a first
// record on.
type creditSums struct {
	credit int32
	days   int64
	// standard holds the standard meter's costs, other every other meter's
	// but marketplace, which earns recognised hours and no money.
	standard, other amount
}

// Month returns an empty sum of a month (YYYY-MM).
func (e *Engine) Month(month string) (*Month, error) { return e.MonthIn(month, 1) }

// MonthIn returns an empty sum of a month (YYYY-MM) in n parts.
func (e *Engine) MonthIn(month string, n int) (*Month, error) {
	first, next, err := monthDays(month)
	if err != nil {
		return nil, err
	}
	m := &Month{e: e, month: month, first: first, next: next,
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	for range max(n, 1) {
		m.parts = append(m.parts, &part{m: m, q: e.query(), ids: make([]uint64, 1<<10),
			totals: map[azSubKey]*azTotals{}, open: openResource{n: -1}})
	}
	return m, nil
}

// monthDays returns the first day of a month (YYYY-MM) and the first of
// the next, in days since 1970-01-01.
func monthDays(month string) (first, next int32, err error) {
	start, err := time.Parse("2006-01", month)
	if err != nil {
		return 0, 0, fmt.Errorf("month %q is not YYYY-MM", month)
	}
	return event.DayOf(start), event.DayOf(start.AddDate(0, 1, 0)), nil
}

// Parts returns the number of parts of the month.
func (m *Month) Parts() int { return len(m.parts) }

// PartOf returns the part that sums a tenant's records.
func (m *Month) PartOf(tenant string) int {
	if len(m.parts) == 1 {
		return 0
	}
	return int(maphash.String(m.seeds[0], tenant) % uint64(len(m.parts)))
}

// number returns the number of a resource (a canonical path) of a tenant,
// and whether it has one.
func (m *part) number(tenant, path string) (int32, bool) {
	_, id := m.find(m.hashOf(tenant, path))
	return id - 1, id > 0
}

// hashOf returns the two hashes of a resource (a canonical path) of a
// tenant.
func (m *part) hashOf(tenant, path string) [2]uint64 {
	k := [2]string{tenant, path}
	return [2]uint64{maphash.Comparable(m.m.seeds[0], k), maphash.Comparable(m.m.seeds[1], k)}
}

// find returns where a resource's hashes are in the table, or would be,
// and what is there: its number + 1, minus its place in never + 1, or 0.
// An entry holds 32 bits of the second hash beside the id, so that the
// state of another resource is read only when those bits are the same.
func (m *part) find(h [2]uint64) (uint64, int32) {
	mask, tag := uint64(len(m.ids)-1), h[1]>>32
	i := h[0] & mask
	for ; m.ids[i] != 0; i = (i + 1) & mask {
		if m.ids[i]>>32 != tag {
			continue
		}
		id := int32(m.ids[i])
		if id > 0 && m.state.at(id-1).hash == h || id < 0 && *m.never.at(-id - 1) == h {
			return i, id
		}
	}
	return i, 0
}

// place puts id, of a resource of hashes h, at i, found free, and grows
// the table when half full.
func (m *part) place(i uint64, h [2]uint64, id int32) {
	m.ids[i] = entryOf(h, id)
	if 2*(m.state.len()+m.never.len()) > len(m.ids) {
		m.grow()
	}
}

// entryOf is the entry of the table of an id of a resource of hashes h.
func entryOf(h [2]uint64, id int32) uint64 { return h[1]>>32<<32 | uint64(uint32(id)) }

// grow doubles the table of numbers.
func (m *part) grow() {
	ids := make([]uint64, 2*len(m.ids))
	mask := uint64(len(ids) - 1)
	put := func(h [2]uint64, id int32) {
		i := h[0] & mask
		for ids[i] != 0 {
			i = (i + 1) & mask
		}
		ids[i] = entryOf(h, id)
	}
	for n := range int32(m.state.len()) {
		put(m.state.at(n).hash, n+1)
	}
	for k := range int32(m.never.len()) {
		put(*m.never.at(k), -k-1)
	}
	m.ids = ids
}

// MonthSlot is where the records of one resource go.
type MonthSlot struct {
	m *part
	n int32
}

// Slot returns where the records of an Azure resource (a canonical path) of
// a tenant go. Slots of tenants of different parts can be asked and fed at
// once. The records of a resource that no location is ever recognised on
// are only counted: they earn nothing, however they repeat.
func (m *Month) Slot(tenant, path string) MonthSlot {
	p := m.parts[m.PartOf(tenant)]
	// A resource is asked for again and again (in a file sorted by day,
	// once a day): its timeline is found once.
	h := p.hashOf(tenant, path)
	i, id := p.find(h)
	switch {
	case id > 0:
		return MonthSlot{p, id - 1}
	case id < 0:
		return MonthSlot{m: p, n: -1}
	}
	sc := event.ResourceScope(path)
	te := p.q.entry(tenant, sc)
	if te == nil || te.pieces == nil {
		p.never.add(h)
		p.place(i, h, -int32(p.never.len()))
		return MonthSlot{m: p, n: -1}
	}
	n := int32(p.state.len())
	p.state.add(resState{hash: h, tenant: p.tenants.of(tenant), te: p.entries.of(te), sub: p.subs.of(sc.Subscription), row: -1})
	p.paths.add(path)
	p.place(i, h, n+1)
	return MonthSlot{p, n}
}

// Put adds a record of a day (days since 1970-01-01) of the month, meter (an
// index in event.Meters) and cost in billionths.
func (s MonthSlot) Put(day int32, meter uint8, nanos int64) { s.m.put(s, day, meter, nanos, nil) }

// PutExact adds a record whose cost billionths cannot hold: exact is the
// decimal number as it was written.
func (s MonthSlot) PutExact(day int32, meter uint8, exact string) {
	if cost, ok := new(big.Rat).SetString(exact); ok {
		s.m.put(s, day, meter, 0, cost)
	}
}

// put adds a record: its cost is nanos billionths, or exact when not nil.
func (m *part) put(s MonthSlot, day int32, meter uint8, nanos int64, exact *big.Rat) {
	m.records++
	if s.n < 0 {
		return
	}
	st := m.state.at(s.n)
	bit := uint32(1) << (day - m.m.first)
	if st.seen[meter]&bit != 0 {
		m.repeated = true
	}
	st.seen[meter] |= bit
	if m.open.n != s.n {
		m.flush()
		m.openSlot(s)
	}
	sums := m.open.sumsOf(m.creditOf(m.open.te, day))
	if st.days&bit == 0 {
		st.days |= bit
		sums.days++
	}
	var to *amount
	switch event.Meters[meter] {
	case event.MeterMarketplace:
		return
	case event.MeterStandard:
		to = &sums.standard
	default:
		to = &sums.other
	}
	if exact != nil {
		to.addRat(exact)
	} else {
		to.addNanos(nanos)
	}
}

// openSlot opens a slot's resource.
func (m *part) openSlot(s MonthSlot) {
	st := m.state.at(s.n)
	m.open = openResource{n: s.n, tenant: m.tenants.list[st.tenant], sub: m.subs.list[st.sub], te: m.entries.list[st.te],
		sums: m.open.sums[:0]}
}

// interned numbers values, each once, in the order they come.
type interned[K comparable] struct {
	list  []K
	index map[K]int32
}

// of returns the number of a value, made when new.
func (x *interned[K]) of(v K) int32 {
	k, ok := x.index[v]
	if !ok {
		if x.index == nil {
			x.index = map[K]int32{}
		}
		k = int32(len(x.list))
		x.list, x.index[v] = append(x.list, v), k
	}
	return k
}

// sumsOf returns the open resource's sums of a day credit, made when new.
func (o *openResource) sumsOf(credit int32) *creditSums {
	for i := len(o.sums) - 1; i >= 0; i-- {
		if o.sums[i].credit == credit {
			return &o.sums[i]
		}
	}
	o.sums = append(o.sums, creditSums{credit: credit})
	return &o.sums[len(o.sums)-1]
}

// creditOf returns the index, in a timeline's credits, of what a day of
// the month earns, computed the first time it is asked. Days that earn the
// same share an index, so that their costs are summed before they are
// shared out.
func (m *part) creditOf(te *timelineEntry, day int32) int32 {
	first := m.m.first
	if te.from != first || te.day == nil {
		te.from, te.set, te.day, te.credits = first, 0, make([]int32, m.m.next-first), nil
		te.whole = make([]int32, len(te.pieces))
	}
	bit := uint32(1) << (day - first)
	if te.set&bit == 0 {
		// Every day that one piece of the timeline covers whole earns
		// the same: most of a month's days, most months.
		p := te.wholeDay(day)
		if p >= 0 && te.whole[p] > 0 {
			te.day[day-first], te.set = te.whole[p]-1, te.set|bit
			return te.day[day-first]
		}
		dc := m.q.dayCredits(te.pieces, day)
		k := slices.IndexFunc(te.credits, dc.equal)
		if k < 0 {
			for i := range dc.locations {
				dc.locations[i].loc = m.locations.of(location{dc.locations[i].org, dc.locations[i].partner})
			}
			k = len(te.credits)
			te.credits = append(te.credits, dc)
		}
		te.day[day-first], te.set = int32(k), te.set|bit
		if p >= 0 {
			te.whole[p] = int32(k) + 1
		}
	}
	return te.day[day-first]
}

// flush shares out the open resource's sums into its rows, and its
// organisations' into their subscriptions, and closes it.
func (m *part) flush() {
	o := &m.open
	if o.n < 0 {
		return
	}
	locs := m.locs[:0]
	for _, sums := range o.sums {
		dc := &o.te.credits[sums.credit]
		acr := sums.standard.plus(sums.other)
		for _, d := range dc.locations {
			locs = locTotalsOf(locs, d.loc)
			t := &locs[len(locs)-1]
			t.nanos += d.nanos * sums.days
			t.acr.add(acr.times(d.weight))
			if d.active {
				t.pec.add(sums.standard.times(d.weight))
			}
		}
		for _, od := range dc.orgs {
			t := totals(m.totals, azSubKey{o.tenant, o.sub, od.org})
			t.acr.add(acr.times(od.weight))
			if od.active {
				t.pec.add(sums.standard.times(od.weight))
			}
		}
	}
	st := m.state.at(o.n)
	for _, l := range locs {
		if l.acr.isZero() && l.pec.isZero() && l.nanos == 0 {
			continue
		}
		r := m.rowOf(st, l.loc)
		if r == nil {
			// A resource's rows follow each other while no other's come
			// between; a row that cannot follow them is merged by the
			// report.
			if st.rows == 0 || int(st.row)+int(st.rows) == m.rows.len() && st.rows < 1<<16-1 {
				if st.rows == 0 {
					st.row = int32(m.rows.len())
				}
				st.rows++
			}
			m.rows.add(row{n: o.n, loc: l.loc})
			r = m.rows.at(int32(m.rows.len() - 1))
		}
		m.addToRow(r, l.acr, l.pec, hoursOf(l.nanos).a)
	}
	clear(locs)
	m.locs = locs[:0]
	o.n, o.te, o.sums = -1, nil, o.sums[:0]
}

// rowOf returns a resource's row of a location, or nil.
func (m *part) rowOf(st *resState, loc int32) *row {
	for i := range int32(st.rows) {
		if r := m.rows.at(st.row + i); r.loc == loc {
			return r
		}
	}
	return nil
}

// addToRow adds amounts to a row's: their rationals, and the fractions
// its own cannot hold, aside.
func (m *part) addToRow(r *row, acr, pec, hours amount) {
	for f, a := range [3]amount{acr, pec, hours} {
		to := [3]*fixed{&r.acr, &r.pec, &r.hours}[f]
		sum := amount{fixed: *to}
		sum.add(a)
		*to = sum.fixed
		if sum.rat == nil {
			continue
		}
		if r.exact == 0 {
			m.exact = append(m.exact, [3]*big.Rat{})
			r.exact = int32(len(m.exact))
		}
		x := &m.exact[r.exact-1][f]
		if *x == nil {
			*x = new(big.Rat)
		}
		(*x).Add(*x, sum.rat)
	}
}

// amounts returns a row's amounts, their rationals with them.
func (m *part) amounts(r *row) [3]amount {
	out := [3]amount{{fixed: r.acr}, {fixed: r.pec}, {fixed: r.hours}}
	if r.exact > 0 {
		for f, x := range m.exact[r.exact-1] {
			out[f].rat = x
		}
	}
	return out
}

// Merged returns the report of the records fed, which the caller merged
// itself with the engine's own records of the month (MonthRecords), each
// resource, day and meter once: the engine's records are not added again.
// Like Report, it empties the sums: a Month makes one report.
func (m *Month) Merged() Report { return m.report() }

// MonthRecords calls fn with the engine's own consumption records of a
// month (YYYY-MM): each resource, day and meter once, the one reported
// last. exact, when not empty, is a cost that rec.Nanos cannot hold.
func (e *Engine) MonthRecords(month string, fn func(tenant, path string, rec CostRecord, exact string)) error {
	first, next, err := monthDays(month)
	if err != nil {
		return err
	}
	for tid, t := range e.tenants {
		c := &t.Usage
		for i, path := range c.Paths {
			for _, rec := range c.Records[i] {
				if rec.Day < first || rec.Day >= next {
					continue
				}
				exact := ""
				if rec.Nanos < 0 {
					exact = c.Exact[-1-rec.Nanos]
				}
				fn(tid, path, rec, exact)
			}
		}
	}
	return nil
}

// Contains reports whether a day (days since 1970-01-01) is of the month.
func (m *Month) Contains(day int32) bool { return day >= m.first && day < m.next }

// Records counts the records added, the engine's own included once Report
// ran.
func (m *Month) Records() int {
	n := 0
	for _, p := range m.parts {
		n += p.records
	}
	return n
}

// Report adds the engine's own records of the month and returns the report.
// It returns false, and no report, when records repeat a resource, day and
// meter, or the engine holds records of a resource that was fed: the later
// record replaces the earlier, which only the engine's records can say;
// the caller then puts its records in the engine and asks Report.
func (m *Month) Report() (Report, bool) {
	if !m.addKept(nil) || slices.ContainsFunc(m.parts, func(p *part) bool { return p.repeated }) {
		return Report{}, false
	}
	return m.report(), true
}

// addKept adds the engine's own records of the month, of the tenants owns
// names (every tenant when nil). It returns false, having added some or
// none, when one is of a resource that was fed.
func (m *Month) addKept(owns func(tenant string) bool) bool {
	fed := slices.ContainsFunc(m.parts, func(p *part) bool { return p.state.len() > 0 })
	for tid, t := range m.e.tenants {
		if owns != nil && !owns(tid) {
			continue
		}
		c := &t.Usage
		for i, path := range c.Paths {
			var s MonthSlot
			for _, rec := range c.Records[i] {
				if !m.Contains(rec.Day) {
					continue
				}
				if s.m == nil {
					if _, ok := m.parts[m.PartOf(tid)].number(tid, path); ok && fed {
						return false
					}
					s = m.Slot(tid, path)
				}
				if rec.Nanos >= 0 {
					s.m.put(s, rec.Day, rec.Meter, rec.Nanos, nil)
				} else {
					s.m.put(s, rec.Day, rec.Meter, 0, c.cost(rec))
				}
			}
		}
	}
	return true
}

// report makes the report of the sums, which it empties. The blocks of
// rows are sorted at once, then merged, and with them the rows of a
// resource opened more than once: a row is one location's on one
// resource.
func (m *Month) report() Report {
	var runs []rowRun
	subs := map[azSubKey]*azTotals{}
	n := 0
	for _, p := range m.parts {
		p.flush()
		for k, t := range p.totals {
			totals(subs, k).addTotals(*t)
		}
		for _, b := range p.rows.b {
			runs, n = append(runs, rowRun{p, b}), n+len(b)
		}
	}
	var wg sync.WaitGroup
	for _, run := range runs {
		// A file sorted by resource, as pal gen and the service write
		// them, makes its rows in order.
		wg.Go(func() {
			compare := func(a, b row) int { return run.p.compare(&a, run.p, &b) }
			if !slices.IsSortedFunc(run.rows, compare) {
				slices.SortFunc(run.rows, compare)
			}
		})
	}
	wg.Wait()
	rows := make([]ResourceRow, 0, n)
	var last struct {
		p      *part
		n, loc int32
	}
	h := &rowRuns{runs: slices.DeleteFunc(runs, func(r rowRun) bool { return len(r.rows) == 0 })}
	heap.Init(h)
	for h.Len() > 0 {
		p, r := h.runs[0].p, &h.runs[0].rows[0]
		a := p.amounts(r)
		if last.p == p && last.n == r.n && last.loc == r.loc {
			prev := &rows[len(rows)-1]
			prev.ACR.a.add(a[0])
			prev.PECEligibleCost.a.add(a[1])
			prev.RecognisedHours.a.add(a[2])
		} else {
			st, l := p.state.at(r.n), p.locations.list[r.loc]
			rows = append(rows, ResourceRow{Tenant: p.tenants.list[st.tenant], Resource: *p.paths.at(r.n),
				Subscription: p.subs.list[st.sub], Org: l.org, Partner: l.partner,
				ACR: Money{a[0]}, PECEligibleCost: Money{a[1]}, RecognisedHours: Money{a[2]}})
		}
		last.p, last.n, last.loc = p, r.n, r.loc
		if h.runs[0].rows = h.runs[0].rows[1:]; len(h.runs[0].rows) == 0 {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
	for _, p := range m.parts {
		p.rows, p.state, p.paths, p.exact, p.ids, p.totals = blocks[row]{}, blocks[resState]{}, blocks[string]{}, nil, nil, nil
	}
	return m.e.azureReport(m.month, m.parts[0].q.policy, rows, subs)
}

// rowRun is a sorted run of a part's rows.
type rowRun struct {
	p    *part
	rows []row
}

// rowRuns is a heap of sorted runs of rows, by their first row.
type rowRuns struct{ runs []rowRun }

func (h *rowRuns) Len() int { return len(h.runs) }
func (h *rowRuns) Less(i, j int) bool {
	a, b := h.runs[i], h.runs[j]
	return a.p.compare(&a.rows[0], b.p, &b.rows[0]) < 0
}
func (h *rowRuns) Swap(i, j int) { h.runs[i], h.runs[j] = h.runs[j], h.runs[i] }
func (h *rowRuns) Push(x any)    { h.runs = append(h.runs, x.(rowRun)) }
func (h *rowRuns) Pop() any {
	last := h.runs[len(h.runs)-1]
	h.runs = h.runs[:len(h.runs)-1]
	return last
}

// compare orders a row of m and a row of o, of the same month, as the
// report lists them: by tenant, resource, subscription, organisation and
// partner, comparing only as far as it must.
func (m *part) compare(a *row, o *part, b *row) int {
	sa, sb := m.state.at(a.n), o.state.at(b.n)
	if c := strings.Compare(m.tenants.list[sa.tenant], o.tenants.list[sb.tenant]); c != 0 {
		return c
	}
	if c := strings.Compare(*m.paths.at(a.n), *o.paths.at(b.n)); c != 0 {
		return c
	}
	la, lb := m.locations.list[a.loc], o.locations.list[b.loc]
	return cmp.Or(strings.Compare(m.subs.list[sa.sub], o.subs.list[sb.sub]), strings.Compare(la.org, lb.org),
		strings.Compare(la.partner, lb.partner))
}

// locTotals are a resource's sums by location.
type locTotals struct {
	loc int32
	azTotals
}

// locTotalsOf moves the sums of a location to the end of ls, made when
// new, and returns ls: the same location comes record after record.
func locTotalsOf(ls []locTotals, loc int32) []locTotals {
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i].loc == loc {
			ls[i], ls[len(ls)-1] = ls[len(ls)-1], ls[i]
			return ls
		}
	}
	return append(ls, locTotals{loc: loc})
}

// plus returns a + b, sharing neither's rational.
func (a amount) plus(b amount) amount {
	var s amount
	s.add(a)
	s.add(b)
	return s
}

// times returns the amount at a weight (nil: whole). Billionths at a
// weight of a small denominator stay billionths and a fraction of one.
func (a amount) times(weight *big.Rat) amount {
	if weight == nil {
		return a
	}
	p, q := weight.Num(), weight.Denom()
	if a.rat == nil && a.num == 0 && a.nanos >= 0 && p.IsInt64() && p.Sign() >= 0 && q.IsInt64() && q.Int64() < 1<<31 {
		hi, lo := bits.Mul64(uint64(a.nanos), p.Uint64())
		if d := q.Uint64(); hi < d {
			quo, rem := bits.Div64(hi, lo, d)
			if quo < 1<<63 {
				s := amount{fixed: fixed{nanos: int64(quo)}}
				s.addFrac(int64(rem), int64(d))
				return s
			}
		}
	}
	return amount{rat: new(big.Rat).Mul(a.Rat(), weight)}
}

// blocks is a slice that grows by blocks of 2¹⁶ and never moves what it
// holds: a month's resources and rows are too many to copy as a slice grows.
type blocks[T any] struct{ b [][]T }

const blockBits = 16

// len returns the number of values s holds, which fill every block but
// the last.
func (s *blocks[T]) len() int {
	if len(s.b) == 0 {
		return 0
	}
	return (len(s.b)-1)<<blockBits + len(s.b[len(s.b)-1])
}

func (s *blocks[T]) add(v T) {
	if len(s.b) == 0 || len(s.b[len(s.b)-1]) == 1<<blockBits {
		s.b = append(s.b, make([]T, 0, 1<<blockBits))
	}
	s.b[len(s.b)-1] = append(s.b[len(s.b)-1], v)
}

func (s *blocks[T]) at(i int32) *T { return &s.b[i>>blockBits][i&(1<<blockBits-1)] }
