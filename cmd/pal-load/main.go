// Command pal-load measures the service under load on loopback: link
// writes per second with their p50 and p99 latency, and usage events
// ingested per second, on the store named by --db (an SQLite file or a
// postgres:// URL). It runs the real HTTP server in process and bounded
// client loops, and stops by itself.
//
//	go run ./cmd/pal-load --db /tmp/load.db --seconds 10
//	go run ./cmd/pal-load --db 'postgres://postgres@127.0.0.1:5432/test' --seconds 10
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/backend"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pal-load:", err)
		os.Exit(1)
	}
}

func run() error {
	db := flag.String("db", "", "the store: an SQLite file (created fresh) or a postgres:// URL of an empty schema")
	seconds := flag.Float64("seconds", 10, "how long each phase runs")
	clients := flag.Int("clients", 8, "concurrent clients")
	accounts := flag.Int("accounts", 200, "accounts that change their links")
	batch := flag.Int("batch", 500, "usage events a request")
	flag.Parse()
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
	srv, err := server.New(ctx, server.Config{Store: st, SnapshotEvery: 1 << 30})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients * 2}}

	issue := func(t store.Token) string {
		tok, err := server.IssueToken(ctx, st, t)
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
	if err := send(hc, "POST", base+"/v1/events", operator, seed.String()); err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	phase := time.Duration(*seconds * float64(time.Second))
	fmt.Printf("pal-load: %s, %d clients, %s a phase\n", strings.SplitN(*db, "?", 2)[0], *clients, phase)

	// Link writes: each client takes its share of the accounts and creates,
	// then changes, their links, one request at a time.
	perClient := max(1, *accounts / *clients)
	lat, elapsed := loop(*clients, phase, func(c, i int) error {
		acct := min(c+(*clients)*(i%perClient), *accounts-1)
		round := i / perClient
		method, id := "PATCH", []string{"100011", "100012"}[round%2]
		if round == 0 {
			method = "PUT"
		}
		return send(hc, method, base+"/providers/Microsoft.ManagementPartner/partners/"+id, tokens[acct], "")
	})
	slices.Sort(lat)
	fmt.Printf("link writes      %8.0f /s   p50 %6.2f ms   p99 %6.2f ms   (%d writes)\n",
		float64(len(lat))/elapsed.Seconds(), ms(quantile(lat, 0.50)), ms(quantile(lat, 0.99)), len(lat))

	// Usage: batches of usage events as they arrive, stamped from now on.
	admin := issue(store.Token{Role: store.RoleTenantAdmin, Tenant: "load"})
	now := time.Now().UTC()
	var mu sync.Mutex
	next := 0
	lat, elapsed = loop(*clients, phase, func(c, i int) error {
		mu.Lock()
		n := next
		next++
		mu.Unlock()
		var b strings.Builder
		at := now.Add(time.Duration(n) * time.Millisecond).Format(time.RFC3339Nano)
		for j := range *batch {
			fmt.Fprintf(&b, `{"type":"usage","time":%q,"tenant":"load","resource":"app%d","user":"u%d"}`+"\n", at, (n+j)%*accounts, (n*(*batch)+j)%50000)
		}
		return send(hc, "POST", base+"/v1/events", admin, b.String())
	})
	slices.Sort(lat)
	fmt.Printf("usage ingested   %8.0f /s   p50 %6.2f ms   p99 %6.2f ms a batch of %d   (%d events)\n",
		float64(len(lat)*(*batch))/elapsed.Seconds(), ms(quantile(lat, 0.50)), ms(quantile(lat, 0.99)), *batch, len(lat)*(*batch))
	return nil
}

// loop runs fn from n clients until d has passed, and returns the latency
// of every successful call and the time taken.
func loop(n int, d time.Duration, fn func(client, i int) error) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := fn(c, i); err != nil {
					fmt.Fprintln(os.Stderr, "pal-load:", err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, time.Since(start)
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
