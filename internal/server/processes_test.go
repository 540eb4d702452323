package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/lease"
	"github.com/palproject/pal/internal/lease/leasetest"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/usage"
)

const testBuckets = 16

// forwardTimeout is how long the processes of the tests wait for an owner.
const forwardTimeout = 300 * time.Millisecond

// process is a service that shares the buckets of its database with
// others, its leases renewed when the test ticks them.
type process struct {
	*service
	id    string
	lease *lease.Manager
	hs    *httptest.Server
	// sick makes the process hang on every request (hanging) or answer
	// 503 (unready), as an owner that is stopped or still loading.
	sick atomic.Int32
}

const (
	healthy = iota
	hanging
	unready
)

// serve passes requests to h, unless the process is sick.
func (p *process) serve(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p.sick.Load() {
		case hanging:
			<-r.Context().Done()
			return
		case unready:
			http.Error(w, "loading", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// startProcess starts a service on a PostgreSQL database that shares its
// buckets, with a lease manager on the test's clock; the service reads the
// store through wrap, when given.
func startProcess(t *testing.T, dbURL, id string, c *leasetest.Clock, cfg server.Config, wrap ...func(store.Store) store.Store) *process {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if n, err := st.SetBuckets(ctx, testBuckets); err != nil || n != testBuckets {
		t.Fatalf("SetBuckets: %d, %v", n, err)
	}
	cfg.Store = st
	for _, w := range wrap {
		cfg.Store = w(cfg.Store)
	}
	// A wrapper that keeps the buckets' methods is the leases' store too.
	var shared store.Buckets = st
	if b, ok := cfg.Store.(store.Buckets); ok {
		shared = b
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &process{id: id}
	p.hs = httptest.NewUnstartedServer(p.serve(srv.Handler()))
	p.lease = lease.New(shared, testBuckets, lease.Options{ID: id, Addr: "http://" + p.hs.Listener.Addr().String(), Lease: 10 * time.Second, Now: c.Now})
	srv.Own(p.lease)
	p.hs.Start()
	t.Cleanup(p.hs.Close)
	p.service = &service{t: t, url: p.hs.URL, srv: srv, store: st}
	return p
}

// tenantsOf lists the tenants of a log, in the order they first come.
func tenantsOf(log []*event.Event) []string {
	var out []string
	for _, ev := range log {
		if ev.Tenant != "" && !slices.Contains(out, ev.Tenant) {
			out = append(out, ev.Tenant)
		}
	}
	return out
}

// rounds runs n rounds of the processes' leases, in turn.
func rounds(t *testing.T, n int, ps ...*process) {
	t.Helper()
	for range n {
		for _, p := range ps {
			if err := p.lease.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ask sends a GET and returns the status, the body and the process that
// answered.
func (s *service) ask(path, token string, header http.Header) (int, string, string) {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res.Header.Get("X-Pal-Process")
}

// metric returns the lines of /metrics that start with prefix.
func (s *service) metric(prefix string) []string {
	s.t.Helper()
	_, body := s.call("GET", "/metrics", "", "")
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// TestOneTenantQuestionsGoToTheOwner: a question about one tenant is
// answered by its bucket's owner, whichever process it is asked of; when
// the owner does not answer, the process reads the leases again and asks
// the new owner, or says to ask again (Unavailable) when there is none: it
// does not fold the tenant.
func TestOneTenantQuestionsGoToTheOwner(t *testing.T) {
	db := pgtest.Database(t)
	c := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a := startProcess(t, db, "a", c, server.Config{ForwardTimeout: forwardTimeout})
	b := startProcess(t, db, "b", c, server.Config{})
	d := startProcess(t, db, "d", c, server.Config{})
	ps := []*process{a, b, d}
	rounds(t, 3, ps...)
	operator := a.token(store.RoleOperator, "", "", "")
	lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
	a.push(operator, strings.Join(lines[:min(len(lines), 2000)], "\n"))
	// Each process is told the buckets it holds, as its first follow
	// does: the first question about a bucket does not wait for that,
	// which takes longer than this test's forward timeout under -race.
	for _, p := range ps {
		if err := server.Share(context.Background(), p.srv); err != nil {
			t.Fatal(err)
		}
	}

	tenants := tenantsOf(a.exportedLog(operator))
	if len(tenants) < 3 {
		t.Fatalf("the demo log has %d tenants: the test would prove little", len(tenants))
	}
	owner := func(tenant string) string {
		t.Helper()
		r, ok := a.lease.Route(tenant)
		if !ok {
			t.Fatalf("no route to %s", tenant)
		}
		return r.Owner
	}
	answers := map[string]string{}
	forwarded := 0
	for _, tenant := range tenants {
		path := "/v1/links?" + url.Values{"tenant": {tenant}}.Encode()
		for _, p := range ps {
			status, body, by := p.ask(path, operator, nil)
			if status != http.StatusOK || by != owner(tenant) {
				t.Fatalf("%s asked of %s: %d, answered by %q, want %s's owner %s: %s", tenant, p.id, status, by, tenant, owner(tenant), body)
			}
			if want, ok := answers[tenant]; ok && body != want {
				t.Fatalf("%s asked of %s answers\n%s\nnot as the others:\n%s", tenant, p.id, body, want)
			}
			answers[tenant] = body
			if p.id != by {
				forwarded++
			}
		}
		// A tenant administrator's questions are its tenant's: they go to
		// its owner too.
		admin := a.token(store.RoleTenantAdmin, tenant, "", "")
		if status, body, by := b.ask("/v1/attribution", admin, nil); status != http.StatusOK || by != owner(tenant) {
			t.Fatalf("%s's administrator asked b: %d, answered by %q, want %s: %s", tenant, status, by, owner(tenant), body)
		}
		// A question forwarded once is answered where it lands, when that
		// process folds the tenant; otherwise it is not answered there
		// (Unavailable), and the process that forwarded it reads the
		// leases again.
		want := http.StatusServiceUnavailable
		if owner(tenant) == "b" {
			want = http.StatusOK
		}
		if status, _, by := b.ask(path, operator, http.Header{"X-Pal-Forwarded-By": {"a"}}); status != want || by != "b" {
			t.Fatalf("a forwarded question asked of b: %d, answered by %q, want %d", status, by, want)
		}
	}
	if forwarded == 0 {
		t.Fatal("no question was forwarded")
	}
	// Questions across tenants are answered where they are asked.
	for _, p := range ps {
		if status, _, by := p.ask("/v1/reports/monthly?month=2026-03", operator, nil); status != http.StatusOK || by != p.id {
			t.Fatalf("a report asked of %s: %d, answered by %q", p.id, status, by)
		}
	}

	// The owner of one of the tenants, x, stops answering but holds its
	// leases: a asks it, reads the leases again, finds x still the owner,
	// and says to ask again.
	var x, y *process
	var tenant string
	for _, tn := range tenants {
		if o := owner(tn); o != "a" {
			tenant = tn
			x, y = b, d
			if o == "d" {
				x, y = d, b
			}
			break
		}
	}
	if x == nil {
		t.Fatal("a owns every tenant of the demo")
	}
	path := "/v1/links?" + url.Values{"tenant": {tenant}}.Encode()
	// A caller that leaves while the owner hangs is answered by no one,
	// and its leaving is no error of the service's.
	x.sick.Store(hanging)
	leaving, leave := context.WithTimeout(context.Background(), forwardTimeout/3)
	req, _ := http.NewRequestWithContext(leaving, "GET", a.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+operator)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("a caller that left was answered %s", res.Status)
	}
	leave()
	for deadline := time.Now().Add(5 * time.Second); len(a.metric(`pal_http_requests_total{code="499"`)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a counts no question whose caller left: %q", a.metric("pal_http_requests_total"))
		}
	}
	if got := a.metric("pal_store_errors_total"); len(got) != 1 || !strings.HasSuffix(got[0], " 0") || len(a.metric(`pal_forward_seconds_count{outcome="here"}`)) != 0 {
		t.Fatalf("a caller that left counts as %q and %q", got, a.metric(`pal_forward_seconds_count{outcome="here"}`))
	}
	for i, sick := range []struct {
		name string
		make func()
	}{
		{"hanging", func() { x.sick.Store(hanging) }},
		{"loading", func() { x.sick.Store(unready) }},
		{"down", func() { x.hs.Close() }},
	} {
		sick.make()
		// a waits for the owner its forward timeout at most, twice: the
		// owner, and the owner again once the leases are read again; the
		// next question, it does not wait for that owner at all. It does
		// not fold the tenant: it says to ask again, and by when.
		for k, wait := range []time.Duration{4 * forwardTimeout, forwardTimeout / 2} {
			asked := time.Now()
			status, body, by := a.ask(path, operator, nil)
			if status != http.StatusServiceUnavailable || by != "a" || !strings.Contains(body, `"Unavailable"`) {
				t.Fatalf("with %s %s, %s asked of a: %d, answered by %q:\n%s\nwant Unavailable", x.id, sick.name, tenant, status, by, body)
			}
			if took := time.Since(asked); took > wait {
				t.Errorf("with %s %s, question %d: a answered after %s", x.id, sick.name, k+1, took)
			}
		}
		if got := a.metric(`pal_forward_seconds_count{outcome="here"}`); len(got) != 1 || !strings.HasSuffix(got[0], fmt.Sprintf(" %d", 2*(i+1))) {
			t.Fatalf("a's metrics with %s %s: %q, want %d questions answered here", x.id, sick.name, got, 2*(i+1))
		}
		// Once the silence is over, a asks x again.
		time.Sleep(5 * forwardTimeout)
	}

	// x gives its buckets back as it stops; y takes them before a's next
	// round: a asks x, which is gone, reads the leases again and asks y.
	stopped, stop := context.WithCancel(context.Background())
	stop()
	x.lease.Run(stopped, func(error) {})
	rounds(t, 1, y)
	if err := server.Share(context.Background(), y.srv); err != nil {
		t.Fatal(err)
	}
	if r, _ := y.lease.Route(tenant); r.Owner != y.id {
		t.Fatalf("%s did not take %s's bucket %d (owner now %q): choose another tenant", y.id, tenant, r.Bucket, r.Owner)
	}
	if status, body, by := a.ask(path, operator, nil); status != http.StatusOK || by != y.id || body != answers[tenant] {
		t.Fatalf("with %s's buckets taken by %s, %s asked of a: %d, answered by %q:\n%s", x.id, y.id, tenant, status, by, body)
	}
	if got := a.metric(`pal_forward_seconds_count{outcome="rerouted"}`); len(got) != 1 || !strings.HasSuffix(got[0], " 1") {
		t.Fatalf("a's metrics: %q, want one question rerouted", got)
	}
}

// TestAnyProcessesGiveTheAnswersOfTheLog delivers random logs over one to
// four processes on one database, each batch to a process chosen at
// random, while processes pause past their leases or leave and come back.
// Every process then answers as one service given the exported log, and as
// `pal` on it and on the deliveries.
func TestAnyProcessesGiveTheAnswersOfTheLog(t *testing.T) {
	for seed := range uint64(4) {
		n := 1 + int(seed)
		log, name := attributiontest.RandomLog(seed, 300), "random"
		if seed == 2 {
			log, name = attributiontest.RandomAzureLog(seed, 300), "azure"
		}
		t.Run(fmt.Sprintf("%d-processes/%s-%d", n, name, seed), func(t *testing.T) {
			db := pgtest.Database(t)
			rng := rand.New(rand.NewPCG(seed, 23))
			c := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			var ps []*process
			for i := range n {
				ps = append(ps, startProcess(t, db, fmt.Sprintf("p%d", i), c, server.Config{SnapshotEvery: 100}))
			}
			rounds(t, 3, ps...)
			operator := ps[0].token(store.RoleOperator, "", "", "")
			losses := 0
			next := func() *service {
				switch rng.IntN(10) {
				case 0:
					// One process pauses past its leases: the others take
					// its buckets; it finds them gone when it wakes.
					paused := ps[rng.IntN(n)]
					c.Add(11 * time.Second)
					for _, p := range ps {
						if p != paused {
							rounds(t, 2, p)
						}
					}
					rounds(t, 2, ps...)
					losses++
				case 1:
					// One leaves, giving its buckets back, and comes back at
					// the next round.
					stopped, stop := context.WithCancel(context.Background())
					stop()
					ps[rng.IntN(n)].lease.Run(stopped, func(error) {})
					rounds(t, 2, ps...)
					losses++
				}
				return ps[rng.IntN(n)].service
			}
			delivered := deliver(t, next, operator, rng, attributiontest.ShuffleKeepingTies(rng, log))
			if n > 1 && losses == 0 {
				t.Fatal("no lease was lost: the test would prove little")
			}
			forwarded := answerAsTheLog(t, ps, operator, delivered, rng)
			if n > 1 && forwarded == 0 {
				t.Fatal("no question went to another process: the test would prove little")
			}
		})
	}
}

// answerAsTheLog checks that every process, once each followed the others,
// answers as pal does on the deliveries and on any process's /v1/log, and
// that its feed gives the timeline; it returns how many questions went to
// another process.
func answerAsTheLog(t *testing.T, ps []*process, operator string, delivered []*event.Event, rng *rand.Rand) int {
	t.Helper()
	n := len(ps)
	// Each process follows the others once, as it does every
	// second, so that the feed is filed up to the log's end.
	for _, p := range ps {
		if err := server.Share(context.Background(), p.srv); err != nil {
			t.Fatal(err)
		}
	}

	opts := attribution.DefaultOptions()
	want := foldLog(t, delivered, opts)
	exported := ps[rng.IntN(n)].exportedLog(operator)
	if diff := gocmp.Diff(want, foldLog(t, exported, opts)); diff != "" {
		t.Fatalf("pal on /v1/log differs from pal on the deliveries (-deliveries +export):\n%s", diff)
	}
	one := start(t, sqliteStore(t), server.Config{})
	alone := one.token(store.RoleOperator, "", "", "")
	one.push(alone, ndjson(exported))
	if diff := gocmp.Diff(want, one.truth(t, alone, exported, want.Timeline)); diff != "" {
		t.Fatalf("one service given the exported log differs from pal (-pal +service):\n%s", diff)
	}
	forwarded := 0
	for _, p := range ps {
		// Each tenant's links, which its bucket's owner answers.
		for _, tenant := range tenantsOf(exported) {
			path := "/v1/links?" + url.Values{"tenant": {tenant}}.Encode()
			_, want, _ := one.ask(path, alone, nil)
			if status, got, by := p.ask(path, operator, nil); status != http.StatusOK || got != want {
				t.Fatalf("%s's links asked of %s, answered by %s: %d\n%s\nwant\n%s", tenant, p.id, by, status, got, want)
			}
		}
		if diff := gocmp.Diff(want, p.truth(t, operator, exported, want.Timeline)); diff != "" {
			t.Fatalf("process %s differs from pal on the log (-pal +process):\n%s", p.id, diff)
		}
		p.checkFeed(t, operator, want.Timeline)
		forwarded += len(p.metric(`pal_forward_seconds_count{outcome="owner"}`))
	}
	return forwarded
}

// TestALoadingProcessPassesQuestionsOn: a process still folding its log
// passes a question about a tenant another owns on to that owner, and
// answers 503 for the tenants it owns itself until it is done.
func TestALoadingProcessPassesQuestionsOn(t *testing.T) {
	db := pgtest.Database(t)
	c := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a := startProcess(t, db, "a", c, server.Config{})
	rounds(t, 2, a)
	operator := a.token(store.RoleOperator, "", "", "")
	lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
	a.push(operator, strings.Join(lines[:min(len(lines), 2000)], "\n"))
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	l := startProcess(t, db, "l", c, server.Config{LoadInBackground: true}, func(st store.Store) store.Store {
		return slowLog{Store: st, release: release}
	})
	rounds(t, 3, a, l)
	var ofA, ofL string
	for _, tenant := range tenantsOf(a.exportedLog(operator)) {
		if r, ok := a.lease.Route(tenant); ok && r.Owner == "a" && ofA == "" {
			ofA = tenant
		} else if ok && r.Owner == "l" && ofL == "" {
			ofL = tenant
		}
	}
	if ofA == "" || ofL == "" {
		t.Fatalf("the demo's tenants are not shared: %q of a, %q of l", ofA, ofL)
	}
	links := func(tenant string) string { return "/v1/links?" + url.Values{"tenant": {tenant}}.Encode() }
	if status, body, by := l.ask(links(ofA), operator, nil); status != http.StatusOK || by != "a" {
		t.Fatalf("%s, a's, asked of l while it loads: %d, answered by %q: %s", ofA, status, by, body)
	}
	if status, body, _ := l.ask(links(ofL), operator, nil); status != http.StatusServiceUnavailable || !strings.Contains(body, "folding its log") {
		t.Fatalf("%s, l's own, asked of l while it loads: %d %s, want 503", ofL, status, body)
	}
	if status, body, _ := l.ask("/v1/reports/monthly?month=2026-03", operator, nil); status != http.StatusServiceUnavailable {
		t.Fatalf("a report asked of l while it loads: %d %s, want 503", status, body)
	}
	close(release)
	if err := l.srv.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, want, _ := a.ask(links(ofL), operator, nil)
	if status, body, by := l.ask(links(ofL), operator, nil); status != http.StatusOK || by != "l" || body != want {
		t.Fatalf("%s asked of l once loaded: %d, answered by %q:\n%s\nwant\n%s", ofL, status, by, body, want)
	}
}

// TestFoldLagOfTheBuckets: each process tells, for each bucket it holds,
// the records of the bucket's tenants in the log that it has not folded;
// one that follows the others' writes folds them without being asked.
func TestFoldLagOfTheBuckets(t *testing.T) {
	db := pgtest.Database(t)
	c := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a := startProcess(t, db, "a", c, server.Config{})
	b := startProcess(t, db, "b", c, server.Config{})
	rounds(t, 3, a, b)
	operator := a.token(store.RoleOperator, "", "", "")
	// Records committed that no process folded yet: a write of the
	// service's asks the owners what became of its lines, so that they
	// fold them first; these are written into the log as it stands.
	lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
	var events []*event.Event
	for i, line := range lines[:min(len(lines), 1500)] {
		ev, rf := event.Decode([]byte(line), i+1)
		if rf != nil {
			t.Fatal(rf)
		}
		events = append(events, ev)
	}
	err := a.store.Write(context.Background(), func(w store.Writer) error {
		_, err := w.Append(context.Background(), events)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// What b has not folded, by the buckets it holds.
	want := map[string]int{}
	for _, ev := range a.exportedLog(operator) {
		if r, ok := b.lease.Route(ev.Tenant); ev.Tenant != "" && ok && r.Self {
			want[fmt.Sprintf(`pal_bucket_fold_lag_records{bucket="%d"}`, r.Bucket)]++
		}
	}
	if len(want) == 0 {
		t.Fatal("b holds none of the demo's tenants: the test would prove little")
	}
	lags := func(p *process) map[string]int {
		got := map[string]int{}
		for _, line := range p.metric("pal_bucket_fold_lag_records{") {
			name, value, _ := strings.Cut(line, " ")
			var n int
			fmt.Sscan(value, &n)
			got[name] = n
		}
		return got
	}
	held := len(b.lease.Held())
	for range 2 {
		got := lags(b)
		if len(got) != held {
			t.Fatalf("b tells the lag of %d buckets, holding %d: %v", len(got), held, got)
		}
		for name, n := range got {
			if n != want[name] {
				t.Fatalf("b's %s = %d, want %d, the records of its tenants that a wrote", name, n, want[name])
			}
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for _, p := range []*process{a, b} {
		go p.srv.Follow(ctx, 10*time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		behind := 0
		for _, p := range []*process{a, b} {
			for _, n := range lags(p) {
				behind += n
			}
		}
		if behind == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a and b, following, are still %d records behind", behind)
		}
	}
}

// TestAFailedWriteKeepsTheFeedWhole: a write of one process fails after it
// folded its records; its state, folded again from the snapshot another
// process took of its own tenants, is told again what it owns, and the
// feed of both, applied in order, still gives every history.
func TestAFailedWriteKeepsTheFeedWhole(t *testing.T) {
	db := pgtest.Database(t)
	c := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var failing *failingCommits
	p0 := startProcess(t, db, "p0", c, server.Config{SnapshotEvery: 120}, func(s store.Store) store.Store {
		failing = &failingCommits{Store: s}
		return failing
	})
	p1 := startProcess(t, db, "p1", c, server.Config{SnapshotEvery: 50})
	rounds(t, 3, p0, p1)
	operator := p0.token(store.RoleOperator, "", "", "")
	lines := strings.Split(strings.TrimSpace(ndjson(attributiontest.RandomLog(1, 600))), "\n")
	ctx := context.Background()
	share := func() {
		for _, p := range []*process{p0, p1} {
			if err := server.Share(ctx, p.srv); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 300; i += 50 {
		p := []*process{p0, p1}[i/50%2]
		p.push(operator, strings.Join(lines[i:i+50], "\n"))
		share()
	}
	failing.fail.Store(true)
	if status, body := p0.call("POST", "/v1/events", operator, strings.Join(lines[300:350], "\n")); status == http.StatusOK {
		t.Fatalf("the write that fails: %d %s", status, body)
	}
	failing.fail.Store(false)
	for i := 350; i < 500; i += 50 {
		if status, body := p0.call("POST", "/v1/events", operator, strings.Join(lines[i:i+50], "\n")); status != http.StatusOK {
			t.Fatalf("a write after the failed one: %d %s", status, body)
		}
		share()
	}
	want := foldLog(t, p1.exportedLog(operator), attribution.DefaultOptions())
	for _, p := range []*process{p0, p1} {
		p.checkFeed(t, operator, want.Timeline)
	}
}

// TestEveryProcessExportsWhatTheLogLeavesOfThePushes: with two processes
// each folding half the tenants, a pushed consumption record that a later
// record of the log replaces is left out of /v1/log whichever process is
// asked, its tenant's owner or not; the pushed records that stand are in
// every export, once, and every process exports the same lines.
func TestEveryProcessExportsWhatTheLogLeavesOfThePushes(t *testing.T) {
	db := pgtest.Database(t)
	c := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ps := []*process{startProcess(t, db, "p0", c, server.Config{}), startProcess(t, db, "p1", c, server.Config{})}
	rounds(t, 3, ps...)
	// A tenant of each process.
	var tenants []string
	for _, p := range ps {
		held := p.lease.Held()
		for i := 0; ; i++ {
			tn := fmt.Sprintf("tenant-%d", i)
			if _, ok := held[store.Bucket(tn, testBuckets)]; ok {
				tenants = append(tenants, tn)
				break
			}
		}
	}
	operator := ps[0].token(store.RoleOperator, "", "", "")
	const vm = "/subscriptions/s1/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1"
	consumption := func(tn, at, date, cost string) string {
		return fmt.Sprintf(`{"type":"azure.consumption","time":"%sT00:00:00Z","tenant":"%s","resource":"%s","date":"%s","cost":%s,"meter":"standard"}`+"\n", at, tn, vm, date, cost)
	}
	var early, late strings.Builder
	var pushed []usage.Consumption
	for _, tn := range tenants {
		early.WriteString(consumption(tn, "2026-01-10", "2026-01-01", "1"))
		// Pushed at the log's present, the 10th: the 2nd's record is
		// replaced by the log's of the 15th, the 3rd's stands.
		pushed = append(pushed, usage.Consumption{Tenant: tn, Resource: vm, Date: "2026-01-02", Cost: 2, Meter: "standard"},
			usage.Consumption{Tenant: tn, Resource: vm, Date: "2026-01-03", Cost: 3, Meter: "standard"})
		late.WriteString(consumption(tn, "2026-01-15", "2026-01-02", "4"))
	}
	ps[0].push(operator, early.String())
	if status, body := ps[1].call("POST", "/v1/consumption", operator, consumptionFile(t, pushed...)); status != http.StatusOK {
		t.Fatalf("POST /v1/consumption: %d %s", status, body)
	}
	ps[1].push(operator, late.String())
	for _, p := range ps {
		if err := server.Share(context.Background(), p.srv); err != nil {
			t.Fatal(err)
		}
	}
	var exports []string
	for _, p := range ps {
		var lines []string
		for _, ev := range p.exportedLog(operator) {
			lines = append(lines, string(ev.AppendJSON(nil)))
		}
		slices.Sort(lines)
		for _, tn := range tenants {
			replaced := fmt.Sprintf(`"tenant":"%s","resource":"%s","date":"2026-01-02","cost":2,`, tn, vm)
			stands := fmt.Sprintf(`"tenant":"%s","resource":"%s","date":"2026-01-03","cost":3,`, tn, vm)
			if n := countContaining(lines, replaced); n != 0 {
				t.Errorf("%s's export holds the pushed record of %s that the log replaces:\n%s", p.id, tn, strings.Join(lines, "\n"))
			}
			if n := countContaining(lines, stands); n != 1 {
				t.Errorf("%s's export holds the pushed record of %s that stands %d times, want once:\n%s", p.id, tn, n, strings.Join(lines, "\n"))
			}
		}
		exports = append(exports, strings.Join(lines, "\n"))
	}
	if exports[0] != exports[1] {
		t.Errorf("the processes export different logs:\n%s\n\n%s", exports[0], exports[1])
	}
}

// countContaining counts the lines that contain s.
func countContaining(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// TestProcessesWritingAtOnceGiveTheAnswersOfTheLog: three processes take
// random logs' batches from four clients at once, each batch of one
// tenant's lines or of several, each process asking the others what
// became of their tenants' lines while they write; then the log is every
// line once, and every process answers as pal does on it, its feed giving
// the timeline. The Azure logs' tenants read each other's accounts
// (Lighthouse).
func TestProcessesWritingAtOnceGiveTheAnswersOfTheLog(t *testing.T) {
	for seed := range uint64(3) {
		log, name := attributiontest.RandomLog(seed, 300), "random"
		if seed > 0 {
			log, name = attributiontest.RandomAzureLog(seed, 300), "azure"
		}
		t.Run(fmt.Sprintf("%s-%d", name, seed), func(t *testing.T) {
			db := pgtest.Database(t)
			rng := rand.New(rand.NewPCG(seed, 29))
			c := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			var ps []*process
			for i := range 3 {
				ps = append(ps, startProcess(t, db, fmt.Sprintf("p%d", i), c, server.Config{}))
			}
			rounds(t, 3, ps...)
			operator := ps[0].token(store.RoleOperator, "", "", "")
			// The directory first, as partners register before their
			// customers link them; then batches of the rest, half of them
			// of one tenant.
			var dir, rest []*event.Event
			for _, ev := range attributiontest.ShuffleKeepingTies(rng, log) {
				if ev.Tenant == "" {
					dir = append(dir, ev)
				} else {
					rest = append(rest, ev)
				}
			}
			ps[0].push(operator, ndjson(dir))
			var batches [][]*event.Event
			for i := 0; i < len(rest); {
				n, end := 1+rng.IntN(20), min(i+1+rng.IntN(20), len(rest))
				if rng.IntN(2) == 0 {
					// One tenant's lines that come in a row.
					for end = i + 1; end < len(rest) && end-i < n && rest[end].Tenant == rest[i].Tenant; end++ {
					}
				}
				batches = append(batches, rest[i:end])
				i = end
			}
			var wg sync.WaitGroup
			next := make(chan []*event.Event)
			for client := range 4 {
				wg.Go(func() {
					for batch := range next {
						if res := ps[(client+len(batch))%len(ps)].push(operator, ndjson(batch)); len(res.Refused) > 0 {
							t.Errorf("a line was refused by the line checks: %+v", res.Refused)
						}
					}
				})
			}
			for _, b := range batches {
				next <- b
			}
			close(next)
			wg.Wait()
			if t.Failed() {
				return
			}
			// Lines of one instant may be stored in another order than
			// they were cut in: the log is what was stored, every line
			// delivered once (a line whose id came before is a duplicate,
			// and links pushed are stored as imported).
			lines := func(evs []*event.Event) []string {
				ids := map[string]bool{}
				var out []string
				for _, ev := range evs {
					if ev.ID != "" && ids[ev.ID] {
						continue
					}
					ids[ev.ID] = true
					e := *ev
					e.Imported = false
					out = append(out, string(e.AppendJSON(nil)))
				}
				slices.Sort(out)
				return out
			}
			stored := ps[0].exportedLog(operator)
			if !slices.Equal(lines(stored), lines(slices.Concat(append([][]*event.Event{dir}, batches...)...))) {
				t.Fatal("the log stored is not the lines delivered, each once")
			}
			answerAsTheLog(t, ps, operator, stored, rng)
		})
	}
}

// cutFollowing fails the ScanFollowing call numbered failAt after it is
// armed (1 = the first): a catch-up cut short after its first chunk.
type cutFollowing struct {
	store.Store
	calls  atomic.Int32
	failAt atomic.Int32
	failed atomic.Int32
}

func (c *cutFollowing) ScanFollowing(ctx context.Context, after int64, f store.Following, fn func(store.Record) error) (int64, error) {
	if at := c.failAt.Load(); at > 0 {
		if c.calls.Add(1) == at {
			c.failAt.Store(0)
			c.failed.Add(1)
			return 0, errors.New("the connection was lost")
		}
	}
	return c.Store.ScanFollowing(ctx, after, f, fn)
}

// TestACatchUpCutShortKeepsTheFeedWhole: an owner whose catch-up of
// another process's writes is cut short after its first chunk keeps what
// it folded, and still files the changes of that chunk: every process's
// feed gives the timeline.
func TestACatchUpCutShortKeepsTheFeedWhole(t *testing.T) {
	db := pgtest.Database(t)
	c := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	victimCut := &cutFollowing{}
	writer := startProcess(t, db, "w", c, server.Config{})
	victim := startProcess(t, db, "v", c, server.Config{FoldChunk: 3}, func(s store.Store) store.Store {
		victimCut.Store = s
		return victimCut
	})
	rounds(t, 3, writer, victim)
	var tenant string
	for i := 0; ; i++ {
		tenant = fmt.Sprintf("tenant-%d", i)
		if _, ok := victim.lease.Held()[store.Bucket(tenant, testBuckets)]; ok {
			break
		}
	}
	operator := writer.token(store.RoleOperator, "", "", "")
	ctx := context.Background()
	share := func() {
		for _, p := range []*process{writer, victim} {
			if err := server.Share(ctx, p.srv); err != nil {
				t.Fatal(err)
			}
		}
	}
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	next := func() string { day = day.Add(time.Hour); return day.Format(time.RFC3339) }
	writer.push(operator, strings.Join([]string{
		`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"A","locations":["100011"]}`,
		`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"200001","name":"B","locations":["200011"]}`,
		fmt.Sprintf(`{"type":"environment.created","time":%q,"tenant":%q,"environment":"e1","env_type":"production"}`, next(), tenant),
		fmt.Sprintf(`{"type":"account.created","time":%q,"tenant":%q,"account":"a1","kind":"user"}`, next(), tenant),
		fmt.Sprintf(`{"type":"account.created","time":%q,"tenant":%q,"account":"a2","kind":"user"}`, next(), tenant),
		fmt.Sprintf(`{"type":"pal.linked","time":%q,"tenant":%q,"account":"a1","partner":"100011"}`, next(), tenant),
		fmt.Sprintf(`{"type":"pal.linked","time":%q,"tenant":%q,"account":"a2","partner":"200011"}`, next(), tenant),
	}, "\n"))
	share()
	for b := range 5 {
		var lines []string
		for i := range 3 {
			r := fmt.Sprintf("r%d-%d", b, i)
			lines = append(lines,
				fmt.Sprintf(`{"type":"resource.created","time":%q,"tenant":%q,"environment":"e1","resource":%q,"kind":"canvas_app","owner":"a1"}`, next(), tenant, r),
				fmt.Sprintf(`{"type":"resource.owner_changed","time":%q,"tenant":%q,"resource":%q,"owner":"a2"}`, next(), tenant, r))
		}
		// The owner's next catch-up is cut short after its first chunk.
		victimCut.calls.Store(0)
		victimCut.failAt.Store(2)
		writer.push(operator, strings.Join(lines, "\n"))
		if victimCut.failAt.Load() != 0 {
			// Cut short, as a reader gone or a connection lost.
			_ = server.Share(ctx, victim.srv)
		}
		victimCut.failAt.Store(0)
		share()
	}
	if victimCut.failed.Load() == 0 {
		t.Fatal("no catch-up was cut short")
	}
	want := foldLog(t, victim.exportedLog(operator), attribution.DefaultOptions())
	for _, p := range []*process{writer, victim} {
		p.checkFeed(t, operator, want.Timeline)
	}
}

// storedWhileListed is a process's store that, the first time the tenants
// are listed once armed, stores lines in the log right after listing them,
// as another process writing at that moment does, then runs then.
type storedWhileListed struct {
	*postgres.Store
	mu    sync.Mutex
	lines []*event.Event
	then  func()
	// failSince makes the next listing of the tenants since a record fail.
	failSince bool
}

var errListing = errors.New("the listing of the tenants was cut short")

func (s *storedWhileListed) Tenants(ctx context.Context, buckets []int, after int64) ([]string, error) {
	s.mu.Lock()
	fail := s.failSince && after > 0
	s.failSince = s.failSince && !fail
	s.mu.Unlock()
	if fail {
		return nil, errListing
	}
	all, err := s.Store.Tenants(ctx, buckets, after)
	s.mu.Lock()
	lines := s.lines
	s.lines = nil
	s.mu.Unlock()
	if err == nil && len(lines) > 0 {
		err = s.Write(ctx, func(w store.Writer) error {
			_, err := w.Append(ctx, lines)
			return err
		})
		s.then()
	}
	return all, err
}

// twoSharing starts two processes sharing the buckets, a, whose store is
// returned, and b, which the test clock lets stop past its lease.
func twoSharing(t *testing.T) (*process, *storedWhileListed, *leasetest.Clock) {
	db := pgtest.Database(t)
	c := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var st *storedWhileListed
	a := startProcess(t, db, "a", c, server.Config{}, func(s store.Store) store.Store {
		st = &storedWhileListed{Store: s.(*postgres.Store)}
		return st
	})
	b := startProcess(t, db, "b", c, server.Config{})
	rounds(t, 3, a, b)
	return a, st, c
}

// TestATenantStoredAsItsBucketIsTakenIsGained: a tenant whose first lines
// are stored between the moment a process taking its bucket lists the
// bucket's tenants and the moment it owns them is folded by that process
// all the same: it answers as pal on the log.
func TestATenantStoredAsItsBucketIsTakenIsGained(t *testing.T) {
	a, late, c := twoSharing(t)
	operator := a.token(store.RoleOperator, "", "", "")

	lines := func(tenant string) string {
		return fmt.Sprintf(`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":%[1]q,"environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":%[1]q,"account":"alice","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":%[1]q,"account":"alice","partner":"100011"}
{"type":"resource.created","time":"2026-01-02T00:00:00Z","tenant":%[1]q,"environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}
{"type":"usage","time":"2026-01-03T10:00:00Z","id":"use-%[1]s","tenant":%[1]q,"resource":"app1","user":"u1"}
`, tenant)
	}
	parse := func(log string) []*event.Event {
		var out []*event.Event
		if err := event.NewReader(strings.NewReader(log)).Each(func(ev *event.Event, rf *event.Refusal) error {
			if rf != nil {
				t.Fatalf("line %d: %s", rf.Line, rf.Message)
			}
			out = append(out, ev)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A tenant in each process's buckets, and one more, not yet stored,
	// in b's.
	known := `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}` + "\n"
	var newcomer string
	for k, mine := 0, map[string]bool{}; newcomer == ""; k++ {
		tenant := fmt.Sprintf("t%d", k)
		_, byA := a.lease.Held()[store.Bucket(tenant, testBuckets)]
		switch {
		case !mine[fmt.Sprint(byA)]:
			mine[fmt.Sprint(byA)] = true
			known += lines(tenant)
		case !byA && len(mine) == 2:
			newcomer = tenant
		}
	}
	a.push(operator, known)
	delivered := append(parse(known), parse(lines(newcomer))...)

	// b stops past its lease; a takes its buckets, and as it lists their
	// tenants, the newcomer's lines are stored.
	late.mu.Lock()
	late.lines = parse(lines(newcomer))
	// A reader meanwhile folds the log past them, the bucket not yet a's.
	late.then = func() {
		if err := server.CatchUp(context.Background(), a.srv); err != nil {
			t.Error(err)
		}
	}
	late.mu.Unlock()
	c.Add(11 * time.Second)
	rounds(t, 2, a)
	if len(a.lease.Held()) != testBuckets {
		t.Fatalf("a holds %d buckets, want all %d", len(a.lease.Held()), testBuckets)
	}
	a.push(operator, `{"type":"usage","time":"2026-01-04T10:00:00Z","id":"use-last","tenant":"t0","resource":"app1","user":"u2"}`)
	delivered = append(delivered, parse(`{"type":"usage","time":"2026-01-04T10:00:00Z","id":"use-last","tenant":"t0","resource":"app1","user":"u2"}`+"\n")...)
	late.mu.Lock()
	armed := len(late.lines) > 0
	late.mu.Unlock()
	if armed {
		t.Fatal("a never listed the tenants of the buckets it took: the test proves nothing")
	}
	answerAsTheLog(t, []*process{a}, operator, delivered, rand.New(rand.NewPCG(1, 2)))
}

// TestATakeoverCutShortKeepsTheState: when the tenants of the buckets
// taken cannot be listed again, the state is as it was: it is not folded
// again from the snapshot, and the next write takes the buckets.
func TestATakeoverCutShortKeepsTheState(t *testing.T) {
	a, st, c := twoSharing(t)
	operator := a.token(store.RoleOperator, "", "", "")
	lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
	a.push(operator, strings.Join(lines[:300], "\n"))
	// b stops past its lease, and a takes its buckets.
	c.Add(11 * time.Second)
	rounds(t, 2, a)
	st.mu.Lock()
	st.failSince = true
	st.mu.Unlock()
	if status, _ := a.call("POST", "/v1/events", operator, strings.Join(lines[300:350], "\n")); status == http.StatusOK {
		t.Fatal("a write whose takeover failed was answered 200")
	}
	if st.failSince {
		t.Fatal("the tenants were not listed again: the test would prove little")
	}
	if server.Stale(a.srv) {
		t.Error("a takeover cut short marked the state stale: it would be folded again from the snapshot")
	}
	a.push(operator, strings.Join(lines[300:400], "\n"))
	var delivered []*event.Event
	for i, line := range lines[:400] {
		ev, rf := event.Decode([]byte(line), i+1)
		if rf != nil {
			t.Fatal(rf)
		}
		delivered = append(delivered, ev)
	}
	answerAsTheLog(t, []*process{a}, operator, delivered, rand.New(rand.NewPCG(3, 4)))
}
