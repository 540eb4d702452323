package attribution_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/credit"
)

// randomHistory makes a credit history of a few intervals, with gaps (a
// resource deleted and made again) and holders that repeat.
func randomHistory(rng *rand.Rand) []attribution.Interval {
	var h []attribution.Interval
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range rng.IntN(5) {
		at = at.Add(time.Duration(1+rng.IntN(3)) * time.Hour)
		c := attribution.Credit{Reason: credit.NoEligibleAccount}
		if p := rng.IntN(4); p > 0 {
			c = attribution.Credit{Attributed: true, Partner: fmt.Sprint(100000 + p), Org: fmt.Sprint(p)}
		}
		if n := len(h); n > 0 && h[n-1].To.IsZero() {
			h[n-1].To = at
		}
		if rng.IntN(4) == 0 && len(h) > 0 {
			// A gap: the resource was deleted, and is made again later.
			at = at.Add(time.Hour)
		}
		h = append(h, attribution.Interval{Kind: "canvas_app", From: at, Credit: c})
	}
	if n := len(h); n > 0 && rng.IntN(3) == 0 {
		h[n-1].To = at.Add(time.Hour)
	}
	return h
}

// consume applies changes as a consumer of the feed does: a correction
// drops what is held from its instant on.
func consume(held []attribution.Change, cs []attribution.Change) []attribution.Change {
	for _, c := range cs {
		if c.Correction {
			held = slices.DeleteFunc(held, func(d attribution.Change) bool { return !d.Time.Before(c.Time) })
		}
		held = append(held, c)
	}
	return held
}

// credited says who is credited at instant t after the changes.
func credited(cs []attribution.Change, t time.Time) string {
	who := ""
	for _, c := range cs {
		if !c.Time.After(t) {
			who = c.To.Partner
		}
	}
	return who
}

func TestCorrectionsTurnOneHistoryIntoTheOther(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 5000 {
		before, after := randomHistory(rng), randomHistory(rng)
		if rng.IntN(3) == 0 {
			// Histories that share a beginning.
			after = append(slices.Clone(before[:rng.IntN(len(before)+1)]), after...)
			slices.SortStableFunc(after, func(a, b attribution.Interval) int { return a.From.Compare(b.From) })
		}
		held := consume(nil, attribution.ChangePoints("t", "r", before))
		held = consume(held, attribution.Corrections("t", "r", before, after))
		want := attribution.ChangePoints("t", "r", after)
		for at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)); at = at.Add(30 * time.Minute) {
			if got, want := credited(held, at), credited(want, at); got != want {
				t.Fatalf("case %d at %s: the consumer credits %q, the new history %q\nbefore %v\nafter %v", i, at.Format(time.Kitchen), got, want, before, after)
			}
		}
	}
}
