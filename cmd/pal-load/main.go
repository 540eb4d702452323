package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/palproject/pal/internal/lease"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/backend"
	"github.com/palproject/pal/internal/usage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pal-load:", err)
		os.Exit(1)
	}
}

func run() error {
	db := flag.String("db", "", "the store: an SQLite file (created fresh) or a postgres:// URL of an empty schema")
	seconds := flag.Float64("seconds", 10, "how long each timed phase runs")
	clients := flag.Int("clients", 8, "concurrent clients")
	accounts := flag.Int("accounts", 200, "accounts that change their links")
	batch := flag.Int("batch", 1000, "usage events a request")
	usageEvents := flag.Int("usage-events", 1_000_000, "usage events pushed before the late events of a small tenant")
	tenants := flag.Int("tenants", 1000, "tenants the usage events are spread over")
	late := flag.Int("late", 200, "late control events pushed into a small tenant, one a request")
	large := flag.Int("large", 200_000, "usage events of one large tenant, whose late events refold it while the small tenants write (0: no such phase)")
	consumption := flag.Int("consumption", 2_000_000, "Azure consumption records pushed as Parquet files to POST /v1/consumption, a million a file")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (and, with --processes, each serving process's to FILE.pN)")
	coldStart := flag.Bool("cold-start", false, "only fold the store's whole log as a service starting without a usable snapshot, and print the time and the peak and held resident memory (pal-load runs itself so at the end)")
	processes := flag.Int("processes", 1, "with more than one, serve from that many processes on the one database (PostgreSQL), the clients spread over them, and measure the link writes and the usage ingest only, by process and in total")
	serveOnly := flag.Bool("serve", false, "only serve the store on a loopback port, printed, until standard input closes (pal-load runs itself so for --processes)")
	flag.Parse()
	if *coldStart {
		return coldStartOf(*db)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *serveOnly {
		return serveStore(*db)
	}
	if *db == "" {
		return errors.New("--db is required")
	}
	ctx := context.Background()
	st, err := backend.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	if last, err := st.LastSeq(ctx); err != nil || last > 0 {
		return fmt.Errorf("the store must be empty (it has %d records, %v)", last, err)
	}
	// The processes that serve: this one, or --processes children.
	var bases []string
	var pids []int
	if *processes > 1 {
		for i := range *processes {
			// Each serving process profiles itself beside this one.
			var args []string
			if *cpuProfile != "" {
				args = []string{"--cpuprofile", fmt.Sprintf("%s.p%d", *cpuProfile, i)}
			}
			pid, addr, stop, err := startServer(*db, args...)
			if err != nil {
				return err
			}
			defer stop()
			pids = append(pids, pid)
			bases = append(bases, "http://"+addr)
		}
	} else {
		addr, stop, err := listen(ctx, st)
		if err != nil {
			return err
		}
		defer stop()
		bases = append(bases, "http://"+addr)
	}
	if len(bases) > 1 {
		// The processes share the buckets before anything is measured:
		// until then, a bucket changing hands has no owner to answer.
		if err := waitShared(bases, lease.DefaultBuckets); err != nil {
			return err
		}
	}
	base := bases[0]
	// Client c sends to process c mod --processes.
	baseOf := func(c int) string { return bases[c%len(bases)] }
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients * 2}}

	issue := func(t store.Token) string {
		tok, _, err := server.IssueToken(ctx, st, t)
		if err != nil {
			panic(err)
		}
		return tok
	}
	operator := issue(store.Token{Role: store.RoleOperator})
	var seed strings.Builder
	seed.WriteString(`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011","100012"]}` + "\n")
	seed.WriteString(`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"load","environment":"prod","env_type":"production"}` + "\n")
	tokens := make([]string, *accounts)
	for i := range *accounts {
		fmt.Fprintf(&seed, `{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"load","account":"a%d","kind":"guest"}`+"\n", i)
		fmt.Fprintf(&seed, `{"type":"resource.created","time":"2026-01-01T00:00:01Z","tenant":"load","environment":"prod","resource":"app%d","kind":"canvas_app","owner":"a%d"}`+"\n", i, i)
		tokens[i] = issue(store.Token{Role: store.RoleAccount, Tenant: "load", Account: fmt.Sprintf("a%d", i)})
	}
	// The other tenants, each with an owner linked to Fabrikam and five
	// apps; and a small tenant for the late events.
	for t := range *tenants {
		fmt.Fprintf(&seed, `{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"t%d","environment":"prod","env_type":"production"}`+"\n", t)
		fmt.Fprintf(&seed, `{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"t%d","account":"maker","kind":"guest"}`+"\n", t)
		fmt.Fprintf(&seed, `{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t%d","account":"maker","partner":"100011"}`+"\n", t)
		for r := range 5 {
			fmt.Fprintf(&seed, `{"type":"resource.created","time":"2026-01-01T00:00:01Z","tenant":"t%d","environment":"prod","resource":"app%d","kind":"canvas_app","owner":"maker"}`+"\n", t, r)
		}
	}
	seed.WriteString(`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"small","environment":"prod","env_type":"production"}` + "\n")
	for a := range 5 {
		fmt.Fprintf(&seed, `{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"small","account":"s%d","kind":"guest"}`+"\n", a)
		fmt.Fprintf(&seed, `{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"small","account":"s%d","partner":"10001%d"}`+"\n", a, 1+a%2)
		fmt.Fprintf(&seed, `{"type":"resource.created","time":"2026-01-01T00:00:01Z","tenant":"small","environment":"prod","resource":"sapp%d","kind":"canvas_app","owner":"s%d"}`+"\n", a, a)
	}
	for i := range 40 {
		fmt.Fprintf(&seed, `{"type":"usage","time":"2026-01-20T00:00:%02dZ","tenant":"small","resource":"sapp%d","user":"u%d"}`+"\n", i, i%5, i)
	}
	if err := send(hc, "POST", base+"/v1/events", operator, seed.String()); err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	phase := time.Duration(*seconds * float64(time.Second))
	fmt.Printf("pal-load: %s, %d clients, %s a timed phase\n", strings.SplitN(*db, "?", 2)[0], *clients, phase)

	// Link writes: each client takes its share of the accounts and creates,
	// then changes, their links, one request at a time.
	perClient := max(1, *accounts / *clients)
	byClient, elapsed := loopByClient(*clients, phase, func(c, i int) error {
		acct := min(c+(*clients)*(i%perClient), *accounts-1)
		round := i / perClient
		method, id := "PATCH", []string{"100011", "100012"}[round%2]
		if round == 0 {
			method = "PUT"
		}
		return send(hc, method, baseOf(c)+"/providers/Microsoft.ManagementPartner/partners/"+id, tokens[acct], "")
	})
	reportByProcess("link writes", byClient, len(bases), elapsed, 1)

	// Usage: batches of usage events as they arrive, stamped from now on,
	// spread over the tenants, until usage-events were pushed.
	now := time.Now().UTC()
	var mu sync.Mutex
	next := 0
	usageBatch := func() (string, bool) {
		mu.Lock()
		n := next
		next++
		mu.Unlock()
		if n*(*batch) >= *usageEvents {
			return "", false
		}
		var b strings.Builder
		at := now.Add(time.Duration(n) * time.Millisecond).Format(time.RFC3339Nano)
		for j := range *batch {
			k := n*(*batch) + j
			fmt.Fprintf(&b, `{"type":"usage","time":%q,"tenant":"t%d","resource":"app%d","user":"u%d"}`+"\n", at, k%*tenants, (k/(*tenants))%5, k%50000)
		}
		return b.String(), true
	}
	byClient, elapsed = loopByClient(*clients, 24*time.Hour, func(c, i int) error {
		body, ok := usageBatch()
		if !ok {
			return errDone
		}
		return send(hc, "POST", baseOf(c)+"/v1/events", operator, body)
	})
	reportByProcess(fmt.Sprintf("usage, batches of %d", *batch), byClient, len(bases), elapsed, *batch)
	// Small tenants' writes, one event a request, spread over the
	// processes as the other phases', while a large tenant takes late
	// events, each of which folds it again.
	largeTenant := func(baseOf func(c int) string) error {
		if *large == 0 {
			return nil
		}
		var b strings.Builder
		b.WriteString(`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"large","environment":"prod","env_type":"production"}` + "\n")
		b.WriteString(`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"large","account":"maker","kind":"guest"}` + "\n")
		b.WriteString(`{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"large","account":"maker","partner":"100011"}` + "\n")
		for r := range 5 {
			fmt.Fprintf(&b, `{"type":"resource.created","time":"2026-01-01T00:00:01Z","tenant":"large","environment":"prod","resource":"app%d","kind":"canvas_app","owner":"maker"}`+"\n", r)
		}
		if err := send(hc, "POST", base+"/v1/events", operator, b.String()); err != nil {
			return err
		}
		for first := 0; first < *large; first += *batch {
			b.Reset()
			for k := first; k < min(*large, first+*batch); k++ {
				fmt.Fprintf(&b, `{"type":"usage","time":%q,"tenant":"large","resource":"app%d","user":"u%d"}`+"\n", now.Add(time.Duration(k)*time.Millisecond).Format(time.RFC3339Nano), k%5, k%50000)
			}
			if err := send(hc, "POST", base+"/v1/events", operator, b.String()); err != nil {
				return err
			}
		}
		// A late activity moves no credit: the refold reads the tenant's
		// few records that make its state. A late link of the owner to the
		// organisation's other location moves the credit of every
		// resource: their uses are counted again.
		lates := []struct {
			name string
			line func(i int) string
		}{
			{"credit stays", func(i int) string {
				return fmt.Sprintf(`{"type":"resource.activity","time":"2026-01-02T%02d:%02d:%02dZ","tenant":"large","resource":"app%d","account":"maker","action":"edit"}`, i/3600%24, i/60%60, i%60, i%5)
			}},
			{"credit moves", func(i int) string {
				return fmt.Sprintf(`{"type":"pal.linked","time":"2026-01-02T%02d:%02d:%02dZ","tenant":"large","account":"maker","partner":%q}`, i/3600%24, i/60%60, i%60, []string{"100012", "100011"}[i%2])
			}},
		}
		for _, late := range lates {
			refolding, stopRefolds := context.WithCancel(ctx)
			var refolds []time.Duration
			refoldsDone := make(chan error, 1)
			go func() {
				for i := 0; refolding.Err() == nil; i++ {
					t0 := time.Now()
					if err := send(hc, "POST", base+"/v1/events", operator, late.line(i)); err != nil {
						refoldsDone <- err
						return
					}
					refolds = append(refolds, time.Since(t0))
				}
				refoldsDone <- nil
			}()
			lat, elapsed := loop(*clients, phase, func(c, i int) error {
				k := i*(*clients) + c
				ev := fmt.Sprintf(`{"type":"usage","time":%q,"tenant":"t%d","resource":"app%d","user":"v%d"}`, now.Add(time.Hour).Format(time.RFC3339Nano), k%*tenants, k%5, k)
				return send(hc, "POST", baseOf(c)+"/v1/events", operator, ev)
			})
			stopRefolds()
			if err := <-refoldsDone; err != nil {
				return err
			}
			report("small tenants' writes, "+late.name, lat, elapsed, 1)
			report(fmt.Sprintf("  large tenant refolds (%d events)", *large), refolds, elapsed, 1)
		}
		return nil
	}
	if len(pids) > 0 {
		// Questions about one tenant, each answered by the owner of the
		// tenant's bucket: by the process asked, or forwarded.
		here, forwarded, elapsed, err := oneTenantQuestions(hc, bases, *clients, *tenants, operator, phase)
		if err != nil {
			return err
		}
		all := append(slices.Clone(here), forwarded...)
		report("one-tenant questions", all, elapsed, 1)
		report("  answered where asked", here, elapsed, 1)
		report("  forwarded to the owner", forwarded, elapsed, 1)
		// Each process's memory, then a large tenant's refolds; the other
		// phases measure one process.
		for i, pid := range pids {
			fmt.Printf("%-24s %8.0f MiB resident, peak %.0f MiB\n", fmt.Sprintf("process %d of %d", i+1, len(pids)),
				procStatusOf(pid, "VmRSS:")/(1<<20), procStatusOf(pid, "VmHWM:")/(1<<20))
		}
		return largeTenant(baseOf)
	}
	runtime.GC()
	fmt.Printf("%-24s %8.0f MiB resident after %d usage events (heap in use %.0f MiB)\n", "memory", rss()/(1<<20), *usageEvents, heapInUse()/(1<<20))

	// Consumption files: a million daily costs a file, of 100,000 Azure
	// resources spread over the tenants, one day after another.
	if *consumption > 0 {
		files, err := consumptionFiles(*consumption, *tenants)
		if err != nil {
			return err
		}
		lat, elapsed := loop(1, 24*time.Hour, func(_, i int) error {
			if i >= len(files) {
				return errDone
			}
			return send(hc, "POST", base+"/v1/consumption", operator, files[i])
		})
		report("consumption files", lat, elapsed, consumptionFileRows)
		// What the service holds, the files gone and freed memory given
		// back to the system.
		files = nil
		debug.FreeOSMemory()
		fmt.Printf("%-24s %8.0f MiB resident after %d consumption records (heap in use %.0f MiB, peak %.0f MiB)\n", "memory", rss()/(1<<20), *consumption, heapInUse()/(1<<20), procStatus("VmHWM:")/(1<<20))
	}

	// Reads while usage is ingested at full speed: a tenant administrator
	// of a small tenant reads its attribution and an explanation; and, as
	// a reader that reads no state, /healthz.
	small := issue(store.Token{Role: store.RoleTenantAdmin, Tenant: "small"})
	*usageEvents += 1 << 30
	reading, stopReading := context.WithCancel(ctx)
	var stateLat, healthLat []time.Duration
	var readers sync.WaitGroup
	for r := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			path := []string{"/v1/attribution", "/v1/explain?tenant=small&resource=sapp1", "/healthz"}[r]
			var mine []time.Duration
			for reading.Err() == nil {
				t0 := time.Now()
				if err := send(hc, "GET", base+path, small, ""); err != nil {
					fmt.Fprintln(os.Stderr, "pal-load:", err)
					return
				}
				mine = append(mine, time.Since(t0))
				time.Sleep(5 * time.Millisecond)
			}
			mu.Lock()
			if path == "/healthz" {
				healthLat = append(healthLat, mine...)
			} else {
				stateLat = append(stateLat, mine...)
			}
			mu.Unlock()
		}()
	}
	lat, elapsed := loop(*clients, phase, func(c, i int) error {
		body, _ := usageBatch()
		return send(hc, "POST", base+"/v1/events", operator, body)
	})
	stopReading()
	readers.Wait()
	report("usage, with readers", lat, elapsed, *batch)
	report("reads during usage", stateLat, elapsed, 1)
	report("/healthz during usage", healthLat, elapsed, 1)
	q, err := drainWait(hc, base, 0.99)
	if err != nil {
		return err
	}
	fmt.Printf("%-24s p99 <= %.2f ms (pal_state_drain_seconds, the whole run; readers never wait)\n", "writers wait for readers", q*1000)

	// Late control events in the small tenant, one a request: each is
	// earlier than the tenant's usage, so the tenant is folded again.
	lateEvent := func(i int) string {
		return fmt.Sprintf(`{"type":"resource.activity","time":"2026-01-02T%02d:%02d:%02dZ","tenant":"small","resource":"sapp%d","account":"s%d","action":"edit"}`, i/3600%24, i/60%60, i%60, i%5, i%5)
	}
	var lates []time.Duration
	start := time.Now()
	for i := range *late {
		t0 := time.Now()
		if err := send(hc, "POST", base+"/v1/events", small, lateEvent(i)); err != nil {
			return err
		}
		lates = append(lates, time.Since(t0))
	}
	report("late events, small tenant", lates, time.Since(start), 1)

	// The same, without pause, while the other tenants' usage is ingested:
	// the flood costs its own tenant, and the others' writes share only
	// the commits.
	flooding, stopFlood := context.WithCancel(ctx)
	var flood []time.Duration
	floodDone := make(chan error, 1)
	go func() {
		for i := *late; flooding.Err() == nil; i++ {
			t0 := time.Now()
			if err := send(hc, "POST", base+"/v1/events", small, lateEvent(i)); err != nil {
				floodDone <- err
				return
			}
			flood = append(flood, time.Since(t0))
		}
		floodDone <- nil
	}()
	lat, elapsed = loop(*clients, phase, func(c, i int) error {
		body, _ := usageBatch()
		return send(hc, "POST", base+"/v1/events", operator, body)
	})
	stopFlood()
	if err := <-floodDone; err != nil {
		return err
	}
	report("usage, with a late flood", lat, elapsed, *batch)
	report("the late flood", flood, elapsed, 1)

	if err := largeTenant(baseOf); err != nil {
		return err
	}

	// A cold start of the same store, in a process of its own, so that
	// its peak memory is its own.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cold := exec.Command(self, "--cold-start", "--db", *db)
	cold.Stdout, cold.Stderr = os.Stdout, os.Stderr
	return cold.Run()
}

