package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

// TestTwoReplicasOneDatabase runs two services on one database, writes
// through both at once, and reads the same answers from both.
func TestTwoReplicasOneDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		a := start(t, open(t), server.Config{SnapshotEvery: 500})
		b := start(t, open(t), server.Config{SnapshotEvery: 500})
		operator := a.token(store.RoleOperator, "", "", "")
		lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
		// The control events go first, through a; then both replicas take
		// the usage at once, each batch sent twice, once through each.
		a.push(operator, strings.Join(lines[:200], "\n"))
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted, duplicates := 0, 0
		for r, s := range []*service{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 200; i < len(lines); i += 300 {
					batch := strings.Join(lines[i:min(i+300, len(lines))], "\n")
					var res ingest
					if status := s.json("POST", "/v1/events", operator, batch, &res); status != http.StatusOK || len(res.Refused) > 0 {
						t.Errorf("replica %d: %d %+v", r, status, res.Refused)
						return
					}
					mu.Lock()
					accepted += res.Accepted
					duplicates += res.Duplicates
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if want := len(lines) - 200; accepted != want || duplicates != want {
			t.Errorf("accepted %d and duplicates %d, want %d each: every event exactly once", accepted, duplicates, want)
		}

		// Links made through either replica land once each, in one order.
		admin := a.token(store.RoleTenantAdmin, "contoso", "", "")
		var created strings.Builder
		for i := range 6 {
			fmt.Fprintf(&created, `{"type":"account.created","time":"2026-04-01T00:00:00Z","tenant":"contoso","account":"acct%d","kind":"guest"}`+"\n", i)
		}
		a.push(admin, created.String())
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := []*service{a, b}[i%2]
				tok := s.token(store.RoleAccount, "contoso", fmt.Sprintf("acct%d", i), "")
				if status, body := s.call("PUT", "/providers/Microsoft.ManagementPartner/partners/2000011", tok, ""); status != 200 {
					t.Errorf("link of acct%d: %d %s", i, status, body)
				}
			}()
		}
		wg.Wait()

		if ga, gb := answers(t, a, operator), answers(t, b, operator); ga != gb {
			t.Errorf("the replicas answer differently:\n%s\nand\n%s", ga, gb)
		}
		_, logA := a.call("GET", "/v1/log", operator, "")
		_, logB := b.call("GET", "/v1/log", operator, "")
		if string(logA) != string(logB) {
			t.Error("the replicas export different logs")
		}
		seen := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(string(logA)), "\n") {
			if i := strings.Index(line, `"id":"`); i >= 0 {
				id := line[i+6:]
				seen[id[:strings.IndexByte(id, '"')]]++
			}
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("event %s is in the log %d times", id, n)
			}
		}
		if len(seen) != len(lines) {
			t.Errorf("%d distinct ids in the log, want %d", len(seen), len(lines))
		}
	})
}
