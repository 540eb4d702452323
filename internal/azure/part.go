package azure

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
)

// Processes that own some tenants each make the part of a month's report
// over theirs (ReportOf), and the one that answers merges the parts (SPEC.md
// section 10). Every row of a report is of one tenant; the organisations'
// totals alone sum over tenants, and they sum the parts' exact amounts,
// rounded once when printed, never the parts' rounded ones.

// Exact is an amount as a part of a report carries it between processes:
// exactly, as a fraction, where Money's JSON rounds it to cents for people.
type Exact struct{ Money }

// MarshalJSON writes the amount as a fraction in a string ("3/8", "12").
func (x Exact) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, x.Rat().RatString()), nil
}

// UnmarshalJSON reads a fraction MarshalJSON wrote.
func (x *Exact) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("amount %s is not a fraction in a string", b)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return fmt.Errorf("amount %q is not a fraction", s)
	}
	// Billionths are held as billionths, as nearly every amount is.
	if n := new(big.Rat).Mul(r, big.NewRat(1e9, 1)); n.IsInt() && n.Num().IsInt64() {
		x.Money = Money{amount{fixed: fixed{nanos: n.Num().Int64()}}}
		return nil
	}
	x.Money = moneyOf(r)
	return nil
}

// Part is the part of a month's report over some tenants: its rows, with
// their amounts exact. It has no organisations' totals: Merge sums them
// from the subscriptions of every part.
type Part struct {
	Month         string             `json:"month"`
	Resources     []PartResource     `json:"resources"`
	Subscriptions []PartSubscription `json:"subscriptions"`
}

// PartResource is a ResourceRow in a part.
type PartResource struct {
	Tenant          string `json:"tenant"`
	Resource        string `json:"resource"`
	Subscription    string `json:"subscription"`
	Org             string `json:"org"`
	Partner         string `json:"partner"`
	ACR             Exact  `json:"acr"`
	PECEligibleCost Exact  `json:"pec_eligible_cost"`
	RecognisedHours Exact  `json:"recognised_hours"`
}

// PartSubscription is a Subscription in a part.
type PartSubscription struct {
	Tenant          string `json:"tenant"`
	Subscription    string `json:"subscription"`
	Org             string `json:"org"`
	ACR             Exact  `json:"acr"`
	PECEligibleCost Exact  `json:"pec_eligible_cost"`
}

// PartOf returns the part a report over some tenants (ReportOf) makes.
func PartOf(rep Report) Part {
	p := Part{Month: rep.Month, Resources: make([]PartResource, len(rep.Resources)), Subscriptions: make([]PartSubscription, len(rep.Subscriptions))}
	for i, r := range rep.Resources {
		p.Resources[i] = PartResource{Tenant: r.Tenant, Resource: r.Resource, Subscription: r.Subscription, Org: r.Org, Partner: r.Partner,
			ACR: Exact{r.ACR}, PECEligibleCost: Exact{r.PECEligibleCost}, RecognisedHours: Exact{r.RecognisedHours}}
	}
	for i, s := range rep.Subscriptions {
		p.Subscriptions[i] = PartSubscription{Tenant: s.Tenant, Subscription: s.Subscription, Org: s.Org,
			ACR: Exact{s.ACR}, PECEligibleCost: Exact{s.PECEligibleCost}}
	}
	return p
}

// Merge returns the report of a month (YYYY-MM) over the tenants of parts,
// each tenant in one of them: their rows together, in the report's order,
// and the organisations' totals summed from their subscriptions, exactly.
func (o Options) Merge(month string, parts []Part) Report {
	rep := Report{Month: month, Policy: cmp.Or(o.Policy, All), Resources: []ResourceRow{}, Subscriptions: []Subscription{}}
	for _, p := range parts {
		for _, r := range p.Resources {
			rep.Resources = append(rep.Resources, ResourceRow{Tenant: r.Tenant, Resource: r.Resource, Subscription: r.Subscription, Org: r.Org,
				Partner: r.Partner, ACR: r.ACR.Money, PECEligibleCost: r.PECEligibleCost.Money, RecognisedHours: r.RecognisedHours.Money})
		}
		for _, s := range p.Subscriptions {
			rep.Subscriptions = append(rep.Subscriptions, Subscription{Tenant: s.Tenant, Subscription: s.Subscription, Org: s.Org,
				ACR: s.ACR.Money, PECEligibleCost: s.PECEligibleCost.Money})
		}
	}
	// A resource's rows are one location's each, as report sorts them.
	slices.SortFunc(rep.Resources, func(a, b ResourceRow) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource), cmp.Compare(a.Subscription, b.Subscription),
			cmp.Compare(a.Org, b.Org), cmp.Compare(a.Partner, b.Partner))
	})
	sortSubscriptions(rep.Subscriptions)
	rep.Orgs = o.orgTotals(rep.Subscriptions)
	return rep
}
