package fold_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// BenchmarkOwnedState folds the log of 1,000 tenants (an owner linked to a
// partner and five apps each, 300 uses of 200 users a tenant) into a state
// that owns every tenant, and into one that owns a third of the 64
// buckets, as one of three processes does, and reports the memory each
// holds once folded (MiB-held) and the time of the fold.
func BenchmarkOwnedState(b *testing.B) {
	recs := ownedLog(1000, 300)
	for _, c := range []struct {
		name string
		owns func(string) bool
	}{
		{"every-tenant", nil},
		{"a-third", func(t string) bool { return store.Bucket(t, 64) < 64/3 }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var held float64
			for b.Loop() {
				b.StopTimer()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				st := fold.New(attribution.DefaultOptions())
				if c.owns != nil {
					if err := st.Own(context.Background(), fold.Records(nil), c.owns, nil); err != nil {
						b.Fatal(err)
					}
				}
				if err := st.CatchUp(context.Background(), recs); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(st)
				held = float64(after.HeapInuse-before.HeapInuse) / (1 << 20)
				b.StartTimer()
			}
			b.ReportMetric(held, "MiB-held")
		})
	}
}

// ownedLog is the log of BenchmarkOwnedState.
func ownedLog(tenants, uses int) fold.Records {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []*event.Event
	evs = append(evs, &event.Event{Type: event.PartnerRegistered, Time: t0, Org: "100001", Name: "Fabrikam", Locations: []string{"100011"}, Segment: event.SMB})
	for k := range tenants {
		tn := fmt.Sprintf("t%04d", k)
		evs = append(evs,
			&event.Event{Type: event.EnvironmentCreated, Time: t0, Tenant: tn, Environment: "prod", EnvType: "production"},
			&event.Event{Type: event.AccountCreated, Time: t0, Tenant: tn, Account: "owner", Kind: event.AccountGuest},
			&event.Event{Type: event.PalLinked, Time: t0, Tenant: tn, Account: "owner", Partner: "100011"})
		for a := range 5 {
			evs = append(evs, &event.Event{Type: event.ResourceCreated, Time: t0.Add(time.Second), Tenant: tn, Environment: "prod",
				Resource: fmt.Sprintf("app%d", a), Kind: "canvas_app", Owner: "owner"})
		}
	}
	for u := range uses {
		for k := range tenants {
			evs = append(evs, &event.Event{Type: event.Usage, Time: t0.Add(time.Hour + time.Duration(u)*time.Minute), Tenant: fmt.Sprintf("t%04d", k),
				Resource: fmt.Sprintf("app%d", (u+k)%5), User: fmt.Sprintf("u%d", (u*7+k)%200)})
		}
	}
	recs := make(fold.Records, len(evs))
	for i, ev := range evs {
		recs[i] = store.Record{Seq: int64(i + 1), Event: ev}
	}
	return recs
}
