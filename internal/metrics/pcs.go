package metrics

import (
	"math"
	"time"

	"github.com/palproject/pal/internal/directory"
)

// Score is the Business Applications Partner Capability Score of an
// organisation for a month (SPEC.md section 6).
type Score struct {
	Org                 string   `json:"org"`
	Month               string   `json:"month"`
	Segment             string   `json:"segment"`
	UsageMCV            float64  `json:"usage_mcv"`
	BaselineMCV         float64  `json:"baseline_mcv"`
	GrowthPct           *float64 `json:"growth_pct"`
	Deployments         int      `json:"deployments"`
	BaselineDeployments int      `json:"baseline_deployments"`
	Points              Points   `json:"points"`
	Total               float64  `json:"total"`
	Qualified           bool     `json:"qualified"`
	// HasInputs tells whether partner.metrics were given for the month (not
	// in SPEC.md: it says why three subcategories score 0).
	HasInputs bool `json:"has_inputs"`
}

// Points are the points of each subcategory, capped and kept to two
// decimals.
type Points struct {
	NetCustomerAdds float64 `json:"net_customer_adds"`
	Intermediate    float64 `json:"intermediate"`
	Advanced        float64 `json:"advanced"`
	UsageGrowth     float64 `json:"usage_growth"`
	Deployments     float64 `json:"deployments"`
}

// MaxPoints returns the most each subcategory of the score counts for.
func (c Config) MaxPoints() Points {
	return Points{NetCustomerAdds: c.MaxNetCustomerAdds, Intermediate: c.MaxIntermediate, Advanced: c.MaxAdvanced,
		UsageGrowth: c.MaxUsageGrowth, Deployments: c.MaxDeployments}
}

// BaselineMonth returns the month twelve months before month (YYYY-MM).
func BaselineMonth(month string) (string, error) {
	t, err := time.Parse("2006-01", month)
	if err != nil {
		return "", err
	}
	return t.AddDate(-1, 0, 0).Format("2006-01"), nil
}

// CapabilityScore scores organisation org for the month of cur, against the
// baseline report base of twelve months before. segment is the
// organisation's segment at the end of the month, used for both months;
// inputs are its partner.metrics for the month, if any.
func CapabilityScore(cfg Config, org, segment string, cur, base Monthly, inputs directory.Inputs, hasInputs bool) Score {
	segment = segmentOrDefault(segment)
	s := Score{Org: org, Month: cur.Month, Segment: segment, HasInputs: hasInputs}
	sameSegment := func(string) string { return segment }
	mcvAndDeployments := func(m Monthly) (float64, int) {
		var mine []WorkloadRow
		for _, w := range m.Workloads {
			if w.Org == org {
				mine = append(mine, w)
			}
		}
		for _, o := range orgRows(cfg, mine, sameSegment) {
			return o.MCV, o.Deployments
		}
		return 0, 0
	}
	s.UsageMCV, s.Deployments = mcvAndDeployments(cur)
	s.BaselineMCV, s.BaselineDeployments = mcvAndDeployments(base)

	if hasInputs {
		s.Points.NetCustomerAdds = capped(float64(inputs.NetCustomerAdds)*cfg.NetCustomerAddPoints, cfg.MaxNetCustomerAdds)
		s.Points.Intermediate = capped(float64(inputs.IntermediateCertified)*cfg.IntermediatePoints[segment], cfg.MaxIntermediate)
		s.Points.Advanced = capped(float64(inputs.AdvancedCertified)*cfg.AdvancedPoints[segment], cfg.MaxAdvanced)
	}
	if s.BaselineMCV > 0 {
		growth := (s.UsageMCV - s.BaselineMCV) / s.BaselineMCV * 100
		pct := round(growth, 2)
		s.GrowthPct = &pct
		if s.BaselineMCV >= cfg.GrowthBaselineMCV[segment] {
			s.Points.UsageGrowth = capped(float64(wholePercent(s.UsageMCV, s.BaselineMCV)), cfg.MaxUsageGrowth)
		}
	}
	s.Points.Deployments = capped(cfg.DeploymentPoints*float64(s.Deployments-s.BaselineDeployments), cfg.MaxDeployments)

	p := s.Points
	s.Total = round(p.NetCustomerAdds+p.Intermediate+p.Advanced+p.UsageGrowth+p.Deployments, 2)
	s.Qualified = s.Total >= cfg.QualifyingTotal &&
		p.NetCustomerAdds >= 1 && p.Intermediate >= 1 && p.Advanced >= 1 && p.UsageGrowth >= 1 && p.Deployments >= 1
	return s
}

// wholePercent returns floor((mcv − base) / base × 100), counted in whole
// cents (monthly reports keep MCV to cents), so that a growth of exactly 29%
// is 29 and not the 28.999… of its floating-point quotient.
func wholePercent(mcv, base float64) int64 {
	cur, was := int64(math.Round(mcv*100)), int64(math.Round(base*100))
	n := (cur - was) * 100
	q := n / was
	if n%was != 0 && n < 0 {
		q-- // division truncates toward zero; the floor of a loss is below it
	}
	return q
}

// capped keeps points between 0 and max, to two decimals.
func capped(points, max float64) float64 {
	return round(math.Min(max, math.Max(0, points)), 2)
}
