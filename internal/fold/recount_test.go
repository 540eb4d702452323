package fold_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// A refold counts a tenant's uses again only where their credit moved
// (State.recount); these tests hold it to a replay of the log, monthly
// reports and refusals included.

// TestLateCreditChangesCountAsTheLog: a year of uses folded first, and
// then the changes of credit, each late and alone (those of one instant
// in their order), as partners' links arrive weeks after the uses they
// matter for: the counts a refold moves
// from one holder to another without reading the uses, drops, or counts
// again from the uses, end as one replay of the log.
func TestLateCreditChangesCountAsTheLog(t *testing.T) {
	for seed := uint64(1); seed <= 16; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			log := attributiontest.YearOfUses(seed, 300)
			opts := attribution.DefaultOptions()
			opts.Policy = []attribution.Policy{attribution.Latest, attribution.First, attribution.Split}[seed%3]
			want := replayed(t, opts, log)
			st, recs := lateOneByOne(t, opts, log, rand.New(rand.NewPCG(seed, 3)), func(ev *event.Event) bool {
				return ev.Line > attributiontest.YearSetupLines && ev.Type != event.Usage && ev.Type != event.Profiles
			})
			if diff := gocmp.Diff(want, stated(st, recs)); diff != "" {
				t.Fatalf("uses first, then the changes of credit one by one (-replay +state):\n%s", diff)
			}
		})
	}
}