// consumptionFileRows is how many records a consumption file holds.
const consumptionFileRows = 1_000_000

// consumptionFiles writes n daily costs as Parquet consumption files of
// consumptionFileRows rows: 100,000 resources spread over the tenants,
// each costing something every day from 2026-01-01 on.
func consumptionFiles(n, tenants int) ([]string, error) {
	const resources = 100_000
	day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var files []string
	for first := 0; first < n; first += consumptionFileRows {
		var buf bytes.Buffer
		w := usage.NewConsumptionWriter(&buf)
		for k := first; k < min(n, first+consumptionFileRows); k++ {
			r := k % resources
			t := r % tenants
			err := w.Write(usage.Consumption{Tenant: fmt.Sprintf("t%d", t),
				Resource: fmt.Sprintf("/subscriptions/%08d-0000-4000-8000-000000000000/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm%d", t, r),
				Date:     day0.AddDate(0, 0, k/resources).Format(time.DateOnly), Cost: float64(1+k%997) / 100, Meter: "standard"})
			if err != nil {
				return nil, err
			}
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		files = append(files, buf.String())
	}
	return files, nil
}

// coldStartOf folds the whole log of a store as a service does when its
// snapshot does not fit (the first start after an upgrade), and prints how
// long it took, the peak resident memory and what the state then holds.
func coldStartOf(db string) error {
	ctx := context.Background()
	st, err := backend.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	last, err := st.LastSeq(ctx)
	if err != nil {
		return err
	}
	if err := st.SaveSnapshot(ctx, last, []byte("a snapshot of another version")); err != nil {
		return err
	}
	start := time.Now()
	srv, err := server.New(ctx, server.Config{Store: st, SnapshotEvery: 1 << 30})
	if err != nil {
		return err
	}
	took := time.Since(start)
	debug.FreeOSMemory()
	peak, held := procStatus("VmHWM:"), procStatus("VmRSS:")
	fmt.Printf("%-24s %8.1f s   %d records, peak %.0f MiB resident, %.0f MiB held after (%.2fx; heap in use %.0f MiB)\n",
		"cold start", took.Seconds(), last, peak/(1<<20), held/(1<<20), peak/held, heapInUse()/(1<<20))
	runtime.KeepAlive(srv)
	return nil
}

// errDone ends a client's loop.
var errDone = errors.New("done")

// report prints the rate, p50 and p99 of a phase's requests, each of n
// events.
func report(name string, lat []time.Duration, elapsed time.Duration, n int) {
	slices.Sort(lat)
	fmt.Printf("%-24s %8.0f /s   p50 %7.2f ms   p99 %7.2f ms   (%d requests)\n",
		name, float64(len(lat)*n)/elapsed.Seconds(), ms(quantile(lat, 0.50)), ms(quantile(lat, 0.99)), len(lat))
}

// drainWait reads the service's histogram of the time writers wait for
// readers to leave a copy of the state, and returns the upper bound of the
// bucket that holds quantile q.
func drainWait(hc *http.Client, base string, q float64) (float64, error) {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("read /metrics: %w", err)
	}
	family := families["pal_state_drain_seconds"]
	if family == nil || len(family.GetMetric()) == 0 {
		return 0, errors.New("/metrics has no pal_state_drain_seconds")
	}
	h := family.GetMetric()[0].GetHistogram()
	for _, b := range h.GetBucket() {
		if float64(b.GetCumulativeCount()) >= q*float64(h.GetSampleCount()) {
			return b.GetUpperBound(), nil
		}
	}
	return math.Inf(1), nil
}

