package imports

import (
	"fmt"
	"iter"
	"math/big"
	"strings"
	"time"

	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
)

func init() {
	register(Source{Name: "azure-costs", Signature: []string{"ResourceId", "InstanceId", "InstanceName"}, NeedsTenant: true, read: readCosts, restate: costQueries, runs: true,
		About: "Cost Management exports, EA, MCA or FOCUS (Date/date/ChargePeriodStart, ResourceId, CostInBillingCurrency/costInBillingCurrency/BilledCost, PricingModel/PricingCategory, PublisherType), the pay-as-you-go usage export (UsageDateTime, InstanceId, PreTaxCost), the Consumption API's usage details, legacy or modern (instanceName), az consumption usage list (usageStart, pretaxCost), and a Cost Management query's answer grouped by ResourceId (columns and rows, as the REST API and az costmanagement query give it): daily consumption, the rows of one resource, day and meter summed"})
}

// notConsumption are the charge types (EA and MCA's ChargeType, FOCUS's
// ChargeCategory) that no resource consumed, even where a row names one.
var notConsumption = map[string]bool{"unusedreservation": true, "unusedsavingsplan": true, "roundingadjustment": true, "tax": true}

// costKey is a resource's day on one meter: the rows an export splits it
// into (by meter, tag, location) are summed into one record, since a later
// record replaces an earlier one.
type costKey struct {
	resource, date, meter string
}

// meterOf reads the meter of a cost row: a third party's (marketplace:
// EA and MCA's PublisherType, FOCUS's x_PublisherCategory "Vendor"), or
// the pricing model's, as FOCUS 1.0 and its preview name them too
// ("Standard", "On-Demand"; "Committed", "Commitment-Based").
func meterOf(r record) (string, bool) {
	if strings.EqualFold(r.str("PublisherType"), "Marketplace") || strings.EqualFold(r.str("x_PublisherCategory"), "Vendor") {
		return event.MeterMarketplace, true
	}
	model := strings.ToLower(strings.NewReplacer(" ", "", "-", "").Replace(r.str("PricingModel", "PricingCategory")))
	switch model {
	case "", "ondemand", "standard", "usage":
		return event.MeterStandard, true
	case "reservation":
		return event.MeterReservation, true
	case "savingsplan":
		return event.MeterSavingsPlan, true
	case "spot", "dynamic":
		return event.MeterSpot, true
	case "committed", "commitmentbased":
		if strings.Contains(strings.ToLower(r.str("CommitmentDiscountType")), "savings") {
			return event.MeterSavingsPlan, true
		}
		return event.MeterReservation, true
	}
	return "", false
}

// readCosts sums an export's costs by resource, day and meter. An export
// repeats its resources and days on every row: each is read once.
func readCosts(rows iter.Seq[record], o *Options, b *builder) {
	// The rows are summed by their dates' text in each file, which is read
	// once every row of the file is: its dates of slashes go the way its
	// dates say (slashOrders).
	type dayText struct{ text, file string }
	type rowKey struct {
		resource string
		day      dayText
		meter    string
	}
	sums := map[rowKey]*costSum{}
	var order []rowKey
	paths := map[string]string{}  // ResourceId as written → canonical, "" when not a resource
	first := map[dayText]record{} // the first row of each date's text
	rowsOf := map[dayText]int{}   // and how many rows have it
	var texts []dayText
	// Rows of no resource's consumption, counted by file: one summary
	// line each, not a line a row.
	noResource := map[string]int{}
	var files []string
	skip := func(r record) {
		if noResource[r.file] == 0 {
			files = append(files, r.file)
		}
		noResource[r.file]++
	}
	for r := range rows {
		resource := r.str("ResourceId", "InstanceId")
		if resource == "" {
			// The Consumption API's modern usage details name the
			// resource by its path in instanceName (the legacy ones
			// name it by its name there, and by its path in instanceId).
			if name := r.str("InstanceName"); strings.HasPrefix(name, "/") {
				resource = name
			}
		}
		path, seen := paths[resource]
		if !seen {
			if sc, err := event.ParseResourcePath(resource); err == nil {
				path = sc.Path
			} else if resource != "" && !strings.HasPrefix(resource, "/") {
				path = "?"
			}
			paths[resource] = path
		}
		switch {
		case path == "?":
			b.problem(r.problem("ResourceId %q is not an Azure path: a resource's is /subscriptions/…/resourceGroups/…/providers/…", resource))
			continue
		case path == "" || notConsumption[strings.ToLower(r.str("ChargeType", "ChargeCategory"))]:
			skip(r)
			continue
		}
		date := dayText{r.str("Date", "UsageDate", "ChargePeriodStart", "UsageDateTime", "UsageStart"), r.file}
		text := number(r.str("CostInBillingCurrency", "BilledCost", "Cost", "PreTaxCost"), r.sep)
		nanos, fast := azure.ParseNanos(text)
		var exact *big.Rat
		if !fast {
			var ok bool
			if exact, ok = new(big.Rat).SetString(text); !ok {
				b.problem(r.problem("the cost %q is not a number", text))
				continue
			}
		}
		if nanos < 0 || exact != nil && exact.Sign() < 0 {
			b.problem(r.problem("the cost %s of %s on %s is negative (a refund or a credit): consumption is never less than nothing, so the row is not imported", text, resource, date.text))
			continue
		}
		meter, ok := meterOf(r)
		if !ok {
			b.problem(r.problem("the pricing model %q is none of OnDemand, Reservation, SavingsPlan, Spot", r.str("PricingModel", "PricingCategory")))
			continue
		}
		// Only a row refused for nothing else counts among its date's.
		if _, seen := first[date]; !seen {
			first[date] = r
			texts = append(texts, date)
		}
		rowsOf[date]++
		k := rowKey{path, date, meter}
		s := sums[k]
		if s == nil {
			s = &costSum{}
			sums[k] = s
			order = append(order, k)
		}
		s.add(nanos, exact)
	}
	dayFirst, mixed := slashOrders(func(yield func(record, string) bool) {
		for _, t := range texts {
			if !yield(first[t], t.text) {
				return
			}
		}
	})
	for _, p := range mixed {
		b.problem(p)
	}
	var newest time.Time
	days := make(map[dayText]string, len(texts))
	for _, t := range texts {
		day, ok := parseDay(t.text, dayFirst[t.file])
		switch {
		case !ok && rowsOf[t] == 1:
			b.problem(first[t].problem("the date %q is not a date", t.text))
			continue
		case !ok:
			// Every row of it is counted, in one line.
			b.problem(Problem{File: t.file, Skipped: rowsOf[t], Reason: fmt.Sprintf("the date %q is not a date (the first of them on line %d)", t.text, first[t].line)})
			continue
		}
		if day.After(newest) {
			newest = day
		}
		days[t] = day.Format(time.DateOnly)
	}
	// The sums of each resource, day and meter, whatever the text of its
	// dates and their files.
	total := map[costKey]*costSum{}
	var keys []costKey
	for _, k := range order {
		d, ok := days[k.day]
		if !ok {
			continue
		}
		ck := costKey{k.resource, d, k.meter}
		if total[ck] == nil {
			total[ck] = &costSum{}
			keys = append(keys, ck)
		}
		total[ck].addSum(sums[k])
	}
	for _, f := range files {
		b.problem(Problem{File: f, Skipped: noResource[f], Reason: "no resource's consumption (no ResourceId, or a charge of a subscription, a support plan, a purchase, an unused reservation, a tax)"})
	}
	// A day's costs are reported after the day: at the observation, or
	// the day after the newest.
	at := o.ObservedAt
	if at.IsZero() {
		at = newest.AddDate(0, 0, 1)
	}
	for _, k := range keys {
		text := decimal(total[k].rat())
		b.add(event.Event{Type: event.AzureConsumption, Time: at, Tenant: o.Tenant, Resource: k.resource, Date: k.date, Cost: text, Meter: k.meter},
			o.Tenant, k.resource, k.date, k.meter, text)
	}
}

