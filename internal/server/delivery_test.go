package server_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/storetest"
)

// verdict is what the log says of a line, told by its content: the same
// fact wherever and however often it was delivered.
type verdict struct {
	Line    string
	Code    event.Code
	Message string
}

// truth is what `pal` answers on a log, and what the service must answer.
type truth struct {
	Attribution []attribution.Row
	// Past is the attribution at each of the instants pastInstants.
	Past     [][]attribution.Row
	Reports  []metrics.Monthly
	Timeline map[attribution.ResourceKey][]attribution.Interval
	Refused  []verdict
	// Azure holds the Azure reports of the months, as compact JSON.
	Azure []string
}

var months = []string{"2026-01", "2026-02", "2026-03"}

// pastInstants are instants within the random logs' two months.
var pastInstants = []string{"2026-01-10T06:00:00Z", "2026-01-31T12:00:00Z", "2026-02-15T00:00:00Z"}

// foldLog folds a log, in log order, as the command line does.
func foldLog(t *testing.T, log []*event.Event, opts attribution.Options) truth {
	t.Helper()
	events, _ := fold.Order(log)
	e := attribution.New(opts)
	agg := metrics.NewAggregator()
	var tr truth
	for _, ev := range events {
		res := e.Apply(ev)
		agg.Record(ev, res)
		if res.Outcome == attribution.Refused {
			tr.Refused = append(tr.Refused, verdict{factOf(ev), res.Refusal.Code, res.Refusal.Message})
		}
	}
	// The engine's own tests hold AttributionAt to a fold up to the
	// instant; it lists the Azure resources with consumption anywhere.
	for _, at := range pastInstants {
		tr.Past = append(tr.Past, append([]attribution.Row{}, e.AttributionAt(instant(at))...))
	}
	slices.SortFunc(tr.Refused, func(a, b verdict) int { return strings.Compare(a.Line+a.Message, b.Line+b.Message) })
	tr.Attribution = e.Attribution()
	for _, m := range months {
		r := agg.Report(metrics.DefaultConfig(), m, metrics.SegmentsAtMonthEnd(e))
		metrics.NameOrgs(&r, e)
		tr.Reports = append(tr.Reports, r)
	}
	for _, m := range months {
		rep, err := e.Azure().Report(m)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		tr.Azure = append(tr.Azure, string(data))
	}
	tr.Timeline = map[attribution.ResourceKey][]attribution.Interval{}
	e.Timeline(func(k attribution.ResourceKey, h []attribution.Interval) bool {
		// The service's timeline, as the command line's, names no
		// association time, no environment and no past activity.
		h = slices.Clone(h)
		for i := range h {
			h[i].Credit.Since, h[i].Environment, h[i].Renewals, h[i].ActivityBefore, h[i].RoleOnly = time.Time{}, "", nil, false, false
		}
		tr.Timeline[k] = h
		return true
	})
	return tr
}

// factOf is a line as its sender wrote it: the service marks the links
// the operator pushes as imported.
func factOf(ev *event.Event) string {
	c := *ev
	c.Imported = false
	return string(c.AppendJSON(nil))
}

func ndjson(events []*event.Event) string {
	var b bytes.Buffer
	for _, ev := range events {
		b.Write(ev.AppendJSON(nil))
		b.WriteByte('\n')
	}
	return b.String()
}

// deliver pushes the events in batches of random sizes, each to the
// service next returns, and now and then delivers a batch again, as a
// sender that lost an answer does. It returns the lines in the order they
// were delivered.
func deliver(t *testing.T, next func() *service, token string, rng *rand.Rand, events []*event.Event) []*event.Event {
	var delivered []*event.Event
	for i := 0; i < len(events); {
		n := 1 + rng.IntN(40)
		batch := events[i:min(i+n, len(events))]
		i += len(batch)
		times := 1
		if rng.IntN(8) == 0 {
			times = 2
		}
		for range times {
			res := next().push(token, ndjson(batch))
			if len(res.Refused) > 0 {
				t.Fatalf("a line was refused by the line checks: %+v", res.Refused)
			}
			delivered = append(delivered, batch...)
		}
	}
	return delivered
}

