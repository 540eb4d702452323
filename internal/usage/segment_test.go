package usage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMergeSegmentsKeepsTheLastReport: records of any keys, cut into
// segments in any way, merge into each key once, in key order, with the
// record reported last (the latest segment's at equal times): what keeping
// every record and replacing gives.
func TestMergeSegmentsKeepsTheLastReport(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var all []CostRow
		for range 1 + rng.IntN(3000) {
			all = append(all, CostRow{
				Tenant:   fmt.Sprintf("t%d", rng.IntN(3)),
				Resource: fmt.Sprintf("/subscriptions/s/resourcegroups/rg/providers/a/b/r%d", rng.IntN(50)),
				Day:      20454 + int32(rng.IntN(5)), Meter: int32(rng.IntN(4)),
				Nanos: rng.Int64N(1e12), At: int64(rng.IntN(4)),
			})
			if rng.IntN(20) == 0 {
				all[len(all)-1].Exact, all[len(all)-1].Nanos = "1/3", 0
			}
		}
		// What keeping every record gives: per key, the last one reported,
		// of equal times the last given; in key order.
		last := map[[4]any]CostRow{}
		for _, r := range all {
			k := [4]any{r.Tenant, r.Resource, r.Day, r.Meter}
			if kept, ok := last[k]; !ok || r.At >= kept.At {
				last[k] = r
			}
		}
		var want []CostRow
		for _, r := range last {
			want = append(want, r)
		}
		slices.SortFunc(want, func(a, b CostRow) int { return compareCostKey(&a, &b) })
		var segments [][]byte
		for rest := all; len(rest) > 0; {
			n := 1 + rng.IntN(len(rest))
			data, err := WriteSegment(SortCostRows(append([]CostRow(nil), rest[:n]...)))
			if err != nil {
				t.Fatal(err)
			}
			segments = append(segments, data)
			rest = rest[n:]
		}
		var got []CostRow
		if err := MergeSegments(segments, func(r *CostRow) error { got = append(got, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("seed %d, %d segments: merged rows differ (-want +got):\n%s", seed, len(segments), diff)
		}
	}
}
