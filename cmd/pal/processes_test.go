package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/palproject/pal/internal/store/postgres/pgtest"
)

// tenantsControl is the control log of the processes test: a partner, and
// in each of eight tenants an account of the partner's and an app it owns.
func tenantsControl() string {
	var b strings.Builder
	b.WriteString(`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}` + "\n")
	for k := range 8 {
		fmt.Fprintf(&b, `{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"t%d","environment":"prod","env_type":"production"}`+"\n", k)
		fmt.Fprintf(&b, `{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"t%d","account":"alice","kind":"guest"}`+"\n", k)
		fmt.Fprintf(&b, `{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t%d","account":"alice","partner":"100011"}`+"\n", k)
		fmt.Fprintf(&b, `{"type":"resource.created","time":"2026-01-02T00:00:00Z","tenant":"t%d","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}`+"\n", k)
	}
	return b.String()
}

// health is what a process says of itself on /healthz.
type health struct {
	Status  string
	Buckets []int
}

func healthOf(url string) (health, error) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		return health{}, err
	}
	defer resp.Body.Close()
	var h health
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// waitShared waits until the processes at urls hold their fair shares of
// the buckets, each bucket once.
func waitShared(t *testing.T, buckets int, urls ...string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		seen := map[int]int{}
		fair := true
		for _, u := range urls {
			h, err := healthOf(u)
			share := buckets / len(urls)
			fair = fair && err == nil && (len(h.Buckets) == share || len(h.Buckets) == share+1)
			for _, b := range h.Buckets {
				seen[b]++
			}
		}
		once := len(seen) == buckets
		for _, n := range seen {
			once = once && n == 1
		}
		if fair && once {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s, the processes hold %v of %d buckets", seen, buckets)
		}
	}
}

// stored posts one line, and reports whether the service says it is
// stored: accepted, held or a duplicate of one stored before.
func stored(c *http.Client, url, tok, line string) bool {
	req, _ := http.NewRequest("POST", url+"/v1/events", strings.NewReader(line))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var res struct {
		Accepted, Duplicates int
		Held                 []json.RawMessage
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&res) != nil {
		return false
	}
	return res.Accepted+res.Duplicates+len(res.Held) == 1
}

// TestThreeProcessesLoseNothing: three processes with 16 buckets on one
// PostgreSQL database share the writes of four clients, while one is
// killed and another is stopped past its lease, then let go. Every line
// acknowledged is stored once, and each process left answers as pal on
// the exported log, its questions about one tenant by the tenant's owner.
func TestThreeProcessesLoseNothing(t *testing.T) {
	db := pgtest.Database(t)
	const leaseFor = 2 * time.Second
	flags := []string{"--buckets", "16", "--lease", leaseFor.String()}
	var cmds []*exec.Cmd
	var urls []string
	for range 3 {
		cmd, url := serve(t, db, flags...)
		cmds, urls = append(cmds, cmd), append(urls, url)
	}
	tok := token(t, db)
	if n, err := post(urls[0], tok, tenantsControl()); err != nil || n != 33 {
		t.Fatalf("control events: %d accepted, %v", n, err)
	}
	waitShared(t, 16, urls...)

	var mu sync.Mutex
	acked := map[string]bool{}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A client keeps to a process while it answers, as behind a
			// load balancer; it gives it two seconds, then moves on to
			// the next.
			c := &http.Client{Timeout: 2 * time.Second}
			to := g
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("use-%d-%d", g, i)
				line := fmt.Sprintf(`{"type":"usage","time":"2026-01-%02dT10:00:00Z","id":%q,"tenant":"t%d","resource":"app1","user":"u%d"}`, 3+i%25, id, i%8, i%50)
				for ; ctx.Err() == nil; to++ {
					if stored(c, urls[to%3], tok, line) {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
						break
					}
				}
			}
		}()
	}
	waitCount := func(n int) {
		for deadline := time.Now().Add(60 * time.Second); count() < n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("after a minute, %d lines acknowledged, want %d", count(), n)
			}
		}
	}
	waitCount(150)
	if err := cmds[1].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmds[1].Wait()
	waitCount(300)
	// Stopped for three leases: the others take its buckets meanwhile.
	if err := cmds[2].Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := count()
	time.Sleep(3 * leaseFor)
	during := count() - stoppedAt
	if err := cmds[2].Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitCount(count() + 150)
	stop()
	wg.Wait()
	t.Logf("%d lines acknowledged; %d of them while a process was stopped", count(), during)
	// The stopped process may hold the log's lock; its sessions are ended
	// once its lease expired, a third of the stop. Without that, the
	// others wait for it, and acknowledge one line or none meanwhile.
	if during < 50 {
		t.Errorf("%d lines acknowledged while a process was stopped for three leases: the others waited for it", during)
	}

	live := []string{urls[0], urls[2]}
	waitShared(t, 16, live...)
	// Each reads where the buckets went at its next round: a process
	// answers itself what it asks no owner for until then.
	time.Sleep(leaseFor)
	log := string(get(t, urls[0], tok, "/v1/log"))
	storedOnce(t, log, acked)
	for _, url := range live {
		if other := string(get(t, url, tok, "/v1/log")); other != log {
			t.Errorf("%s exports another log", url)
		}
		answersAsPalOnItsLog(t, url, tok)
	}
	// Each tenant's questions, asked of either process, are answered by
	// the tenant's owner, the same.
	for k := range 8 {
		path := fmt.Sprintf("/v1/timeline?tenant=t%d&resource=app1", k)
		var answers, by []string
		for _, url := range live {
			body, process := getAs(t, url, tok, path)
			answers, by = append(answers, string(body)), append(by, process)
		}
		if answers[0] != answers[1] || by[0] != by[1] || by[0] == "" {
			t.Errorf("t%d's timeline: answered by %q and %q\n%s\n%s", k, by[0], by[1], answers[0], answers[1])
		}
	}
}
