package fold_test

import (
	"context"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// recordsOf decodes log lines into records numbered from 1.
func recordsOf(t *testing.T, lines ...string) fold.Records {
	t.Helper()
	var recs fold.Records
	for i, l := range lines {
		ev, rf := event.Decode([]byte(l), i+1)
		if rf != nil {
			t.Fatalf("line %d: %s", i+1, rf.Message)
		}
		recs = append(recs, store.Record{Seq: int64(i + 1), Event: ev})
	}
	return recs
}

const vm1 = "/subscriptions/s1/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1"

// TestAGainReadsNoFurtherThanTheState: a tenant gained is folded from the
// log as far as the state folded it, the tenants it reads included, though
// the log holds more.
func TestAGainReadsNoFurtherThanTheState(t *testing.T) {
	recs := recordsOf(t,
		`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`,
		`{"type":"azure.consumption","time":"2026-01-02T00:00:00Z","tenant":"customer","resource":"`+vm1+`","date":"2026-01-02","cost":10,"meter":"standard"}`,
		`{"type":"azure.role_assigned","time":"2026-01-03T00:00:00Z","tenant":"customer","assignment":"x1","principal":"a1","principal_tenant":"home","role":"Contributor","scope":"/subscriptions/s1","pim":"active"}`,
		// committed after the state's last record, not yet folded:
		`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"home","account":"a1","kind":"user"}`,
		`{"type":"account.created","time":"2026-03-01T00:00:00Z","tenant":"home","account":"a9","kind":"user"}`,
	)
	ctx := context.Background()
	opts := attribution.DefaultOptions()
	full, st := fold.New(opts), fold.New(opts)
	st.Own(ctx, fold.Records(nil), func(string) bool { return false }, nil)
	for _, s := range []*fold.State{full, st} {
		if err := s.Fold(ctx, recs[:3], recs[:3]); err != nil {
			t.Fatal(err)
		}
	}
	// The state gains customer; the log has two more records than it folded.
	if err := st.Own(ctx, recs, func(tn string) bool { return tn == "customer" }, []string{"customer", "home"}); err != nil {
		t.Fatal(err)
	}
	cust := func(t string) bool { return t == "customer" }
	if diff := gocmp.Diff(full.Refusals(cust), st.Refusals(cust)); diff != "" {
		t.Errorf("refusals of customer at seq 3 (-every tenant +owner):\n%s", diff)
	}
	if st.Engine().Now().After(full.Engine().Now()) {
		t.Errorf("the owner's present %v is past the log it folded (%v)", st.Engine().Now(), full.Engine().Now())
	}
}

// TestTenantsOfConsumptionAloneAreOwnedToo: a tenant the state knows by
// its noted consumption alone, or by consumption applied late alone, is
// forgotten when lost and folded when gained, as one with records.
func TestTenantsOfConsumptionAloneAreOwnedToo(t *testing.T) {
	recs := recordsOf(t,
		`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`,
	)
	ctx := context.Background()
	opts := attribution.DefaultOptions()
	full, st := fold.New(opts), fold.New(opts)
	noted := []store.TenantResource{{Tenant: "pushed", Resource: vm1}}
	for _, s := range []*fold.State{full, st} {
		s.NoteConsumption(noted)
		if err := s.Fold(ctx, recs, recs); err != nil {
			t.Fatal(err)
		}
	}
	// Owning nothing: the noted tenant is not dropped.
	if err := st.Own(ctx, recs, func(string) bool { return false }, []string{}); err != nil {
		t.Fatal(err)
	}
	if rows := st.Engine().Attribution("pushed"); len(rows) != 0 {
		t.Errorf("owning no tenant, the state still answers for pushed: %+v", rows)
	}
	// Owning it again (the log has no record of it to list).
	if err := st.Own(ctx, recs, func(tn string) bool { return tn == "pushed" }, []string{}); err != nil {
		t.Fatal(err)
	}
	// A state that owned nothing at first gains it, though no record of
	// the log names it.
	want := full.Engine().Attribution("pushed")
	if len(want) != 1 {
		t.Fatalf("every tenant's state has %d rows of pushed, want its noted resource", len(want))
	}
	st3 := fold.New(opts)
	st3.Own(ctx, fold.Records(nil), func(string) bool { return false }, nil)
	st3.NoteConsumption(noted)
	st3.Fold(ctx, recs, recs)
	if err := st3.Own(ctx, recs, func(tn string) bool { return tn == "pushed" }, nil); err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(want, st3.Engine().Attribution("pushed")); diff != "" {
		t.Errorf("gained with no record in the log (-every tenant +owner):\n%s", diff)
	}
	// A tenant whose records were all applied late, before the
	// directory's latest, is forgotten as well.
	t.Run("late", func(t *testing.T) {
		recs := recordsOf(t,
			`{"type":"partner.registered","time":"2026-01-05T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`,
			`{"type":"azure.consumption","time":"2026-01-02T00:00:00Z","tenant":"x","resource":"`+vm1+`","date":"2026-01-02","cost":10,"meter":"standard"}`,
		)
		ctx := context.Background()
		opts := attribution.DefaultOptions()
		st := fold.New(opts)
		st.Own(ctx, fold.Records(nil), func(tn string) bool { return tn == "x" }, nil)
		st.Fold(ctx, recs, recs)
		if rows := st.Engine().Attribution("x"); len(rows) != 1 {
			t.Fatalf("owning x, the state has %d rows of it, want its resource", len(rows))
		}
		st.Own(ctx, recs, func(string) bool { return false }, nil)
		if rows := st.Engine().Attribution("x"); len(rows) != 0 {
			t.Errorf("owning nothing, the state still holds x: %+v", rows)
		}
	})
}

// TestTenantsGainedWithoutRecordsAreNotListed: a tenant gained, or read
// through Lighthouse, before the state folded any of its records is not
// among the tenants with records.
func TestTenantsGainedWithoutRecordsAreNotListed(t *testing.T) {
	recs := recordsOf(t,
		`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`,
		`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"customer","account":"a1","kind":"user"}`,
		`{"type":"azure.role_assigned","time":"2026-01-03T00:00:00Z","tenant":"customer","assignment":"x1","principal":"a1","principal_tenant":"home","role":"Contributor","scope":"/subscriptions/s1","pim":"active"}`,
		`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"later","account":"a1","kind":"user"}`,
	)
	ctx := context.Background()
	opts := attribution.DefaultOptions()
	full, st := fold.New(opts), fold.New(opts)
	st.Own(ctx, fold.Records(nil), func(string) bool { return false }, nil)
	for _, s := range []*fold.State{full, st} {
		s.Fold(ctx, recs[:3], recs[:3])
	}
	st.Own(ctx, recs[:3], func(tn string) bool { return tn == "customer" || tn == "later" }, []string{"customer", "later"})
	if !slices.Equal(full.Tenants(), st.Tenants()) {
		t.Errorf("Tenants: every tenant %v, owner of customer and later %v", full.Tenants(), st.Tenants())
	}
}
