package attribution_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/credit"
)

// randomHistory makes a credit history of a few intervals after those of
// prefix, with gaps (a resource deleted and made again) and holders that
// repeat.
func randomHistory(rng *rand.Rand, prefix []attribution.Interval) []attribution.Interval {
	h := slices.Clone(prefix)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if n := len(h); n > 0 {
		at = h[n-1].From
		if !h[n-1].To.IsZero() {
			at = h[n-1].To
		}
	}
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
func credited(cs []attribution.Change, t time.Time) attribution.Holder {
	var who attribution.Holder
	for _, c := range cs {
		if !c.Time.After(t) {
			who = c.To
		}
	}
	return who
}

// TestCorrectionToNoOne: a late event that leaves a resource credited to
// no one from an instant says so, with the reason, to the organisation
// that loses it.
func TestCorrectionToNoOne(t *testing.T) {
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	before := []attribution.Interval{
		{Kind: "canvas_app", From: at.AddDate(0, -2, 0), To: at, Credit: attribution.Credit{Reason: credit.EnvironmentNotCounted}},
		{Kind: "canvas_app", From: at, Credit: attribution.Credit{Attributed: true, Partner: "4000002", Org: "4000000"}},
	}
	after := []attribution.Interval{
		before[0],
		{Kind: "canvas_app", From: at, Credit: attribution.Credit{Reason: credit.NoEligibleAccount}},
	}
	got := attribution.Corrections("t4", "pa", before, after)
	want := []attribution.Change{{Tenant: "t4", Resource: "pa", Time: at, Correction: true,
		From: attribution.Holder{Partner: "4000002", Org: "4000000"}, To: attribution.Holder{Reason: credit.NoEligibleAccount}, Dropped: []string{"4000000"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("corrections\n%+v\nwant\n%+v", got, want)
	}
	if orgs := got[0].Orgs(); !slices.Equal(orgs, []string{"4000000"}) {
		t.Errorf("the correction concerns %v, want the organisation that lost the credit", orgs)
	}
}

func TestCorrectionsTurnOneHistoryIntoTheOther(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 5000 {
		before, after := randomHistory(rng, nil), randomHistory(rng, nil)
		if rng.IntN(3) == 0 {
			// Histories that share a beginning.
			after = randomHistory(rng, before[:rng.IntN(len(before)+1)])
		}
		held := consume(nil, attribution.ChangePoints("t", "r", before))
		held = consume(held, attribution.Corrections("t", "r", before, after))
		want := attribution.ChangePoints("t", "r", after)
		for at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)); at = at.Add(30 * time.Minute) {
			if got, want := credited(held, at).Partner, credited(want, at).Partner; got != want {
				t.Fatalf("case %d at %s: the consumer credits %q, the new history %q\nbefore %v\nafter %v", i, at.Format(time.Kitchen), got, want, before, after)
			}
		}
		// A consumer of one organisation's changes (those whose Orgs name
		// it, as its feed and webhook get them) ends crediting it where
		// the new history does.
		for _, org := range []string{"1", "2", "3"} {
			mine := func(cs []attribution.Change) []attribution.Change {
				return slices.DeleteFunc(slices.Clone(cs), func(c attribution.Change) bool { return !slices.Contains(c.Orgs(), org) })
			}
			held := consume(nil, mine(attribution.ChangePoints("t", "r", before)))
			held = consume(held, mine(attribution.Corrections("t", "r", before, after)))
			for at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)); at = at.Add(30 * time.Minute) {
				if got, want := credited(held, at).Org == org, credited(want, at).Org == org; got != want {
					t.Fatalf("case %d at %s: organisation %s's consumer credits it: %v, the new history: %v\nbefore %v\nafter %v", i, at.Format(time.Kitchen), org, got, want, before, after)
				}
			}
		}
	}
}
