package azure

import (
	"math/big"
	"slices"
	"sort"
	"time"

	"github.com/palproject/pal/internal/event"
)

// consumption holds a tenant's azure.consumption records compactly: a
// record is (resource, day, meter, cost), and a later record of the same
// resource, day and meter replaces the earlier one (section 9.2). A
// platform sends one record per resource, day and meter, so the records of
// a resource are kept in one small slice, and a replaced record is found by
// looking back through it.
type consumption struct {
	// Paths are the resources' canonical paths; Records[i] are Paths[i]'s.
	Paths   []string
	Records [][]CostRecord
	// Exact holds the costs that do not fit a CostRecord's nanos.
	Exact []string

	index map[string]int32
	// lastDate and lastDay remember the day of the last date read: records
	// come in runs of one day.
	lastDate string
	lastDay  int32
}

// CostRecord is one day's cost of a resource on one meter.
type CostRecord struct {
	Day   int32 // days since 1970-01-01
	Meter uint8 // index in event.Meters
	// Nanos is the cost in billionths, or, when negative, -1 - the index
	// of the exact cost in Exact.
	Nanos int64
	// At is the report time, in Unix nanoseconds: a late record replaces
	// only one reported earlier (see put).
	At int64
}

func newConsumption() consumption {
	return consumption{index: make(map[string]int32)}
}

// reindex rebuilds the index of paths, after a restore.
func (c *consumption) reindex() {
	c.index = make(map[string]int32, len(c.Paths))
	for i, p := range c.Paths {
		c.index[p] = int32(i)
	}
}

// put stores a consumption record, replacing the record of the same
// resource, day and meter unless that one was reported later: events apply
// in time order, so a record that arrives late (ApplyLate) is replaced by
// any it precedes.
func (c *consumption) put(ev *event.Event) {
	if ev.Date != c.lastDate {
		c.lastDate, c.lastDay = ev.Date, event.DayNumber(ev.Date)
	}
	// A record of the log names a meter, or none: standard.
	rec := CostRecord{Day: c.lastDay, Meter: uint8(max(event.MeterIndex(ev.Meter), 0)), At: ev.Time.UnixNano()}
	exact := ""
	if n, ok := parseNanos(ev.Cost); ok {
		rec.Nanos = n
	} else {
		exact = ev.Cost
	}
	c.add(c.slot(ev.Resource), rec, exact)
}

// slot returns the index of a resource's records, made on first use.
func (c *consumption) slot(path string) int32 {
	i, ok := c.index[path]
	if !ok {
		i = int32(len(c.Paths))
		c.index[path] = i
		c.Paths = append(c.Paths, path)
		c.Records = append(c.Records, nil)
	}
	return i
}

// add stores a record of resource i; exact, when not empty, is its cost
// as written, which rec.Nanos cannot hold.
func (c *consumption) add(i int32, rec CostRecord, exact string) {
	if exact != "" {
		rec.Nanos = -1 - int64(len(c.Exact))
		c.Exact = append(c.Exact, exact)
	}
	// A resource's records are kept in the order of day then meter, in
	// which they mostly come.
	rs := c.Records[i]
	before := func(a, b CostRecord) bool { return a.Day < b.Day || a.Day == b.Day && a.Meter < b.Meter }
	if n := len(rs); n == 0 || before(rs[n-1], rec) {
		c.Records[i] = append(rs, rec)
		return
	}
	k := sort.Search(len(rs), func(k int) bool { return !before(rs[k], rec) })
	if k < len(rs) && rs[k].Day == rec.Day && rs[k].Meter == rec.Meter {
		if rs[k].At <= rec.At {
			rs[k] = rec
		}
		return
	}
	c.Records[i] = slices.Insert(rs, k, rec)
}

// ConsumptionSlot is where the consumption records of one resource go.
type ConsumptionSlot struct {
	c *consumption
	i int32
}

// ConsumptionSlot returns where the records of an Azure resource (a
// canonical path) of a tenant go. It is for records read apart from a log,
// in bulk, each checked already as a log line is (event.ConsumptionReader):
// Put stores one as Apply stores an azure.consumption event.
func (e *Engine) ConsumptionSlot(tenant, path string) ConsumptionSlot {
	c := &e.tenant(tenant).Usage
	return ConsumptionSlot{c, c.slot(path)}
}

// Put stores the record of a day (days since 1970-01-01), meter (an index
// in event.Meters) and cost, reported at instant at: nanos billionths, or,
// when exact is not empty, the decimal exact.
func (s ConsumptionSlot) Put(day int32, meter uint8, nanos int64, exact string, at time.Time) {
	s.c.add(s.i, CostRecord{Day: day, Meter: meter, Nanos: nanos, At: at.UnixNano()}, exact)
}

// cost returns a record's cost, exact.
func (c *consumption) cost(r CostRecord) *big.Rat {
	if r.Nanos >= 0 {
		return new(big.Rat).SetFrac64(r.Nanos, 1e9)
	}
	v, _ := new(big.Rat).SetString(c.Exact[-1-r.Nanos])
	return v
}