// TestAnyDeliveryGivesTheAnswersOfTheLog pushes random logs, their lines
// shuffled (equal times kept in their order) and cut in random batches,
// some delivered twice, and expects the service to answer as `pal` does on
// the concatenated deliveries and on the service's own /v1/log: the same
// attribution, reports, timelines and refusals, and a feed of changes that,
// applied in order with its corrections, ends with the timeline.
func TestAnyDeliveryGivesTheAnswersOfTheLog(t *testing.T) {
	type logCase struct {
		name   string
		seed   uint64
		log    []*event.Event
		policy attribution.Policy
	}
	var cases []logCase
	for seed := range uint64(4) {
		for _, policy := range []attribution.Policy{attribution.Latest, attribution.Split} {
			cases = append(cases, logCase{"random", seed, attributiontest.RandomLog(seed, 400), policy})
		}
	}
	// Azure logs: tenants that read another's accounts (Lighthouse) are
	// folded again when that tenant's past changes.
	for seed := range uint64(3) {
		cases = append(cases, logCase{"azure", seed, attributiontest.RandomAzureLog(seed, 400), attribution.Latest})
	}
	for _, b := range storetest.Backends() {
		for _, c := range cases {
			order := "shuffled"
			if c.seed == 3 || c.name == "azure" && c.seed == 2 {
				order = "directory-last"
			}
			t.Run(fmt.Sprintf("%s/%s-%d/%s/%s", b.Name, c.name, c.seed, c.policy, order), func(t *testing.T) {
				open := b.Fresh(t)
				opts := attribution.DefaultOptions()
				opts.Policy = c.policy
				rng := rand.New(rand.NewPCG(c.seed, 11))
				log := c.log
				if order == "directory-last" {
					// Every tenant's lines in time order, the partner
					// directory's after them: only the directory is late.
					log, _ = fold.Order(log)
					slices.SortStableFunc(log, func(a, b *event.Event) int { return cmp.Compare(b.Tenant, a.Tenant) })
					slices.SortStableFunc(log, func(a, b *event.Event) int { return cmp.Compare(isDirectory(a), isDirectory(b)) })
				} else {
					log = attributiontest.ShuffleKeepingTies(rng, log)
				}
				s := start(t, open(t), server.Config{Options: opts, SnapshotEvery: 150})
				operator := s.token(store.RoleOperator, "", "", "")
				delivered := deliver(t, func() *service { return s }, operator, rng, log)

				want := foldLog(t, delivered, opts)
				if len(want.Attribution) == 0 || len(want.Refused) == 0 {
					t.Fatal("the log credits or refuses nothing: the test would prove little")
				}
				exported := s.exportedLog(operator)
				if diff := gocmp.Diff(want, foldLog(t, exported, opts)); diff != "" {
					t.Fatalf("pal on /v1/log differs from pal on the deliveries (-deliveries +export):\n%s", diff)
				}
				got := s.truth(t, operator, exported, want.Timeline)
				if diff := gocmp.Diff(want, got); diff != "" {
					t.Fatalf("the service differs from pal on its log (-pal +service):\n%s", diff)
				}
				s.checkFeed(t, operator, want.Timeline)

				if c.name == "random" {
					// A tenant's administrator exports its tenant's lines
					// and the directory's registrations: pal on them
					// credits as the service tells that administrator.
					tenant := want.Attribution[0].Tenant
					admin := s.token(store.RoleTenantAdmin, tenant, "", "")
					var attr struct{ Resources []attribution.Row }
					s.json("GET", "/v1/attribution", admin, "", &attr)
					if diff := gocmp.Diff(foldLog(t, s.exportedLog(admin), opts).Attribution, attr.Resources); diff != "" || len(attr.Resources) == 0 {
						t.Fatalf("pal on %s's /v1/log differs from what the service tells its administrator (-pal +service):\n%s", tenant, diff)
					}
				}

				// A restart from the snapshot and the log's tail answers the same.
				again := start(t, s.store, server.Config{Options: opts, SnapshotEvery: 150})
				if diff := gocmp.Diff(want, again.truth(t, operator, exported, want.Timeline)); diff != "" {
					t.Fatalf("the restarted service differs (-pal +service):\n%s", diff)
				}
				// So does a cold start, whose snapshot is of another shape
				// (the first start after an upgrade): the whole log folded
				// a few records at a time, late records in other chunks
				// than the ones they are late for.
				if err := s.store.SaveSnapshot(context.Background(), int64(len(exported)), []byte("a snapshot of another version")); err != nil {
					t.Fatal(err)
				}
				cold := start(t, s.store, server.Config{Options: opts, SnapshotEvery: 1 << 30, FoldChunk: 37})
				if diff := gocmp.Diff(want, cold.truth(t, operator, exported, want.Timeline)); diff != "" {
					t.Fatalf("the service started cold differs (-pal +service):\n%s", diff)
				}
			})
		}
	}
}

