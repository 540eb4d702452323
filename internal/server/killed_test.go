package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/store/sqlite"
)

// TestConnectionsKilledDuringWrites: while two replicas on one PostgreSQL
// take writes, every connection they hold is killed, four times a second
// (pg_terminate_backend). A request that fails is sent again, as a client
// does; then every line is in the log once, and both replicas answer as a
// service given the exported log does.
func TestConnectionsKilledDuringWrites(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	// The replicas' connections carry a name of their own, so that only
	// they are killed, not those of the tests beside this one.
	name := "pal-killed-" + strings.TrimPrefix(u.Query().Get("search_path"), "pal_test_")
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	open := func() store.Store {
		st, err := postgres.Open(ctx, u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a := start(t, open(), server.Config{SnapshotEvery: 300})
	b := start(t, open(), server.Config{SnapshotEvery: 300})
	operator := a.token(store.RoleOperator, "", "", "")
	lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
	lines = lines[:min(len(lines), 3000)]

	killer, err := pgx.Connect(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	var killed atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); <-stopped }) }
	defer halt()
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			var n int64
			if err := killer.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name = $1 AND pid <> pg_backend_pid()) k`, name).Scan(&n); err == nil {
				killed.Add(n)
			}
		}
	}()

	// Batches go to one replica then the other, each sent again until
	// it is answered.
	failed := 0
	for i, k := 0, 0; i < len(lines); i, k = i+50, k+1 {
		batch := strings.Join(lines[i:min(i+50, len(lines))], "\n")
		first := time.Now()
		for attempt := 0; ; attempt++ {
			s := []*service{a, b}[(k+attempt)%2]
			status, refused, err := post(s.url, operator, batch)
			if err == nil && status == http.StatusOK {
				if refused > 0 {
					t.Fatalf("batch at line %d: %d lines refused", i+1, refused)
				}
				break
			}
			failed++
			if time.Since(first) > time.Minute {
				t.Fatalf("batch at line %d: not taken in a minute, %d attempts; the last: %d %v", i+1, attempt+1, status, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	halt()
	if killed.Load() == 0 {
		t.Fatal("no connection was killed: the test tested nothing")
	}
	t.Logf("%d connections killed, %d requests sent again", killed.Load(), failed)

	// A connection killed while it waited in a replica's pool fails the
	// request that takes it next: a client asks again.
	for _, s := range []*service{a, b} {
		for ok, attempt := 0, 0; ok < 8; attempt++ {
			if attempt == 50 {
				t.Fatal("a replica still fails its requests after 50")
			}
			if status, _ := s.call("GET", "/v1/attribution", operator, ""); status == http.StatusOK {
				ok++
			}
		}
	}
	status, log := a.call("GET", "/v1/log", operator, "")
	if status != http.StatusOK {
		t.Fatalf("GET /v1/log: %d %s", status, log)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		var ev struct{ ID string }
		if err := json.Unmarshal([]byte(line), &ev); err == nil && ev.ID != "" {
			seen[ev.ID]++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s is in the log %d times", id, n)
		}
	}
	if len(seen) != len(lines) {
		t.Errorf("%d distinct events in the log, want %d: acknowledged lines were lost", len(seen), len(lines))
	}
	fresh := start(t, sqliteStore(t), server.Config{})
	fresh.push(fresh.token(store.RoleOperator, "", "", ""), string(log))
	want := answers(t, fresh, fresh.token(store.RoleOperator, "", "", ""))
	for r, s := range []*service{a, b} {
		if got := answers(t, s, operator); got != want {
			gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					path := ""
					for j := i; j >= 0 && path == ""; j-- {
						if strings.HasPrefix(gl[j], "/v1/") {
							path = gl[j]
						}
					}
					from := max(0, i-12)
					t.Errorf("replica %d answers %s otherwise than the exported log, at line %d:\n%s\nwant\n%s", r, path, i,
						strings.Join(gl[from:min(len(gl), i+12)], "\n"), strings.Join(wl[from:min(len(wl), i+12)], "\n"))
					break
				}
			}
		}
	}
}

// post sends a batch of events and returns the status and how many lines
// were refused, or the error of a request that got no answer.
func post(base, token, batch string) (int, int, error) {
	req, err := http.NewRequest("POST", base+"/v1/events", strings.NewReader(batch))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var res ingest
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return 0, 0, err
		}
	}
	return resp.StatusCode, len(res.Refused), nil
}

// failingCommits is a store whose writes, while fail is set, run their
// function, then during when set, and then fail, as a commit does whose
// connection is lost: the function saw its appends, the log did not take
// them.
type failingCommits struct {
	store.Store
	fail   atomic.Bool
	during func()
}

func (f *failingCommits) Write(ctx context.Context, fn func(store.Writer) error) error {
	if !f.fail.Load() {
		return f.Store.Write(ctx, fn)
	}
	return f.Store.Write(ctx, func(w store.Writer) error {
		if err := fn(w); err != nil {
			return err
		}
		if f.during != nil {
			f.during()
		}
		return errors.New("the connection was lost at the commit")
	})
}

// TestNoSnapshotOfAFailedWrite: a write whose commit fails leaves the state
// folded with records the log does not hold; no snapshot keeps them, and a
// service started again from the store answers as the log does.
func TestNoSnapshotOfAFailedWrite(t *testing.T) {
	ctx := context.Background()
	st := &failingCommits{Store: sqliteStore(t)}
	s := start(t, st, server.Config{SnapshotEvery: 1})
	operator := s.token(store.RoleOperator, "", "", "")
	lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
	s.push(operator, strings.Join(lines[:300], "\n"))
	st.fail.Store(true)
	if status, _ := s.call("POST", "/v1/events", operator, strings.Join(lines[300:400], "\n")); status == http.StatusOK {
		t.Fatal("a write whose commit failed was answered 200")
	}
	if err := s.srv.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	last, err := st.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq, _, err := st.LoadSnapshot(ctx); err != nil || seq > last {
		t.Fatalf("a snapshot after record %d (%v), but the log ends at %d: it keeps a write the log did not take", seq, err, last)
	}
	st.fail.Store(false)
	again := start(t, st, server.Config{})
	if got, want := answers(t, again, operator), answers(t, s, operator); got != want {
		t.Error("a service started again from the store answers otherwise than the one that wrote")
	}
}

// scansFrom is a store that notes where each scan of the log starts.
type scansFrom struct {
	store.Store
	mu     sync.Mutex
	afters []int64
}

func (s *scansFrom) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	s.mu.Lock()
	s.afters = append(s.afters, after)
	s.mu.Unlock()
	return s.Store.Scan(ctx, after, fn)
}

// during returns where the scans of the log that fn asks start.
func (s *scansFrom) during(fn func()) []int64 {
	s.mu.Lock()
	s.afters = nil
	s.mu.Unlock()
	fn()
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.afters)
}

// TestAFailedWriteRecoversFromTheSnapshot: after a write whose commit
// failed, the state folds the log again from the latest snapshot, not
// from its first record, and answers as the log does.
func TestAFailedWriteRecoversFromTheSnapshot(t *testing.T) {
	ctx := context.Background()
	failing := &failingCommits{Store: sqliteStore(t)}
	st := &scansFrom{Store: failing}
	s := start(t, st, server.Config{SnapshotEvery: 100})
	operator := s.token(store.RoleOperator, "", "", "")
	lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
	s.push(operator, strings.Join(lines[:350], "\n"))
	snapshot, _, err := st.LoadSnapshot(ctx)
	if err != nil || snapshot == 0 {
		t.Fatalf("no snapshot after 350 records (%d, %v): the test would prove little", snapshot, err)
	}
	failing.fail.Store(true)
	if status, _ := s.call("POST", "/v1/events", operator, strings.Join(lines[350:450], "\n")); status == http.StatusOK {
		t.Fatal("a write whose commit failed was answered 200")
	}
	failing.fail.Store(false)
	var got string
	afters := st.during(func() { got = answers(t, s, operator) })
	if len(afters) == 0 || slices.Min(afters) < snapshot {
		t.Fatalf("after the failed write, the log was scanned from %v, not from the snapshot after record %d", afters, snapshot)
	}
	fresh := start(t, sqliteStore(t), server.Config{})
	freshOperator := fresh.token(store.RoleOperator, "", "", "")
	fresh.push(freshOperator, ndjson(s.exportedLog(operator)))
	if want := answers(t, fresh, freshOperator); got != want {
		t.Errorf("the service that recovered answers\n%s\nwhere one given its log answers\n%s", got, want)
	}
}

// TestNoSnapshotDuringAWrite: a snapshot asked for while a group of writes
// is between its fold and its commit (the one taken as the service stops,
// whose caller may have left) waits for the commit; when the commit fails
// it keeps nothing of the write. Another service on the store, whose own
// write fails, then starts again from the snapshot, and both answer as a
// service given their log does, though the log gave the failed write's
// numbers to other records.
func TestNoSnapshotDuringAWrite(t *testing.T) {
	ctx := context.Background()
	st := &failingCommits{Store: sqliteStore(t)}
	a := start(t, st, server.Config{SnapshotEvery: 1 << 30})
	b := start(t, st, server.Config{SnapshotEvery: 1 << 30})
	operator := a.token(store.RoleOperator, "", "", "")
	lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
	a.push(operator, strings.Join(lines[:300], "\n"))
	answers(t, b, operator)

	snapshotted := make(chan error, 1)
	st.during = func() {
		go func() { snapshotted <- a.srv.Snapshot(ctx) }()
		time.Sleep(200 * time.Millisecond)
	}
	st.fail.Store(true)
	if status, _ := a.call("POST", "/v1/events", operator, strings.Join(lines[300:400], "\n")); status == http.StatusOK {
		t.Fatal("a write whose commit failed was answered 200")
	}
	if err := <-snapshotted; err != nil {
		t.Fatal(err)
	}
	st.during = nil
	last, err := st.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq, _, err := st.LoadSnapshot(ctx); err == nil && seq > last {
		t.Fatalf("a snapshot after record %d, but the log ends at %d: it keeps the write that failed", seq, last)
	}
	if status, _ := b.call("POST", "/v1/events", operator, lines[400]); status == http.StatusOK {
		t.Fatal("b's write whose commit failed was answered 200")
	}
	st.fail.Store(false)
	a.push(operator, strings.Join(lines[450:550], "\n"))

	fresh := start(t, sqliteStore(t), server.Config{})
	freshOperator := fresh.token(store.RoleOperator, "", "", "")
	fresh.push(freshOperator, ndjson(a.exportedLog(operator)))
	want := answers(t, fresh, freshOperator)
	for name, s := range map[string]*service{"a": a, "b": b} {
		if got := answers(t, s, operator); got != want {
			t.Errorf("%s answers otherwise than a service given its log", name)
		}
	}
}

// failingScans is a store whose scans of the log fail while fail is set,
// as a reader's do when it goes away or its connection is lost.
type failingScans struct {
	scansFrom
	fail atomic.Bool
}

func (f *failingScans) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	if f.fail.Load() {
		return context.Canceled
	}
	return f.scansFrom.Scan(ctx, after, fn)
}

// TestAReaderCutShortKeepsTheState: a reader whose catch-up with another
// replica's writes fails (it went away) leaves the state as it was, a fold
// of the log up to its last record: the next catch-up goes on from there,
// not again from the snapshot.
func TestAReaderCutShortKeepsTheState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pal.db")
	open := func() store.Store {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st := &failingScans{scansFrom: scansFrom{Store: open()}}
	reader := start(t, st, server.Config{})
	writer := start(t, open(), server.Config{SnapshotEvery: 300})
	operator := writer.token(store.RoleOperator, "", "", "")
	lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
	writer.push(operator, strings.Join(lines[:350], "\n"))
	answers(t, reader, operator)
	snapshot, _, err := st.LoadSnapshot(ctx)
	if err != nil || snapshot == 0 {
		t.Fatalf("no snapshot after 350 records (%d, %v): the test would prove little", snapshot, err)
	}
	// The reader folds more than the snapshot holds.
	writer.push(operator, strings.Join(lines[350:400], "\n"))
	answers(t, reader, operator)
	folded, err := st.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq, _, _ := st.LoadSnapshot(ctx); seq >= folded {
		t.Fatalf("a snapshot after record %d, where the reader folded %d: the test would prove little", seq, folded)
	}
	writer.push(operator, strings.Join(lines[400:450], "\n"))
	st.fail.Store(true)
	if status, _ := reader.call("GET", "/v1/attribution", operator, ""); status == http.StatusOK {
		t.Fatal("a reader whose catch-up failed was answered 200")
	}
	st.fail.Store(false)
	var got string
	afters := st.during(func() { got = answers(t, reader, operator) })
	if len(afters) == 0 || slices.Min(afters) < folded {
		t.Fatalf("after a reader's catch-up failed, the log was scanned from %v, not from the record %d the state had folded", afters, folded)
	}
	if want := answers(t, writer, operator); got != want {
		t.Errorf("the reader answers\n%s\nwhere the writer answers\n%s", got, want)
	}
}