// ParseNanos reads a non-negative decimal with at most nine places and no
// exponent as billionths, when it fits; exact is false otherwise.
func ParseNanos(s string) (n int64, exact bool) { return parseNanos(s) }

// parseNanos reads a non-negative JSON number with at most nine decimals
// and no exponent as billionths, when it fits; exact is false otherwise.
func parseNanos(s string) (n int64, exact bool) {
	const limit = (1<<63 - 1) / 10
	digits, frac, dot := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !dot:
			dot = true
			continue
		case c < '0' || c > '9':
			return 0, false
		}
		if n > limit {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		digits++
		if dot {
			frac++
			if frac > 9 {
				return 0, false
			}
		}
	}
	if digits == 0 {
		return 0, false
	}
	for ; frac < 9; frac++ {
		if n > limit {
			return 0, false
		}
		n *= 10
	}
	return n, true
}

// amount sums money exactly: billionths while they fit, with a fraction
// of one (num/den, 0 ≤ num < den, den 0 for none) while its denominator
// fits in 31 bits, and rationals beyond. Shares of a day are fractions of a
// day's 86,400 seconds, so a month's sums almost never need a rational.
type amount struct {
	fixed
	rat *big.Rat
}

// fixed is what an amount holds but its rational, and what a month's rows
// keep, so that they hold no pointer.
type fixed struct {
	nanos    int64
	num, den int32
}

func (a *amount) addNanos(n int64) {
	if a.nanos > (1<<63-1)-n {
		a.addRat(new(big.Rat).SetFrac64(a.nanos, 1e9))
		a.nanos = 0
	}
	a.nanos += n
}

func (a *amount) addRat(r *big.Rat) {
	if a.rat == nil {
		a.rat = new(big.Rat)
	}
	a.rat.Add(a.rat, r)
}

// addFrac adds num/den billionths, 0 ≤ num < den < 2³¹.
func (a *amount) addFrac(num, den int64) {
	if num == 0 {
		return
	}
	l, n := den, num
	if a.den != 0 {
		ad := int64(a.den)
		l = ad / gcd(ad, den) * den
		n = int64(a.num)*(l/ad) + num*(l/den)
	}
	if n >= l {
		a.addNanos(1)
		n -= l
	}
	g := gcd(n, l)
	n, l = n/g, l/g
	if l >= 1<<31 {
		a.addRat(new(big.Rat).SetFrac(big.NewInt(n), new(big.Int).Mul(big.NewInt(l), big.NewInt(1e9))))
		a.num, a.den = 0, 0
		return
	}
	if n == 0 {
		l = 0
	}
	a.num, a.den = int32(n), int32(l)
}

// gcd is the greatest common divisor of two non-negative numbers.
func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return max(a, 1)
}

func (a *amount) add(b amount) {
	a.addNanos(b.nanos)
	a.addFrac(int64(b.num), int64(b.den))
	if b.rat != nil {
		a.addRat(b.rat)
	}
}

func (a amount) isZero() bool {
	return a.nanos == 0 && a.num == 0 && (a.rat == nil || a.rat.Sign() == 0)
}

// Rat returns the amount as one rational.
func (a amount) Rat() *big.Rat {
	r := new(big.Rat).SetFrac64(a.nanos, 1e9)
	if a.num != 0 {
		r.Add(r, new(big.Rat).SetFrac(big.NewInt(int64(a.num)), big.NewInt(int64(a.den)*1e9)))
	}
	if a.rat != nil {
		r.Add(r, a.rat)
	}
	return r
}

// Cost returns what the customer paid in a month (YYYY-MM) for an
// Azure resource of a tenant, every meter but marketplace: the most a
// partner can be credited for it that month.
func (e *Engine) Cost(tenantID, path, month string) Money {
	total := amount{}
	first, next, err := monthDays(month)
	t := e.tenants[tenantID]
	if err != nil || t == nil {
		return Money{total}
	}
	c := &t.Usage
	i, ok := c.index[path]
	if !ok {
		return Money{total}
	}
	for _, rec := range c.Records[i] {
		if rec.Day < first || rec.Day >= next || event.Meters[rec.Meter] == event.MeterMarketplace {
			continue
		}
		if rec.Nanos >= 0 {
			total.addNanos(rec.Nanos)
		} else {
			total.addRat(c.cost(rec))
		}
	}
	return Money{total}
}

// ConsumptionMonths returns the months (YYYY-MM) in which the tenants named,
// or every tenant when none is, have Azure consumption, oldest first.
func (e *Engine) ConsumptionMonths(tenants ...string) []string {
	seen := map[string]bool{}
	add := func(t *Tenant) {
		if t == nil {
			return
		}
		for _, recs := range t.Usage.Records {
			for _, rec := range recs {
				seen[event.DayStart(rec.Day).Format("2006-01")] = true
			}
		}
	}
	if len(tenants) == 0 {
		for _, t := range e.tenants {
			add(t)
		}
	}
	for _, id := range tenants {
		add(e.tenants[id])
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}
