package metrics

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/usage"
)

// control credits app1 in tenant big and app2 in tenant small to Fabrikam.
const control = `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"big","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"big","account":"maker","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"big","account":"maker","partner":"100011"}
{"type":"resource.created","time":"2026-01-01T00:00:00Z","tenant":"big","environment":"prod","resource":"app1","kind":"canvas_app","owner":"maker"}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"small","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"small","account":"maker","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"small","account":"maker","partner":"100011"}
{"type":"resource.created","time":"2026-01-01T00:00:00Z","tenant":"small","environment":"prod","resource":"app2","kind":"canvas_app","owner":"maker"}
`

// fold applies a control log, every line of which must apply.
func fold(t testing.TB, opts attribution.Options, log string) *attribution.Engine {
	t.Helper()
	e := attribution.New(opts)
	rd := event.NewReader(strings.NewReader(log))
	for {
		ev, rf, err := rd.Next()
		if err != nil {
			break
		}
		if rf != nil {
			t.Fatalf("control line refused: %v", rf)
		}
		if res := e.Apply(ev); res.Outcome != attribution.Applied {
			t.Fatalf("control line not applied: %+v", res)
		}
	}
	return e
}

// use is a row of a usage file.
type use struct {
	at                     time.Time
	tenant, resource, user string
}