func instant(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func isDirectory(ev *event.Event) int {
	if ev.Tenant == "" {
		return 1
	}
	return 0
}

// exportedLog reads /v1/log.
func (s *service) exportedLog(token string) []*event.Event {
	s.t.Helper()
	status, body := s.call("GET", "/v1/log", token, "")
	if status != http.StatusOK {
		s.t.Fatalf("GET /v1/log: %d %s", status, body)
	}
	var out []*event.Event
	rd := event.NewReader(bytes.NewReader(body))
	for {
		ev, rf, err := rd.Next()
		if err != nil {
			return out
		}
		if rf != nil {
			s.t.Fatalf("/v1/log line refused: %v", rf)
		}
		out = append(out, ev)
	}
}

// truth reads the service's answers: exported is its log, whose line k is
// the record of sequence number k.
func (s *service) truth(t *testing.T, token string, exported []*event.Event, timeline map[attribution.ResourceKey][]attribution.Interval) truth {
	t.Helper()
	var tr truth
	var attr struct{ Resources []attribution.Row }
	s.json("GET", "/v1/attribution", token, "", &attr)
	tr.Attribution = attr.Resources
	for _, at := range pastInstants {
		var past struct{ Resources []attribution.Row }
		s.json("GET", "/v1/attribution?at="+at, token, "", &past)
		tr.Past = append(tr.Past, past.Resources)
	}
	for _, m := range months {
		var r metrics.Monthly
		s.json("GET", "/v1/reports/monthly?month="+m, token, "", &r)
		tr.Reports = append(tr.Reports, r)
		status, body := s.call("GET", "/v1/reports/azure?month="+m, token, "")
		var compact bytes.Buffer
		if status != http.StatusOK || json.Compact(&compact, body) != nil {
			t.Fatalf("GET /v1/reports/azure: %d %s", status, body)
		}
		tr.Azure = append(tr.Azure, compact.String())
	}
	after := "0"
	for {
		var page struct {
			Refused []struct {
				Seq     int64
				Code    event.Code
				Message string
			}
			Next *int64
		}
		if status := s.json("GET", "/v1/refusals?limit=7&after="+after, token, "", &page); status != http.StatusOK {
			t.Fatalf("GET /v1/refusals: %d", status)
		}
		for _, rf := range page.Refused {
			tr.Refused = append(tr.Refused, verdict{factOf(exported[rf.Seq-1]), rf.Code, rf.Message})
		}
		if page.Next == nil {
			break
		}
		after = fmt.Sprint(*page.Next)
	}
	slices.SortFunc(tr.Refused, func(a, b verdict) int { return strings.Compare(a.Line+a.Message, b.Line+b.Message) })
	tr.Timeline = map[attribution.ResourceKey][]attribution.Interval{}
	for k := range timeline {
		var tl struct {
			Intervals []struct {
				Kind                  string
				From                  time.Time
				To                    *time.Time
				Partner, Org, Account string
				Reason                string
				Shares                []credit.Share
			}
		}
		q := url.Values{"tenant": {k.Tenant}, "resource": {k.Resource}}
		s.json("GET", "/v1/timeline?"+q.Encode(), token, "", &tl)
		for _, iv := range tl.Intervals {
			c := attribution.Credit{Attributed: iv.Partner != "", Partner: iv.Partner, Org: iv.Org, Account: iv.Account, Reason: iv.Reason, Shares: iv.Shares}
			out := attribution.Interval{Kind: iv.Kind, From: iv.From, Credit: c}
			if iv.To != nil {
				out.To = *iv.To
			}
			tr.Timeline[k] = append(tr.Timeline[k], out)
		}
	}
	return tr
}

// checkFeed applies the feed of changes as a consumer would, corrections
// included, and expects it to end with the timeline's changes.
func (s *service) checkFeed(t *testing.T, token string, timeline map[attribution.ResourceKey][]attribution.Interval) {
	t.Helper()
	held := attributiontest.Feed{}
	since := "0"
	for {
		var page struct {
			Changes []attribution.Change
			Next    int64
		}
		s.json("GET", "/v1/changes?limit=50&since="+since, token, "", &page)
		held.Apply(page.Changes...)
		if len(page.Changes) == 0 {
			break
		}
		since = fmt.Sprint(page.Next)
	}
	for k, h := range timeline {
		want := attributiontest.Holders(attribution.ChangePoints(k.Tenant, k.Resource, h))
		if got := attributiontest.Holders(held[k]); !slices.Equal(got, want) {
			t.Errorf("%s/%s: the feed applied in order gives\n  %v\nthe timeline's changes are\n  %v", k.Tenant, k.Resource, got, want)
		}
	}
}