// costSum sums costs exactly: billionths while they fit, rationals beyond.
type costSum struct {
	nanos int64
	exact *big.Rat
}

func (s *costSum) add(nanos int64, exact *big.Rat) {
	if exact == nil && s.nanos <= (1<<63-1)-nanos {
		s.nanos += nanos
		return
	}
	if s.exact == nil {
		s.exact = new(big.Rat)
	}
	if exact == nil {
		exact = big.NewRat(nanos, 1e9)
	}
	s.exact.Add(s.exact, exact)
}

// addSum adds another sum.
func (s *costSum) addSum(o *costSum) {
	s.add(o.nanos, nil)
	if o.exact != nil {
		s.add(0, o.exact)
	}
}

func (s *costSum) rat() *big.Rat {
	r := big.NewRat(s.nanos, 1e9)
	if s.exact != nil {
		r.Add(r, s.exact)
	}
	return r
}

// decimal writes an exact decimal (a sum of decimals) as a JSON number.
func decimal(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	// A sum of decimals has a power of ten (times 2s and 5s) below: 30
	// places hold any export's.
	s := r.FloatString(30)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// number reads a cost as a spreadsheet may have saved it: "1,234.5" or
// "1,234,567" with thousands separated by commas, "2,304" or "1.204,5"
// with a decimal comma. A single comma followed by three digits is a
// decimal comma in a file of semicolons or tabs (sep), which a locale of
// decimal commas writes, and separates thousands in a file of commas,
// where such a number is quoted; any other single comma is a decimal one.
func number(s string, sep rune) string {
	comma, dot := strings.LastIndexByte(s, ','), strings.LastIndexByte(s, '.')
	switch {
	case comma < 0:
		return s
	case dot > comma, dot < 0 && strings.Count(s, ",") > 1, dot < 0 && sep == ',' && thousands(s):
		return strings.ReplaceAll(s, ",", "")
	}
	return strings.Replace(strings.ReplaceAll(s, ".", ""), ",", ".", 1)
}

// thousands reports whether a number of one comma and no dot reads as
// thousands: one to three digits, not a lone 0 before them, then three.
func thousands(s string) bool {
	head, tail, _ := strings.Cut(strings.TrimPrefix(s, "-"), ",")
	return len(head) >= 1 && len(head) <= 3 && head != "0" && len(tail) == 3 && allDigits(head) && allDigits(tail)
}

func allDigits(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0
}

// parseDay reads a cost row's day. A date of slashes goes the way its
// file's do (dayFirst, from slashOrders): each file is read one way,
// never the other as a fallback. A date of dots always has the day first.
func parseDay(s string, dayFirst bool) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse("2.1.2006", s); err == nil {
		return t, true
	}
	return parseTimeOrdered(s, dayFirst)
}
