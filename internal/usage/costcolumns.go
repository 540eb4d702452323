package usage

import (
	"math"

	"github.com/palproject/pal/internal/event"
)

// Cost is a row of a consumption file read as columns: checked, its path
// canonical, its cost exactly billionths.
type Cost struct {
	Tenant, Resource string
	// Day is the day of the cost, in days since 1970-01-01; Meter its
	// meter's index in event.Meters.
	Day   int32
	Meter uint8
	Nanos int64
}

// CostColumns reads the rows of consumption batches as costs, checking each
// entry of a row group's dictionaries once: a tenant, a resource's path, a
// date, a meter. A row that a check fails, or whose cost is not exactly
// billionths (ParseNanos's reach), is not a Cost: its reader takes it as
// text (ConsumptionBatch.Row) and makes it the log line it stands for,
// which says what is wrong with it, or holds its exact cost.
type CostColumns struct {
	group int64
	// By dictionary entry: the tenant ("" unchecked or not one), the
	// canonical path ("" unchecked or not one) and whether it was checked,
	// the day (-2 unchecked, -1 not a day), the meter (-2 unchecked, -1
	// not a meter).
	tenants []string
	paths   []string
	checked []bool
	days    []int32
	meters  []int
	// lower is where a path is lowered.
	lower []byte
}

// lowerASCII appends s in lower case to dst, and reports false, dst as it
// was, when s is not all ASCII, which strings.ToLower lowers by Unicode's
// rules instead.
func lowerASCII(dst, s []byte) ([]byte, bool) {
	start := len(dst)
	for _, c := range s {
		if c >= 0x80 {
			return dst[:start], false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// Cost returns row i of b as a cost, or false when the row is to be read
// as text.
func (cc *CostColumns) Cost(b *ConsumptionBatch, i int) (Cost, bool) {
	tenant, resource := cc.Resource(b, i)
	day, meter, nanos, ok := cc.DayCost(b, i)
	if !ok || tenant == "" || resource == "" {
		return Cost{}, false
	}
	return Cost{Tenant: tenant, Resource: resource, Day: day, Meter: meter, Nanos: nanos}, true
}

// Resource returns the tenant and the canonical path of row i of b, each
// "" when it is not one: the same for the rows that follow with the same
// tenant and resource entries, which need not ask again.
func (cc *CostColumns) Resource(b *ConsumptionBatch, i int) (tenant, path string) {
	if b.Group != cc.group || cc.tenants == nil {
		cc.group = b.Group
		cc.tenants, cc.paths, cc.checked, cc.days, cc.meters = cc.tenants[:0], cc.paths[:0], cc.checked[:0], cc.days[:0], cc.meters[:0]
	}
	// A column without a dictionary grows one as its pages are read.
	for k := len(cc.tenants); k < b.Tenants.Len(); k++ {
		cc.tenants = append(cc.tenants, b.Tenants.String(int32(k)))
	}
	for len(cc.paths) < b.Resources.Len() {
		cc.paths, cc.checked = append(cc.paths, ""), append(cc.checked, false)
	}
	r := b.Resource[i]
	if !cc.checked[r] {
		cc.checked[r] = true
		// Paths are mostly ASCII in mixed case: lowered first, they are
		// made a string once, which ParseResourcePath keeps.
		raw := b.Resources.Bytes(r)
		path := ""
		if lower, ok := lowerASCII(cc.lower[:0], raw); ok {
			path, cc.lower = string(lower), lower
		} else {
			path = string(raw)
		}
		if sc, err := event.ParseResourcePath(path); err == nil {
			cc.paths[r] = sc.Path
		}
	}
	return cc.tenants[b.Tenant[i]], cc.paths[r]
}

// DayCost returns the day, meter and cost in billionths of row i of b, and
// false when one is not good, or the cost not exactly billionths. Resource
// must have been asked of b before.
func (cc *CostColumns) DayCost(b *ConsumptionBatch, i int) (day int32, meter uint8, nanos int64, ok bool) {
	for len(cc.days) < b.Dates.Len() {
		cc.days = append(cc.days, -2)
	}
	for len(cc.meters) < b.Meters.Len() {
		cc.meters = append(cc.meters, -2)
	}
	var m int
	if b.Meter != nil {
		m = cc.meter(b, b.Meter[i])
	} else {
		m = event.MeterIndex("")
	}
	day = cc.day(b, b.Date[i])
	nanos, exact := floatNanos(b.Cost[i])
	if day < 0 || m < 0 || !exact {
		return 0, 0, 0, false
	}
	return day, uint8(m), nanos, true
}

func (cc *CostColumns) day(b *ConsumptionBatch, date int32) int32 {
	if cc.days[date] == -2 {
		cc.days[date] = -1
		if d := b.Dates.String(date); event.IsDay(d) {
			cc.days[date] = event.DayNumber(d)
		}
	}
	return cc.days[date]
}

func (cc *CostColumns) meter(b *ConsumptionBatch, m int32) int {
	if cc.meters[m] == -2 {
		cc.meters[m] = event.MeterIndex(b.Meters.String(m))
	}
	return cc.meters[m]
}

// floatNanos returns a cost read as a DOUBLE in billionths, when that is
// exactly the decimal the double stands for (its shortest form, as
// strconv writes it) and it is not negative.
func floatNanos(c float64) (int64, bool) {
	// Under a million, no two decimals of nine places round to the same
	// double, so the one that does is its shortest form.
	if !(c >= 0 && c < 1e6) {
		return 0, false
	}
	n := math.Round(c * 1e9)
	return int64(n), n/1e9 == c
}