// rss is the resident memory of this process.
func rss() float64 { return procStatus("VmRSS:") }

// procStatusOf is a memory figure of another process.
func procStatusOf(pid int, field string) float64 {
	return procStatusFile(fmt.Sprintf("/proc/%d/status", pid), field)
}

// procStatus is a memory figure of this process (VmRSS:, VmHWM: the peak),
// in bytes, from /proc.
func procStatus(field string) float64 { return procStatusFile("/proc/self/status", field) }

func procStatusFile(path, field string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024
		}
	}
	return 0
}

func heapInUse() float64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse)
}

// loop runs fn from n clients until d has passed, and returns the latency
// of every successful call and the time taken.
func loop(n int, d time.Duration, fn func(client, i int) error) ([]time.Duration, time.Duration) {
	byClient, elapsed := loopByClient(n, d, fn)
	return slices.Concat(byClient...), elapsed
}

// loopByClient is loop, each client's latencies apart.
func loopByClient(n int, d time.Duration, fn func(client, i int) error) ([][]time.Duration, time.Duration) {
	byClient := make([][]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := fn(c, i); err != nil {
					if !errors.Is(err, errDone) {
						fmt.Fprintln(os.Stderr, "pal-load:", err)
					}
					break
				}
				byClient[c] = append(byClient[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return byClient, time.Since(start)
}

// reportByProcess reports a phase in total and, with several processes,
// each process's part: client c sends to process c mod processes.
func reportByProcess(name string, byClient [][]time.Duration, processes int, elapsed time.Duration, n int) {
	report(name, slices.Concat(byClient...), elapsed, n)
	if processes < 2 {
		return
	}
	for p := range processes {
		var mine []time.Duration
		for c := p; c < len(byClient); c += processes {
			mine = append(mine, byClient[c]...)
		}
		report(fmt.Sprintf("  process %d of %d", p+1, processes), mine, elapsed, n)
	}
}

func send(hc *http.Client, method, url, token, body string) error {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(data), `"code": "`) {
		return fmt.Errorf("%s %s: %s %s", method, url, resp.Status, data)
	}
	return nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// serveStore serves a store on a loopback port, which it prints, until
// standard input closes.
func serveStore(db string) error {
	ctx := context.Background()
	st, err := backend.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	addr, stop, err := listen(ctx, st)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Println(addr)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// listen serves a store on a loopback port, and returns its address and
// what stops it. On PostgreSQL the process shares the buckets of tenants
// with the others serving the store, as pal serve does.
func listen(ctx context.Context, st store.Store) (string, func(), error) {
	srv, err := server.New(ctx, server.Config{Store: st, SnapshotEvery: 1 << 30})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	stopLeasing := func() {}
	if b, ok := st.(store.Buckets); ok {
		n, err := b.SetBuckets(ctx, lease.DefaultBuckets)
		if err != nil {
			return "", nil, err
		}
		m := lease.New(b, n, lease.Options{ID: fmt.Sprintf("pal-load-%d", os.Getpid()), Addr: "http://" + addr, Lease: 10 * time.Second})
		srv.Own(m)
		if err := m.Tick(ctx); err != nil {
			return "", nil, err
		}
		stop := m.Start(func(err error) { fmt.Fprintln(os.Stderr, "pal-load: leases:", err) })
		following, stopFollowing := context.WithCancel(context.Background())
		go srv.Follow(following, time.Second)
		stopLeasing = func() {
			stopFollowing()
			stop()
		}
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	return addr, func() {
		hs.Close()
		stopLeasing()
	}, nil
}

// oneTenantQuestions asks, from every client, one tenant's links of the
// process the client sends to, each a tenant after the other, and returns
// the latencies of the questions its process answered itself and of those
// it forwarded to the owner of the tenant's bucket.
func oneTenantQuestions(hc *http.Client, bases []string, clients, tenants int, token string, d time.Duration) (here, forwarded []time.Duration, elapsed time.Duration, err error) {
	// Each process says who it is on every answer to a caller with a
	// token.
	ids := make([]string, len(bases))
	for i, base := range bases {
		req, err := http.NewRequest("GET", base+"/v1/me", nil)
		if err != nil {
			return nil, nil, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, 0, err
		}
		resp.Body.Close()
		ids[i] = resp.Header.Get("X-Pal-Process")
	}
	var mu sync.Mutex
	_, elapsed = loop(clients, d, func(c, i int) error {
		p := c % len(bases)
		req, err := http.NewRequest("GET", fmt.Sprintf("%s/v1/links?tenant=t%d", bases[p], (i*clients+c)%tenants), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(t0)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", req.URL, resp.Status)
		}
		mu.Lock()
		defer mu.Unlock()
		if by := resp.Header.Get("X-Pal-Process"); by == ids[p] {
			here = append(here, took)
		} else {
			forwarded = append(forwarded, took)
		}
		return nil
	})
	return here, forwarded, elapsed, nil
}

// startServer starts a process serving the store, and returns its process
// ID, its address, and what stops it.
func startServer(db string, args ...string) (pid int, addr string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, "", nil, err
	}
	cmd := exec.Command(self, append([]string{"--serve", "--db", db}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return 0, "", nil, err
	}
	stop = func() {
		stdin.Close()
		cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return 0, "", nil, fmt.Errorf("a serving process said nothing: %w", err)
	}
	return cmd.Process.Pid, strings.TrimSpace(line), stop, nil
}

// waitShared waits until the processes at bases hold their fair shares of
// the n buckets, each bucket once, as their /healthz say.
func waitShared(bases []string, n int) error {
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		held, fair := 0, true
		for _, base := range bases {
			var h struct{ Buckets []int }
			resp, err := hc.Get(base + "/healthz")
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&h)
				resp.Body.Close()
			}
			share := n / len(bases)
			fair = fair && err == nil && (len(h.Buckets) == share || len(h.Buckets) == share+1)
			held += len(h.Buckets)
		}
		if fair && held == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after two minutes, %d processes hold %d of %d buckets", len(bases), held, n)
		}
	}
}
