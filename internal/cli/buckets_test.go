package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/lease"
	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/store/sqlite"
)

// TestBucketsAreFixedOnce: the first pal serve of a PostgreSQL database
// fixes its buckets, a later one with another number is refused, naming
// the number fixed; SQLite refuses --buckets, saying why.
func TestBucketsAreFixedOnce(t *testing.T) {
	ctx := context.Background()
	pg, err := postgres.Open(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if n, err := setBuckets(ctx, pg, 16, true); err != nil || n != 16 {
		t.Fatalf("the first --buckets 16: %d, %v", n, err)
	}
	if n, err := setBuckets(ctx, pg, 16, true); err != nil || n != 16 {
		t.Fatalf("--buckets 16 again: %d, %v", n, err)
	}
	// Without --buckets, the number fixed; another given, a refusal.
	if n, err := setBuckets(ctx, pg, lease.DefaultBuckets, false); err != nil || n != 16 {
		t.Fatalf("no --buckets: %d, %v, want the 16 fixed", n, err)
	}
	_, err = setBuckets(ctx, pg, 64, true)
	if err == nil || !strings.Contains(err.Error(), "first served with 16 buckets") || !strings.Contains(err.Error(), "--buckets 16") {
		t.Fatalf("another number of buckets: %v, want a refusal naming 16", err)
	}
	leases, err := pg.Leases(ctx)
	if err != nil || len(leases) != 16 {
		t.Fatalf("%d leases (%v), want 16", len(leases), err)
	}

	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "pal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	if n, err := setBuckets(ctx, lite, 64, false); err != nil || n != 0 {
		t.Fatalf("SQLite without --buckets: %d, %v", n, err)
	}
	if _, err := setBuckets(ctx, lite, 64, true); err == nil || !strings.Contains(err.Error(), "one process") {
		t.Fatalf("SQLite with --buckets: %v, want a refusal saying why", err)
	}
}

// TestFlagsOfBucketsAreChecked: the flags of processes that share buckets,
// on SQLite or out of range, are refused before anything is served.
func TestFlagsOfBucketsAreChecked(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pal.db")
	for _, c := range []struct{ flags, says string }{
		{"--lease 5s", "one process"},
		{"--advertise http://10.0.0.1:8080", "one process"},
		{"--forward-timeout 1s", "one process"},
		{"--forward-timeout 0s", "positive duration"},
		{"--advertise 10.0.0.1:8080", "a scheme and a host"},
		{"--advertise http://10.0.0.1:8080/pal", "a scheme and a host"},
		{"--lease 100ms", "too short"},
	} {
		code, _, stderr := run(t, "", append([]string{"serve", "--db", file, "--addr", "127.0.0.1:0"}, strings.Fields(c.flags)...)...)
		if code != 2 || !strings.Contains(stderr, c.says) {
			t.Errorf("pal serve %s: exit %d, %q; want a refusal saying %q", c.flags, code, stderr, c.says)
		}
	}
}

// TestServesShareTheBuckets: pal serve processes on one PostgreSQL database
// share its buckets, each its share and none twice, and tell them on
// /healthz; one that stops gives its buckets back, and the other takes
// them at once.
func TestServesShareTheBuckets(t *testing.T) {
	db := pgtest.Database(t)
	const leaseFor = 3 * time.Second
	args := []string{"--db", db, "--addr", "127.0.0.1:0", "--buckets", "8", "--lease", leaseFor.String()}
	urlA, stopA := serveInBackground(t, args)
	urlB, stopB := serveInBackground(t, args)
	defer stopB()
	held := func(url string) []int {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var health struct {
			Status  string
			Buckets []int
		}
		if err := json.NewDecoder(resp.Body).Decode(&health); err != nil || health.Buckets == nil {
			t.Fatalf("/healthz of %s: %+v, %v; want the buckets held", url, health, err)
		}
		return health.Buckets
	}
	waitFor := func(what string, ok func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 10 s, %s: A holds %v, B %v", what, held(urlA), held(urlB))
			}
		}
	}
	waitFor("each holds 4 of the 8 buckets", func() bool {
		a, b := held(urlA), held(urlB)
		return len(a) == 4 && len(b) == 4 && len(slices.Compact(slices.Sorted(slices.Values(append(a, b...))))) == 8
	})
	stopA()
	start := time.Now()
	for deadline := start.Add(10 * time.Second); len(held(urlB)) < 8; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("10 s after A stopped, B holds %v", held(urlB))
		}
	}
	// A gave its buckets back: B took them at its next round, within a
	// third of a lease, not when A's leases expired, two thirds at least.
	if took := time.Since(start); took > leaseFor/2 {
		t.Errorf("B took A's buckets %s after A stopped: A did not give them back", took)
	}
}

// TestReachable: a process listening on every interface is advertised at
// this machine's name, one listening on an address at that address.
func TestReachable(t *testing.T) {
	name, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"127.0.0.1:8080":  "127.0.0.1:8080",
		"10.1.2.3:80":     "10.1.2.3:80",
		"0.0.0.0:8080":    net.JoinHostPort(name, "8080"),
		"[::]:8080":       net.JoinHostPort(name, "8080"),
		"[::1]:8080":      "[::1]:8080",
		"pal.example:443": "pal.example:443",
	} {
		if got := reachable(addr); got != want {
			t.Errorf("reachable(%q) = %q, want %q", addr, got, want)
		}
	}
}
