package metrics

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/event"
)

func month(name string, mcv ...float64) Monthly {
	m := Monthly{Month: name}
	for i, v := range mcv {
		m.Workloads = append(m.Workloads, WorkloadRow{Tenant: string(rune('a' + i)), Org: "100001", Workload: event.PowerApps, MCV: v})
	}
	// Another organisation's rows never count.
	m.Workloads = append(m.Workloads, WorkloadRow{Tenant: "z", Org: "200001", Workload: event.PowerApps, MCV: 1e6})
	return m
}

func TestCapabilityScore(t *testing.T) {
	cfg := DefaultConfig()
	tests := []struct {
		name      string
		segment   string
		cur, base Monthly
		inputs    directory.Inputs
		hasInputs bool
		want      Points
		growth    *float64
		qualified bool
	}{
		{
			name: "smb, every subcategory over its cap", segment: event.SMB,
			cur: month("2026-01", 40000, 9000, 8000, 7000, 6000, 5000, 5000, 100), base: month("2025-01", 26000),
			inputs: directory.Inputs{NetCustomerAdds: 9, IntermediateCertified: 6, AdvancedCertified: 3}, hasInputs: true,
			want:   Points{NetCustomerAdds: 15, Intermediate: 20, Advanced: 15, UsageGrowth: 30, Deployments: 20},
			growth: ptr(208.08), qualified: true,
		},
		{
			name: "enterprise rates, growth floored, below the deployment threshold", segment: event.Enterprise,
			cur: month("2026-01", 51500, 9999), base: month("2025-01", 50000),
			inputs: directory.Inputs{NetCustomerAdds: 1, IntermediateCertified: 3, AdvancedCertified: 1}, hasInputs: true,
			want:   Points{NetCustomerAdds: 3, Intermediate: 3, Advanced: 2.14, UsageGrowth: 22, Deployments: 0},
			growth: ptr(22.998),
		},
		{
			name: "growth of exactly 29% scores 29, not the 28.999… of a float quotient", segment: event.SMB,
			cur: month("2026-01", 51600), base: month("2025-01", 40000),
			want: Points{UsageGrowth: 29}, growth: ptr(29),
		},
		{
			name: "baseline under the smb threshold scores no growth", segment: event.SMB,
			cur: month("2026-01", 30000), base: month("2025-01", 24999.99),
			want: Points{Deployments: 0}, growth: ptr(20),
		},
		{
			name: "shrinking usage and deployments score 0, not less", segment: event.SMB,
			cur: month("2026-01", 5000), base: month("2025-01", 30000, 6000),
			inputs: directory.Inputs{NetCustomerAdds: -2}, hasInputs: true,
			want: Points{}, growth: ptr(-86.11),
		},
		{
			name: "no baseline: growth is null", segment: "",
			cur: month("2026-01", 5000), base: month("2025-01"),
			want: Points{Deployments: 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := CapabilityScore(cfg, "100001", tt.segment, tt.cur, tt.base, tt.inputs, tt.hasInputs)
			if diff := cmp.Diff(tt.want, s.Points); diff != "" {
				t.Errorf("points (-want +got):\n%s", diff)
			}
			wantGrowth := tt.growth
			if wantGrowth != nil {
				rounded := round(*wantGrowth, 2)
				wantGrowth = &rounded
			}
			if diff := cmp.Diff(wantGrowth, s.GrowthPct); diff != "" {
				t.Errorf("growth_pct (-want +got):\n%s", diff)
			}
			p := s.Points
			if total := round(p.NetCustomerAdds+p.Intermediate+p.Advanced+p.UsageGrowth+p.Deployments, 2); s.Total != total {
				t.Errorf("total = %v, want the sum %v", s.Total, total)
			}
			if s.Qualified != tt.qualified {
				t.Errorf("qualified = %v, want %v", s.Qualified, tt.qualified)
			}
		})
	}
}

func ptr(x float64) *float64 { return &x }

// TestWholePercentIsExact holds the growth's whole percent to the exact
// floor of the quotient of the cents, for random amounts and for growths of
// whole percents.
func TestWholePercentIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	check := func(cur, was int64) {
		exact := new(big.Rat).SetFrac64((cur-was)*100, was)
		floor := new(big.Int).Div(exact.Num(), exact.Denom()) // Euclidean: the floor, as the denominator is positive
		if got := wholePercent(float64(cur)/100, float64(was)/100); got != floor.Int64() {
			t.Fatalf("wholePercent(%d.%02d, %d.%02d) = %d, want %v", cur/100, cur%100, was/100, was%100, got, floor)
		}
	}
	for range 100000 {
		was := 1 + r.Int64N(1e9)
		check(r.Int64N(3e9), was)
		// A growth of a whole percent, p, from a baseline that divides.
		was = 100 * (1 + r.Int64N(1e7))
		check(was+was/100*(r.Int64N(250)-100), was)
	}
}