// TestTiesAroundUsesFoldAsTheLog: uses that share their instant with
// changes of credit, some between two changes of one instant, delivered
// in any order that keeps an instant's lines in their order, in small
// batches, or folded first with each instant of changes arriving late and
// whole: the credits held for no time at one instant are counted as a
// replay counts them.
func TestTiesAroundUsesFoldAsTheLog(t *testing.T) {
	for seed := uint64(1); seed <= 150; seed++ {
		log := attributiontest.TiedUses(seed, 150)
		opts := attribution.DefaultOptions()
		opts.Policy = []attribution.Policy{attribution.Latest, attribution.First, attribution.Split}[seed%3]
		want := replayed(t, opts, log)
		kept, _ := fold.Order(log)
		ctx := context.Background()

		rng := rand.New(rand.NewPCG(seed, 99))
		recs := make(fold.Records, 0, len(kept))
		for _, ev := range attributiontest.ShuffleKeepingTies(rng, kept) {
			recs = append(recs, store.Record{Seq: int64(len(recs) + 1), Event: ev})
		}
		st := fold.New(opts)
		for from := 0; from < len(recs); {
			to := min(len(recs), from+1+rng.IntN(4))
			if err := st.Fold(ctx, recs[:to], recs[from:to]); err != nil {
				t.Fatal(err)
			}
			from = to
		}
		if diff := gocmp.Diff(want, stated(st, recs)); diff != "" {
			t.Fatalf("seed %d, %s, delivered in batches of 1 to 4 (-replay +state):\n%s", seed, opts.Policy, diff)
		}

		// The instants with changes arrive late, each whole and in its
		// order, after every other line.
		changed := map[time.Time]bool{}
		for _, ev := range kept {
			if ev.Line > attributiontest.TiedSetupLines && ev.Type != event.Usage && ev.Type != event.Profiles {
				changed[ev.Time] = true
			}
		}
		recs = recs[:0]
		instants := map[time.Time][]*event.Event{}
		var order []time.Time
		for _, ev := range kept {
			if ev.Line <= attributiontest.TiedSetupLines || !changed[ev.Time] {
				recs = append(recs, store.Record{Seq: int64(len(recs) + 1), Event: ev})
				continue
			}
			if instants[ev.Time] == nil {
				order = append(order, ev.Time)
			}
			instants[ev.Time] = append(instants[ev.Time], ev)
		}
		st = fold.New(opts)
		if err := st.Fold(ctx, recs, recs); err != nil {
			t.Fatal(err)
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, at := range order {
			from := len(recs)
			for _, ev := range instants[at] {
				recs = append(recs, store.Record{Seq: int64(len(recs) + 1), Event: ev})
			}
			if err := st.Fold(ctx, recs, recs[from:]); err != nil {
				t.Fatal(err)
			}
		}
		if diff := gocmp.Diff(want, stated(st, recs)); diff != "" {
			t.Fatalf("seed %d, %s, instants of changes late (-replay +state):\n%s", seed, opts.Policy, diff)
		}
	}
}

// foldArrivals folds a log's lines in batches of arrival, each a list of
// indexes into the log; a nil batch stands for a cold start of what
// arrived so far (CatchUp).
func foldArrivals(t *testing.T, log []*event.Event, batches ...[]int) (*fold.State, fold.Records) {
	t.Helper()
	var recs fold.Records
	st := fold.New(attribution.DefaultOptions())
	for _, b := range batches {
		if b == nil {
			st = fold.New(attribution.DefaultOptions())
			if err := st.CatchUp(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			continue
		}
		from := len(recs)
		for _, i := range b {
			recs = append(recs, store.Record{Seq: int64(len(recs) + 1), Event: log[i]})
		}
		if err := st.Fold(context.Background(), recs, recs[from:]); err != nil {
			t.Fatal(err)
		}
	}
	return st, recs
}

// tenantLog numbers a tenant t's lines from 1, after the partners A
// (100011) and B (200011), accounts a1 (linked to A) and a2 (to B), and
// canvas app r1 owned by a1: lines 0 to 7.
func tenantLog(evs ...event.Event) []*event.Event {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs = append([]event.Event{
		{Type: event.PartnerRegistered, Time: t0, Org: "100001", Name: "A", Locations: []string{"100011"}, Segment: event.SMB},
		{Type: event.PartnerRegistered, Time: t0, Org: "200001", Name: "B", Locations: []string{"200011"}, Segment: event.SMB},
		{Type: event.EnvironmentCreated, Time: t0, Tenant: "t", Environment: "e1", EnvType: event.Production},
		{Type: event.AccountCreated, Time: t0, Tenant: "t", Account: "a1", Kind: event.AccountGuest},
		{Type: event.AccountCreated, Time: t0, Tenant: "t", Account: "a2", Kind: event.AccountGuest},
		{Type: event.PalLinked, Time: t0, Tenant: "t", Account: "a1", Partner: "100011"},
		{Type: event.PalLinked, Time: t0, Tenant: "t", Account: "a2", Partner: "200011"},
		{Type: event.ResourceCreated, Time: t0.Add(time.Hour), Tenant: "t", Environment: "e1", Resource: "r1", Kind: "canvas_app", Owner: "a1"},
	}, evs...)
	return numbered(evs...)
}

// numbered makes a log of events, numbering their lines and ids from 1.
func numbered(evs ...event.Event) []*event.Event {
	var log []*event.Event
	for i := range evs {
		ev := evs[i]
		ev.Line, ev.ID = i+1, fmt.Sprintf("e%d", i+1)
		log = append(log, &ev)
	}
	return log
}

// TestRecountCases: cases the property tests found, each against a
// replay of its log, and the engine's present where no use that was once
// applied is refused (the present does not go back).
func TestRecountCases(t *testing.T) {
	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 12, 0, 0, 0, time.UTC) }
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	setup := []int{0, 1, 2, 3, 4, 5, 6, 7}
	// A late activity folds t again while a use of March waits in its
	// batch; a change of February must then fold t again, and credit the
	// use by it.
	passed := func(change event.Event) []*event.Event {
		return tenantLog(
			event.Event{Type: event.ResourceActivity, Time: day(1, 20), Tenant: "t", Resource: "r1", Account: "a1", Action: "edit"},
			event.Event{Type: event.ResourceActivity, Time: day(1, 5), Tenant: "t", Resource: "r1", Account: "a1", Action: "edit"},
			event.Event{Type: event.Usage, Time: day(3, 10), Tenant: "t", Resource: "r1", User: "u1"},
			change)
	}
	ownerChange := event.Event{Type: event.ResourceOwnerChange, Time: day(2, 1), Tenant: "t", Resource: "r1", Owner: "a2"}
	deleted := event.Event{Type: event.ResourceDeleted, Time: day(2, 1), Tenant: "t", Resource: "r1"}
	// a2, a co-owner, works on r1, a use follows, and a2 is enabled: the
	// activity or the enabling moves the credit to B, whichever comes
	// first while a2 counts. A late disabling before moves it from one
	// to the other, across the use, and no history moves.
	noon := day(2, 10)
	coowner := event.Event{Type: event.ResourceCoownerAdd, Time: t0.Add(time.Hour), Tenant: "t", Resource: "r1", Account: "a2"}
	activity := event.Event{Type: event.ResourceActivity, Time: noon, Tenant: "t", Resource: "r1", Account: "a2", Action: "edit"}
	use := event.Event{Type: event.Usage, Time: noon, Tenant: "t", Resource: "r1", User: "u1"}
	enabled := event.Event{Type: event.AccountEnabled, Time: noon, Tenant: "t", Account: "a2"}
	disabled := event.Event{Type: event.AccountDisabled, Time: noon, Tenant: "t", Account: "a2"}
	lateDisabled := event.Event{Type: event.AccountDisabled, Time: day(1, 20), Tenant: "t", Account: "a2"}
	// Late records of t arrive in one batch, or in a cold start, the
	// earliest last: the instants of several records read again are those
	// from the earliest on.
	earliestLast := tenantLog(coowner, activity, use, enabled,
		event.Event{Type: event.AccountCreated, Time: day(4, 1), Tenant: "t", Account: "a3", Kind: event.AccountGuest},
		event.Event{Type: event.AccountCreated, Time: day(3, 1), Tenant: "t", Account: "a4", Kind: event.AccountGuest},
		lateDisabled)
	for _, c := range []struct {
		name    string
		log     []*event.Event
		batches [][]int
		present bool
	}{
		// a1, the owner, is disabled and enabled again around a use: the
		// use is credited to no one, or to a co-owner that arrives late
		// though its history, A throughout, does not move.
		{"a co-owner credited for no time", tenantLog(
			event.Event{Type: event.ResourceCoownerAdd, Time: t0.Add(time.Hour), Tenant: "t", Resource: "r1", Account: "a2"},
			event.Event{Type: event.AccountDisabled, Time: day(2, 10), Tenant: "t", Account: "a1"},
			event.Event{Type: event.Usage, Time: day(2, 10), Tenant: "t", Resource: "r1", User: "u1"},
			event.Event{Type: event.AccountEnabled, Time: day(2, 10), Tenant: "t", Account: "a1"},
		), [][]int{append(setup, 9, 10, 11), {8}}, true},
		{"a use passed over, then an owner changed before it", passed(ownerChange), [][]int{append(setup, 8), {9, 10}, {11}}, true},
		{"a use passed over, then the resource deleted before it", passed(deleted), [][]int{append(setup, 8), {9, 10}, {11}}, false},
		{"a cold start, then an owner changed", passed(ownerChange), [][]int{append(setup, 8, 9, 10), nil, {11}}, true},
		{"a cold start, then the resource deleted", passed(deleted), [][]int{append(setup, 8, 9, 10), nil, {11}}, false},
		{"a late change moves which change of an instant moves the credit", tenantLog(coowner, activity, use, enabled, lateDisabled),
			[][]int{append(setup, 8, 9, 10, 11), {12}}, true},
		{"the same, the credit held for no time", tenantLog(coowner, activity, use, enabled, disabled, lateDisabled),
			[][]int{append(setup, 8, 9, 10, 11, 12), {13}}, true},
		// A late use after its tenant's latest record, refused, moves the
		// present as it would in its place.
		{"a late use after a refused record", tenantLog(
			event.Event{Type: event.PalRemoved, Time: day(2, 1), Tenant: "t", Account: "nobody"},
			event.Event{Type: event.Usage, Time: day(1, 20), Tenant: "t", Resource: "r1", User: "u1"},
		), [][]int{append(setup, 8), {9}}, true},
		// Of two creations of r1 at one instant with a use between them,
		// a late deletion of the first's owner makes the second create
		// it: the use is refused.
		{"a late change moves which creation of an instant creates the resource", numbered(
			event.Event{Type: event.PartnerRegistered, Time: t0, Org: "100001", Name: "A", Locations: []string{"100011"}, Segment: event.SMB},
			event.Event{Type: event.EnvironmentCreated, Time: t0, Tenant: "t", Environment: "e1", EnvType: event.Production},
			event.Event{Type: event.AccountCreated, Time: t0, Tenant: "t", Account: "a1", Kind: event.AccountGuest},
			event.Event{Type: event.AccountCreated, Time: t0, Tenant: "t", Account: "a2", Kind: event.AccountGuest},
			event.Event{Type: event.PalLinked, Time: t0, Tenant: "t", Account: "a1", Partner: "100011"},
			event.Event{Type: event.PalLinked, Time: t0, Tenant: "t", Account: "a2", Partner: "100011"},
			event.Event{Type: event.ResourceCreated, Time: noon, Tenant: "t", Environment: "e1", Resource: "r1", Kind: "canvas_app", Owner: "a1"},
			use,
			event.Event{Type: event.ResourceCreated, Time: noon, Tenant: "t", Environment: "e1", Resource: "r1", Kind: "canvas_app", Owner: "a2"},
			event.Event{Type: event.AccountDeleted, Time: day(2, 9), Tenant: "t", Account: "a1"},
		), [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {9}}, false},
		// A record of the directory in its place after a late one in its
		// batch moves the present when the directory is folded again.
		{"a directory record folded again", numbered(
			event.Event{Type: event.PartnerRegistered, Time: t0, Org: "100001", Name: "A", Locations: []string{"100011"}, Segment: event.SMB},
			event.Event{Type: event.AccountCreated, Time: t0.Add(10 * time.Hour), Tenant: "t", Account: "a0", Kind: event.AccountUser},
			event.Event{Type: event.PartnerRegistered, Time: t0.Add(5 * time.Hour), Org: "200001", Name: "B", Locations: []string{"200011"}, Segment: event.SMB},
			event.Event{Type: event.PartnerRegistered, Time: t0.Add(100 * time.Hour), Org: "300001", Name: "C", Locations: []string{"300011"}, Segment: event.SMB},
		), [][]int{{0, 1}, {2, 3}}, true},
		{"an earlier late record after a later one, in one batch", earliestLast, [][]int{append(setup, 8, 9, 10, 11, 12), {13, 14}}, true},
		{"the same, in a cold start", earliestLast, [][]int{append(setup, 8, 9, 10, 11, 12, 13, 14), nil}, true},
		// A partner registered again at the instant of a change and a use
		// of t counts among the instant's records.
		{"a directory record between a change and a use of one instant", numbered(
			event.Event{Type: event.PartnerRegistered, Time: t0, Org: "100001", Name: "A", Locations: []string{"100011"}, Segment: event.SMB},
			event.Event{Type: event.PartnerRegistered, Time: t0, Org: "300001", Name: "C", Locations: []string{"300011"}, Segment: event.SMB},
			event.Event{Type: event.EnvironmentCreated, Time: t0, Tenant: "t", Environment: "e1", EnvType: event.Production},
			event.Event{Type: event.AccountCreated, Time: t0, Tenant: "t", Account: "a1", Kind: event.AccountGuest},
			event.Event{Type: event.AccountCreated, Time: t0, Tenant: "t", Account: "a3", Kind: event.AccountGuest},
			event.Event{Type: event.PalLinked, Time: t0, Tenant: "t", Account: "a1", Partner: "100011"},
			event.Event{Type: event.PalLinked, Time: t0, Tenant: "t", Account: "a3", Partner: "300011"},
			event.Event{Type: event.ResourceCreated, Time: t0.Add(time.Hour), Tenant: "t", Environment: "e1", Resource: "r1", Kind: "canvas_app", Owner: "a1"},
			event.Event{Type: event.ResourceCoownerAdd, Time: t0.Add(time.Hour), Tenant: "t", Resource: "r1", Account: "a3"},
			event.Event{Type: event.ResourceActivity, Time: noon, Tenant: "t", Resource: "r1", Account: "a3", Action: "edit"},
			use,
			event.Event{Type: event.PartnerRegistered, Time: noon, Org: "300001", Name: "C", Locations: []string{"300011"}, Segment: event.SMB},
			event.Event{Type: event.PartnerRegistered, Time: day(1, 20), Org: "300001", Name: "C", Locations: []string{"300012"}, Segment: event.SMB},
		), [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {12}}, true},
		// home waits to be folded again (a late link) when cust's role
		// assignment names an account of home that a record passed over
		// in the same batch creates: cust waits too, and then finds it.
		{"a tenant that reads one waiting to be folded again", numbered(
			event.Event{Type: event.PartnerRegistered, Time: t0, Org: "100001", Name: "A", Locations: []string{"100011"}, Segment: event.SMB},
			event.Event{Type: event.AccountCreated, Time: t0.Add(time.Hour), Tenant: "home", Account: "a0", Kind: event.AccountUser},
			event.Event{Type: event.AccountCreated, Time: t0.Add(2 * time.Hour), Tenant: "cust", Account: "c0", Kind: event.AccountUser},
			event.Event{Type: event.AccountCreated, Time: t0.Add(30 * time.Hour), Tenant: "home", Account: "x", Kind: event.AccountUser},
			event.Event{Type: event.PalLinked, Time: t0.Add(5 * time.Hour), Tenant: "home", Account: "a0", Partner: "100011"},
			event.Event{Type: event.AccountCreated, Time: t0.Add(40 * time.Hour), Tenant: "home", Account: "a1", Kind: event.AccountUser},
			event.Event{Type: event.AzureRoleAssigned, Time: t0.Add(50 * time.Hour), Tenant: "cust", Assignment: "x1", Principal: "a1", PrincipalTenant: "home", Role: "Owner", Scope: "/", PIM: event.PIMActive},
		), [][]int{{0, 1, 2, 3}, {4, 5, 6}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := replayed(t, attribution.DefaultOptions(), c.log)
			st, recs := foldArrivals(t, c.log, c.batches...)
			if diff := gocmp.Diff(want, stated(st, recs)); diff != "" {
				t.Errorf("(-replay +state):\n%s", diff)
			}
			e := attribution.New(attribution.DefaultOptions())
			if err := fold.Replay(context.Background(), e, c.log, fold.Hooks{}); err != nil {
				t.Fatal(err)
			}
			if c.present && !st.Engine().Now().Equal(e.Now()) {
				t.Errorf("the state's present is %v, the replay's %v", st.Engine().Now(), e.Now())
			}
		})
	}
}

