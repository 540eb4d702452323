package usage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMergeSegmentsKeepsTheLastReport: records of any keys, some of the
// log and the others pushed in segments cut in any way, each after some of
// the log's records, merge into each key once, in key order: the record
// reported last, and of those reported at the same instant the later in
// the log's order (a pushed record coming after the log's records before
// its place, and after the segments before it).
func TestMergeSegmentsKeepsTheLastReport(t *testing.T) {
	type place struct {
		seq   int64 // a log record's sequence number, or the records before a push
		push  bool
		order int // a push's segment
	}
	laterPlace := func(a, b place) bool {
		if a.seq != b.seq {
			return a.seq > b.seq
		}
		if a.push != b.push {
			return a.push
		}
		return a.order >= b.order
	}
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		row := func() CostRow {
			r := CostRow{
				Tenant:   fmt.Sprintf("t%d", rng.IntN(3)),
				Resource: fmt.Sprintf("/subscriptions/s/resourcegroups/rg/providers/a/b/r%d", rng.IntN(40)),
				Day:      20454 + int32(rng.IntN(4)), Meter: int32(rng.IntN(3)),
				Nanos: rng.Int64N(1e12), At: int64(rng.IntN(3)),
			}
			if rng.IntN(20) == 0 {
				r.Exact, r.Nanos = "1/3", 0
			}
			return r
		}
		type placed struct {
			r CostRow
			p place
		}
		var all []placed
		// The log's records: each key and instant once, as the engine
		// keeps them, with its sequence number.
		logSeq := map[[5]any]int64{}
		var logRows []CostRow
		for range rng.IntN(200) {
			r := row()
			k := [5]any{r.Tenant, r.Resource, r.Day, r.Meter, r.At}
			if _, ok := logSeq[[5]any{r.Tenant, r.Resource, r.Day, r.Meter, nil}]; ok {
				continue
			}
			seq := 1 + rng.Int64N(30)
			logSeq[k], logSeq[[5]any{r.Tenant, r.Resource, r.Day, r.Meter, nil}] = seq, seq
			r.Place = LogPlace
			logRows = append(logRows, r)
			all = append(all, placed{r, place{seq: seq}})
		}
		// The log's records come as rows held, the pushed ones as bytes.
		segments := []Source{{Sorted: SortCostRows(logRows)}}
		for k := range 1 + rng.IntN(6) {
			after := rng.Int64N(30)
			var rows []CostRow
			for range rng.IntN(300) {
				r := row()
				rows = append(rows, r)
			}
			rows = SortCostRows(rows)
			for _, r := range rows {
				all = append(all, placed{r, place{seq: after, push: true, order: k + 1}})
			}
			data, err := WriteSegment(rows)
			if err != nil {
				t.Fatal(err)
			}
			segments = append(segments, Source{Data: data, After: after})
		}
		// What keeping every record gives: per key, the last reported, of
		// the same instant the later in the log's order; in key order.
		best := map[[4]any]placed{}
		for _, pr := range all {
			k := [4]any{pr.r.Tenant, pr.r.Resource, pr.r.Day, pr.r.Meter}
			if b, ok := best[k]; !ok || pr.r.At > b.r.At || pr.r.At == b.r.At && laterPlace(pr.p, b.p) {
				best[k] = pr
			}
		}
		var want []CostRow
		for _, pr := range best {
			r := pr.r
			if pr.p.push {
				r.Place = pr.p.seq + 1
			}
			want = append(want, r)
		}
		slices.SortFunc(want, func(a, b CostRow) int { return compareCostKey(&a, &b) })
		logLater := func(log, pushed *CostRow) (bool, error) {
			return logSeq[[5]any{log.Tenant, log.Resource, log.Day, log.Meter, log.At}] > pushed.Place-1, nil
		}
		var got []CostRow
		if err := MergeSegments(segments, logLater, func(r *CostRow) error { got = append(got, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("seed %d, %d segments: merged rows differ (-want +got):\n%s", seed, len(segments), diff)
		}
	}
}