// parquetOf writes uses as a Parquet usage file.
func parquetOf(t testing.TB, uses []use) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := usage.NewWriter(&buf)
	for _, u := range uses {
		if err := w.Write(u.at, u.tenant, u.resource, u.user); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// countFile counts a Parquet usage file in batches, one reader for each
// aggregator given, and fails the test for any row refused.
func countFile(t testing.TB, h Histories, data []byte, into ...*Aggregator) {
	t.Helper()
	err := usage.ReadParquet(context.Background(), bytes.NewReader(data), int64(len(data)), len(into), func(w int, b *usage.Batch) error {
		into[w].UsageBatch(h, b, func(rf *event.Refusal) { t.Errorf("row refused: %v", rf) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// noSegments reads every organisation as of no segment.
func noSegments(string, string) string { return "" }

// TestUsageBatchCounts counts the users of a tenant well past the users a
// tally keeps in its bitset, and user names that two tenants share within
// one row group, through the batch path with two forks and through the
// event-by-event path: both give the exact distinct counts, and so does the
// aggregator restored from a snapshot.
func TestUsageBatchCounts(t *testing.T) {
	e := fold(t, attribution.DefaultOptions(), control)
	var uses []use
	start := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	distinct := map[string]map[string]bool{"big": {}, "small": {}}
	add := func(tenant, res, user string) {
		uses = append(uses, use{start.Add(time.Duration(len(uses)) * time.Second), tenant, res, user})
		distinct[tenant][user] = true
	}
	for i := range denseUsers + 5000 {
		user := fmt.Sprintf("u%06d", i)
		add("big", "app1", user)
		if i%3 == 0 {
			add("big", "app1", user) // seen twice
		}
		if i%7 == 0 {
			// The same name is another person in another tenant, and
			// both land in the same row groups.
			add("small", "app2", user)
		}
	}
	// A user first seen in the bitset's range and again after it grew.
	add("big", "app1", "u000001")

	batched := NewAggregator()
	forks := []*Aggregator{batched.Fork(), batched.Fork()}
	countFile(t, e, parquetOf(t, uses), forks...)
	for _, f := range forks {
		batched.Merge(f)
	}

	single := NewAggregator()
	for _, u := range uses {
		for _, iv := range e.History(u.tenant, u.resource) {
			single.Usage(u.at, u.tenant, u.resource, event.PowerApps, u.user, &iv.Credit)
			// Both paths number a user alike: counting the uses again,
			// one by one, adds no one.
			batched.Usage(u.at, u.tenant, u.resource, event.PowerApps, u.user, &iv.Credit)
		}
	}

	want := map[string]float64{"big": float64(len(distinct["big"])), "small": float64(len(distinct["small"]))}
	if want["big"] <= denseUsers {
		t.Fatalf("the test needs more than %d users in a tenant, has %v", denseUsers, want["big"])
	}
	mau := func(a *Aggregator) map[string]float64 {
		got := map[string]float64{}
		for _, w := range a.Report(DefaultConfig(), "2026-01", noSegments).Workloads {
			got[w.Tenant] = w.MAU
		}
		return got
	}
	// The service reads reports and snapshots concurrently: reading
	// changes nothing (go test -race checks).
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() {
			if got := mau(batched); !reflect.DeepEqual(got, want) {
				t.Errorf("read concurrently: MAU %v, want %v", got, want)
			}
			if _, err := batched.Snapshot(); err != nil {
				t.Error(err)
			}
		})
	}
	readers.Wait()

	for name, a := range map[string]*Aggregator{"batched": batched, "one by one": single} {
		if got := mau(a); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: MAU %v, want %v", name, got, want)
		}
	}

	data, err := batched.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := RestoreAggregator(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := mau(restored); !reflect.DeepEqual(got, want) {
		t.Errorf("restored: MAU %v, want %v", got, want)
	}
	// A user already numbered keeps its number after the restore.
	if got, was := restored.dict.id("big", "u000001"), batched.dict.id("big", "u000001"); got != was {
		t.Errorf("u000001 numbered %d after the restore, %d before", got, was)
	}
}

// TestUsageBatchBetweenOtherUses counts rows in batches, then reads the
// report and counts uses one by one, which grow the tally's bitset, then
// counts more batches: a user numbered before, new to the tally, counts,
// although the batch's copy of the bitset is from before it grew.
func TestUsageBatchBetweenOtherUses(t *testing.T) {
	e := fold(t, attribution.DefaultOptions(), control)
	jan, feb := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)
	credit := &e.History("big", "app1")[0].Credit
	a := NewAggregator()
	batches := func(at time.Time, users ...int) {
		var uses []use
		for i, u := range users {
			uses = append(uses, use{at.Add(time.Duration(i) * time.Second), "big", "app1", fmt.Sprintf("u%04d", u)})
		}
		countFile(t, e, parquetOf(t, uses), a)
	}
	mau := func() float64 {
		for _, w := range a.Report(DefaultConfig(), "2026-01", noSegments).Workloads {
			return w.MAU
		}
		return 0
	}
	// February's users number u0000 to u0127 from 0; January's tally
	// sees u0127 first, and its bitset covers the numbers below 128.
	var early []int
	for u := range 128 {
		early = append(early, u)
	}
	batches(feb, early...)
	batches(jan, 127)
	if got := mau(); got != 1 {
		t.Fatalf("MAU %v after the first batches, want 1", got)
	}
	for u := 200; u < 1000; u++ {
		a.Usage(jan, "big", "app1", event.PowerApps, fmt.Sprintf("u%04d", u), credit)
	}
	batches(jan, 5)
	if got := mau(); got != 802 {
		t.Fatalf("MAU %v after a batch that follows uses one by one, want 802", got)
	}
}

// BenchmarkAddDay adds one day of usage, 100,000 rows of 20,000 users, to
// a month that already holds 1 or 8 days, and reads the month's report: the
// time a day takes does not grow with the days before it.
//
//	go test ./internal/metrics -run '^$' -bench AddDay
func BenchmarkAddDay(b *testing.B) {
	e := fold(b, attribution.DefaultOptions(), control)
	day := func(d int) []byte {
		uses := make([]use, 100_000)
		start := time.Date(2026, 1, 1+d, 0, 0, 0, 0, time.UTC)
		for i := range uses {
			uses[i] = use{start.Add(time.Duration(i) * time.Second / 2), "big", "app1", fmt.Sprintf("u%05d", (i*7919+d*104729)%20_000)}
		}
		return parquetOf(b, uses)
	}
	next := day(20)
	for _, stored := range []int{1, 8} {
		b.Run(fmt.Sprintf("month_of_%d_days", stored), func(b *testing.B) {
			a := NewAggregator()
			for d := range stored {
				countFile(b, e, day(d+1), a)
			}
			a.Report(DefaultConfig(), "2026-01", noSegments)
			b.ResetTimer()
			for range b.N {
				countFile(b, e, next, a)
				a.Report(DefaultConfig(), "2026-01", noSegments)
			}
		})
	}
}

// TestUsageBatchSharedOrganisation counts, under split credit, users that
// an organisation gets whole from two resources, each shared between two
// of its locations: both resources' rows add to the one organisation's
// users, in whichever order they grow its bitset.
func TestUsageBatchSharedOrganisation(t *testing.T) {
	log := `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011","100012"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"t","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"t","account":"alice","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"t","account":"carol","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"t","account":"dave","kind":"user"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t","account":"alice","partner":"100011"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t","account":"carol","partner":"100012"}
{"type":"resource.created","time":"2026-01-01T00:00:00Z","tenant":"t","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}
{"type":"resource.coowner_added","time":"2026-01-01T00:00:00Z","tenant":"t","resource":"app1","account":"carol"}
{"type":"resource.created","time":"2026-01-01T00:00:00Z","tenant":"t","environment":"prod","resource":"app2","kind":"canvas_app","owner":"alice"}
{"type":"resource.coowner_added","time":"2026-01-01T00:00:00Z","tenant":"t","resource":"app2","account":"carol"}
{"type":"resource.created","time":"2026-01-01T00:00:00Z","tenant":"t","environment":"prod","resource":"app3","kind":"canvas_app","owner":"dave"}
`
	e := fold(t, attribution.Options{Policy: attribution.Split, Counted: []string{event.Production}}, log)
	// app3, credited to no one, numbers the users 0 to 199 first. Then
	// app1 sees user 127, app2 user 199 (which grows the organisation's
	// bitset), and app1 user 5.
	start := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	var uses []use
	add := func(resource, user string) {
		uses = append(uses, use{start.Add(time.Duration(len(uses)) * time.Second), "t", resource, user})
	}
	for i := range 200 {
		add("app3", fmt.Sprintf("u%03d", i))
	}
	add("app1", "u127")
	add("app2", "u199")
	add("app1", "u005")
	a := NewAggregator()
	countFile(t, e, parquetOf(t, uses), a)
	var got []WorkloadRow
	for _, w := range a.Report(DefaultConfig(), "2026-01", noSegments).Workloads {
		if w.Org == "100001" {
			got = append(got, w)
		}
	}
	if len(got) != 1 || got[0].MAU != 3 {
		t.Errorf("Fabrikam's workloads %+v, want power_apps with MAU 3", got)
	}
}