// TestShiftedTiesFoldAsTheLog: lone changes that arrive late, one by one,
// after instants that hold several changes with uses between them: a
// late change may move which change of an instant moves a credit, and
// with it the credit of a use between them, though no history moves.
func TestShiftedTiesFoldAsTheLog(t *testing.T) {
	// 300 seeds hold two logs on which a refold that looks at the
	// histories alone (and not at instants of several changes) fails.
	for seed := uint64(1); seed <= 300; seed++ {
		log := attributiontest.ShiftedTies(seed, 40)
		opts := attribution.DefaultOptions()
		opts.Policy = []attribution.Policy{attribution.Latest, attribution.First}[seed%2]
		want := replayed(t, opts, log)
		st, recs := lateOneByOne(t, opts, log, rand.New(rand.NewPCG(seed, 5)), attributiontest.LoneChange)
		if diff := gocmp.Diff(want, stated(st, recs)); diff != "" {
			t.Fatalf("seed %d, %s (-replay +state):\n%s", seed, opts.Policy, diff)
		}
	}
}

// lateOneByOne folds the lines of a log that late does not tell in one
// batch, and then those it tells, one by one, in a random order that
// keeps lines of one instant in theirs.
func lateOneByOne(t *testing.T, opts attribution.Options, log []*event.Event, rng *rand.Rand, late func(*event.Event) bool) (*fold.State, fold.Records) {
	t.Helper()
	var first, last []*event.Event
	for _, ev := range log {
		if late(ev) {
			last = append(last, ev)
		} else {
			first = append(first, ev)
		}
	}
	var recs fold.Records
	for _, ev := range append(first, attributiontest.ShuffleKeepingTies(rng, last)...) {
		recs = append(recs, store.Record{Seq: int64(len(recs) + 1), Event: ev})
	}
	ctx := context.Background()
	st := fold.New(opts)
	if err := st.Fold(ctx, recs[:len(first)], recs[:len(first)]); err != nil {
		t.Fatal(err)
	}
	for i := len(first); i < len(recs); i++ {
		if err := st.Fold(ctx, recs[:i+1], recs[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return st, recs
}
