package lease_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/lease"
	"github.com/palproject/pal/internal/lease/leasetest"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/testskip"
)

const buckets = 16

// TestMain runs the child processes of TestStoppedOwnerIsFenced and
// TestFrozenWriteCommitsNothing when asked to, and says which tests were
// skipped, and why, after them.
func TestMain(m *testing.M) {
	for env, run := range map[string]func(string) error{"PAL_LEASE_CHILD": child, "PAL_WRITER_CHILD": writerChild} {
		if url := os.Getenv(env); url != "" {
			if err := run(url); err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	testskip.Main(m)
}

func open(t *testing.T) *postgres.Store {
	t.Helper()
	return openAt(t, pgtest.Database(t))
}

func openAt(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if n, err := s.SetBuckets(context.Background(), buckets); err != nil || n != buckets {
		t.Fatalf("SetBuckets: %d, %v", n, err)
	}
	return s
}

// owners checks that the managers hold every bucket once, and returns how
// many each holds.
func owners(t *testing.T, ms ...*lease.Manager) []int {
	t.Helper()
	seen := map[int]int{}
	var counts []int
	for i, m := range ms {
		held := m.Held()
		counts = append(counts, len(held))
		for b := range held {
			if j, ok := seen[b]; ok {
				t.Fatalf("bucket %d is held by managers %d and %d", b, j, i)
			}
			seen[b] = i
		}
	}
	if len(seen) != buckets {
		t.Fatalf("%d of %d buckets are held: %v", len(seen), buckets, counts)
	}
	return counts
}

func tick(t *testing.T, ms ...*lease.Manager) {
	t.Helper()
	for _, m := range ms {
		if err := m.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// managers returns the managers of processes with these IDs on one test
// clock, each reached at http://ID, with leases of 10 s, and the clock.
func managers(s store.Buckets, ids ...string) (ms []*lease.Manager, c *leasetest.Clock) {
	c = leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, id := range ids {
		ms = append(ms, lease.New(s, buckets, lease.Options{ID: id, Addr: "http://" + id, Lease: 10 * time.Second, Now: c.Now}))
	}
	return ms, c
}

// TestFairShares: processes that join share the buckets evenly, each
// bucket held by one, within two rounds.
func TestFairShares(t *testing.T) {
	s := open(t)
	ms, c := managers(s, "a", "b", "d")
	a, b, d := ms[0], ms[1], ms[2]
	tick(t, a)
	if got := owners(t, a); got[0] != buckets {
		t.Fatalf("alone, a holds %d buckets", got[0])
	}
	tick(t, b, a, b)
	if got := owners(t, a, b); got[0] != 8 || got[1] != 8 {
		t.Fatalf("two processes hold %v buckets", got)
	}
	tick(t, d, a, b, d)
	if got := owners(t, a, b, d); got[0] != 6 || got[1] != 5 || got[2] != 5 {
		t.Fatalf("three processes hold %v buckets", got)
	}
	// Renewals keep the shares as they are.
	for range 3 {
		c.Add(3 * time.Second)
		tick(t, a, b, d)
	}
	if got := owners(t, a, b, d); got[0] != 6 || got[1] != 5 || got[2] != 5 {
		t.Fatalf("after renewals, three processes hold %v buckets", got)
	}
}

// TestRoutesAreTheLeases: every process routes a tenant's questions to the
// one holding its bucket, at the address it joined with; a process that
// stopped is routed to until a round or a Reroute reads the leases again.
func TestRoutesAreTheLeases(t *testing.T) {
	s := open(t)
	ms, c := managers(s, "a", "b", "d")
	a, b, d := ms[0], ms[1], ms[2]
	if _, ok := a.Route("contoso"); ok {
		t.Fatal("a routes before any round read the leases")
	}
	// The shares settle in two rounds; a third reads where they settled.
	tick(t, a, b, d, a, b, d, a, b, d)
	owners(t, a, b, d)
	byID := map[string]*lease.Manager{"a": a, "b": b, "d": d}
	check := func(from ...*lease.Manager) {
		t.Helper()
		for i := range 200 {
			tenant := fmt.Sprintf("tenant-%d", i)
			bucket := store.Bucket(tenant, buckets)
			for _, m := range from {
				r, ok := m.Route(tenant)
				if !ok {
					t.Fatalf("%s has no route to %s", m.ID(), tenant)
				}
				owner := byID[r.Owner]
				if owner == nil || r.Bucket != bucket || r.Addr != "http://"+r.Owner || r.Self != (r.Owner == m.ID()) {
					t.Fatalf("%s routes %s (bucket %d) to %+v", m.ID(), tenant, bucket, r)
				}
				if _, held := owner.Held()[bucket]; !held {
					t.Fatalf("%s routes %s to %s, which does not hold bucket %d", m.ID(), tenant, r.Owner, bucket)
				}
			}
		}
	}
	check(a, b, d)

	// b stops and gives its buckets back; a and d take them. b's routes
	// are stale until it reads the leases again.
	ctx, stop := context.WithCancel(context.Background())
	stop()
	b.Run(ctx, func(error) {})
	delete(byID, "b")
	tick(t, a, d, a, d, a, d)
	owners(t, a, d)
	check(a, d)
	for i := range 200 {
		tenant := fmt.Sprintf("tenant-%d", i)
		r, ok, err := b.Reroute(context.Background(), tenant)
		if err != nil || !ok || r.Owner == "b" {
			t.Fatalf("b reroutes %s to %+v, %v, %v", tenant, r, ok, err)
		}
	}
	// Leases expired by the process's clock route nowhere: their owner
	// stopped renewing them.
	c.Add(11 * time.Second)
	if r, ok := a.Route("contoso"); ok {
		t.Fatalf("a routes to %+v after every lease expired", r)
	}
}

// TestGoneALeaseAfterExpiry: a member expired is no longer alive, but is
// forgotten, and its sessions ended, only once it expired before the time
// the caller gives: a process whose clock is ahead by less than that does
// not take a live one for gone.
func TestGoneALeaseAfterExpiry(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	const lease = 10 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	join := func(id string, now time.Time) ([]string, []string) {
		t.Helper()
		alive, gone, err := s.Join(ctx, store.Member{ID: id, Addr: "http://" + id, Expires: now.Add(lease)}, now, now.Add(-lease))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range alive {
			ids = append(ids, m.ID)
		}
		return ids, gone
	}
	join("late", t0)
	// Its lease runs to t0+10s. Another, its clock 15 s on, finds it
	// expired, not gone.
	if alive, gone := join("ahead", t0.Add(15*time.Second)); fmt.Sprint(alive) != "[ahead]" || len(gone) != 0 {
		t.Fatalf("15 s on: alive %v, gone %v; want late expired but not gone", alive, gone)
	}
	if alive, gone := join("ahead", t0.Add(21*time.Second)); fmt.Sprint(alive) != "[ahead]" || fmt.Sprint(gone) != "[late]" {
		t.Fatalf("21 s on: alive %v, gone %v; want late gone", alive, gone)
	}
}

// endings is a store that notes whose sessions it is asked to end.
type endings struct {
	*postgres.Store
	mu    sync.Mutex
	ended []string
}

func (e *endings) EndSessions(ctx context.Context, ids []string) error {
	e.mu.Lock()
	e.ended = append(e.ended, ids...)
	e.mu.Unlock()
	return e.Store.EndSessions(ctx, ids)
}

// TestNoOneForgottenAfterAnOutage: when the database was away longer than
// a lease, no process could renew; the first back does not end the
// sessions of the others, which renew at their next round. One that does
// not come back is forgotten a round later.
func TestNoOneForgottenAfterAnOutage(t *testing.T) {
	s := &endings{Store: open(t)}
	ms, c := managers(s, "a", "b")
	a, b := ms[0], ms[1]
	tick(t, a, b, a, b)
	// The database is away for two leases: no round runs.
	c.Add(20 * time.Second)
	tick(t, a)
	if len(s.ended) != 0 {
		t.Fatalf("the first process back ended the sessions of %v", s.ended)
	}
	// b never comes back: a round later it is gone.
	c.Add(4 * time.Second)
	tick(t, a)
	if fmt.Sprint(s.ended) != "[b]" {
		t.Fatalf("a round after the outage, sessions ended of %v, want b's", s.ended)
	}
}

// TestPausedOwnerIsFenced: a process paused past its lease (its clock
// stands still, it renews nothing) finds its buckets taken, at a higher
// epoch, by the process still running; its checkpoint written with the
// epoch it held is refused, the successor's stands, and its next round
// gives every bucket up.
func TestPausedOwnerIsFenced(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	running := leasetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	paused := leasetest.NewClock(running.Now())
	var lost []int
	a := lease.New(s, buckets, lease.Options{ID: "a", Lease: 10 * time.Second, Now: paused.Now,
		Lost: func(b int) { lost = append(lost, b) }})
	b := lease.New(s, buckets, lease.Options{ID: "b", Lease: 10 * time.Second, Now: running.Now})
	tick(t, a, b, a, b)
	owners(t, a, b)
	was := a.Held()
	lost = nil
	var bucket int
	for bucket = range was {
		break
	}
	if err := a.Fenced(ctx, bucket, func(w store.FencedWriter) error { return w.SaveCheckpoint(ctx, 1, []byte("a")) }); err != nil {
		t.Fatalf("the owner's checkpoint: %v", err)
	}
	// a is paused: b runs on past a's leases.
	for range 5 {
		running.Add(3 * time.Second)
		tick(t, b)
	}
	if got := len(b.Held()); got != buckets {
		t.Fatalf("b holds %d buckets after a's leases expired", got)
	}
	if b.Held()[bucket] <= was[bucket] {
		t.Fatalf("bucket %d was taken at epoch %d, not above a's %d", bucket, b.Held()[bucket], was[bucket])
	}
	if err := b.Fenced(ctx, bucket, func(w store.FencedWriter) error { return w.SaveCheckpoint(ctx, 2, []byte("b")) }); err != nil {
		t.Fatalf("the successor's checkpoint: %v", err)
	}
	// a wakes and, before any round, writes with the epoch it held.
	err := a.Fenced(ctx, bucket, func(w store.FencedWriter) error { return w.SaveCheckpoint(ctx, 3, []byte("a again")) })
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("a write of the paused owner: %v, want it fenced", err)
	}
	if seq, epoch, data, err := s.Checkpoint(ctx, bucket); err != nil || seq != 2 || string(data) != "b" || epoch != b.Held()[bucket] {
		t.Fatalf("checkpoint after the fenced write: seq %d, epoch %d, %q, %v; want b's", seq, epoch, data, err)
	}
	paused.Set(running.Now())
	tick(t, a)
	if len(a.Held()) != 0 || len(lost) != len(was) {
		t.Fatalf("after its round, a holds %v and lost %v, having held %d", a.Held(), lost, len(was))
	}
	owners(t, a, b)
}

// TestStoppedOwnerIsFenced: a real process stopped (SIGSTOP) past its
// leases, whose buckets another then takes, cannot write a checkpoint
// once it is continued.
func TestStoppedOwnerIsFenced(t *testing.T) {
	url := pgtest.Database(t)
	s := openAt(t, url)
	ctx := context.Background()
	cmd, lines, _ := startChild(t, "PAL_LEASE_CHILD", url)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "held") {
		t.Fatalf("the child said %q, want it to hold buckets", lines.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	parent := takeAll(t, s)
	for b := range buckets {
		if err := parent.Fenced(ctx, b, func(w store.FencedWriter) error { return w.SaveCheckpoint(ctx, 1, []byte("parent")) }); err != nil {
			t.Fatal(err)
		}
	}
	said := continueChild(t, cmd, lines)
	if len(said) == 0 || said[len(said)-1] != "fenced" {
		t.Fatalf("the continued child said %q, want fenced", said)
	}
	for b := range buckets {
		if _, _, data, err := s.Checkpoint(ctx, b); err != nil || string(data) != "parent" {
			t.Fatalf("bucket %d's checkpoint is %q (%v) after the child was continued", b, data, err)
		}
	}
}

// startChild starts the test binary as a child process, the child of env
// given the database url, and returns it with the lines it prints and its
// standard input.
func startChild(t *testing.T, env, url string) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out), in
}

// takeAll runs the rounds of a parent process until it holds every
// bucket: the stopped child's leases expired.
func takeAll(t *testing.T, s store.Buckets) *lease.Manager {
	t.Helper()
	parent := lease.New(s, buckets, lease.Options{ID: "parent", Lease: childLease})
	deadline := time.Now().Add(10 * childLease)
	for len(parent.Held()) < buckets {
		if time.Now().After(deadline) {
			t.Fatalf("the parent holds %d buckets %v after the child stopped", len(parent.Held()), 10*childLease)
		}
		if err := parent.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(childLease / 5)
	}
	return parent
}

// continueChild continues a stopped child, and returns what it says until
// it ends; one that goes on is stopped after ten leases.
func continueChild(t *testing.T, cmd *exec.Cmd, lines *bufio.Scanner) []string {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stop := time.AfterFunc(10*childLease, func() { cmd.Process.Kill() })
	defer stop.Stop()
	var said []string
	for lines.Scan() {
		said = append(said, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the child: %v, said %q", err, said)
	}
	return said
}

// childLease is the lease of the SIGSTOP test: short, so that the test is.
const childLease = 600 * time.Millisecond

// child holds buckets, says so, then writes a checkpoint to each of those
// it held, at the epoch it held, every few milliseconds, until a write is
// fenced; it says so. A write that fails otherwise is tried again.
func child(url string) error {
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	m := lease.New(s, buckets, lease.Options{ID: "child", Lease: childLease})
	defer m.Start(func(err error) { fmt.Fprintln(os.Stderr, "child:", err) })()
	for len(m.Held()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	held := m.Held()
	fmt.Printf("held %d\n", len(held))
	for {
		// With the epochs it held, straight to the store: whether or not
		// the process noticed it was stopped, the database refuses.
		for b, epoch := range held {
			err := s.Fenced(ctx, b, epoch, func(w store.FencedWriter) error { return w.SaveCheckpoint(ctx, 0, []byte("child")) })
			if errors.Is(err, store.ErrFenced) {
				fmt.Println("fenced")
				return nil
			}
			// Stopped inside the transaction, the child finds it ended by
			// the database: the write did not happen, and the next is
			// fenced.
			if err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFrozenWriteCommitsNothing: a real process stopped (SIGSTOP) in the
// middle of a write of the log, the event appended and its change filed,
// holds the log's lock; once its lease expired, the process that notices
// ends its sessions, writes itself, and the stopped one, continued,
// commits nothing: neither its event nor its change.
func TestFrozenWriteCommitsNothing(t *testing.T) {
	url := pgtest.Database(t)
	s := openAt(t, url)
	ctx := context.Background()
	cmd, lines, in := startChild(t, "PAL_WRITER_CHILD", url)
	if !lines.Scan() || lines.Text() != "writing" {
		t.Fatalf("the child said %q, want it in a write", lines.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	parent := takeAll(t, s)
	// The child is still stopped: the log's lock is freed once the parent,
	// going on with its rounds, forgets it and ends its sessions.
	defer parent.Start(func(err error) { t.Log("the parent's round:", err) })()
	writing, cancel := context.WithTimeout(ctx, 10*childLease)
	defer cancel()
	err := s.Write(writing, func(w store.Writer) error {
		_, err := w.Append(writing, []*event.Event{{ID: "after", Type: event.PartnerRegistered, Time: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Org: "100002", Name: "Litware", Locations: []string{"100022"}}})
		return err
	})
	if err != nil {
		t.Fatalf("the parent's write, with the child stopped in its own: %v", err)
	}
	// Continued, the child leaves its write when its input ends.
	in.Close()
	said := continueChild(t, cmd, lines)
	if len(said) == 0 || !strings.HasPrefix(said[len(said)-1], "not committed") {
		t.Fatalf("the continued child said %q, want its write not committed", said)
	}
	var ids []string
	if err := s.Scan(ctx, 0, func(r store.Record) error {
		ids = append(ids, r.Event.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[after]" {
		t.Fatalf("the log holds %v, want the parent's event only", ids)
	}
	var changes int
	if err := s.Changes(ctx, store.ChangeFilter{}, store.Cursor{}, 100, func(store.FiledChange) error {
		changes++
		return nil
	}); err != nil || changes != 0 {
		t.Fatalf("the feed holds %d changes (%v), want none of the child's", changes, err)
	}
}

// writerChild joins the members under its own name, with its sessions
// named after it, appends an event and files its change in a write of
// the log, says so, and stays in the write until its input ends: the test
// stops it there. Continued, it says whether the write committed.
func writerChild(dbURL string) error {
	u, err := neturl.Parse(dbURL)
	if err != nil {
		return err
	}
	q := u.Query()
	// Named for this run, so that no other session shares the name.
	id := fmt.Sprintf("writer-%d", os.Getpid())
	q.Set("application_name", postgres.SessionName(id))
	u.RawQuery = q.Encode()
	s, err := postgres.Open(context.Background(), u.String())
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	m := lease.New(s, buckets, lease.Options{ID: id, Addr: "http://writer", Lease: childLease})
	if err := m.Tick(ctx); err != nil {
		return err
	}
	defer m.Start(func(error) {})()
	err = s.Write(ctx, func(w store.Writer) error {
		seqs, err := w.Append(ctx, []*event.Event{{ID: "frozen", Type: event.PartnerRegistered, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Org: "100001", Name: "Fabrikam", Locations: []string{"100011"}}})
		if err != nil {
			return err
		}
		if err := w.FileChanges(ctx, []store.FiledChange{{At: store.Cursor{Seq: seqs[0], K: 1}, Tenant: "contoso", Orgs: []string{"100001"}, Body: []byte(`{}`)}}); err != nil {
			return err
		}
		fmt.Println("writing")
		io.Copy(io.Discard, os.Stdin)
		return nil
	})
	if err != nil {
		fmt.Println("not committed:", strings.ReplaceAll(err.Error(), "\n", " "))
		return nil
	}
	fmt.Println("committed")
	return nil
}

// TestBucket: a tenant's bucket is its 32-bit FNV-1a hash modulo the
// buckets, as SPEC.md section 10 fixes it.
func TestBucket(t *testing.T) {
	for _, c := range []struct {
		tenant string
		n      int
		want   int
	}{
		{"", 1 << 16, 0x811c9dc5 % (1 << 16)}, // FNV-1a's offset basis
		{"a", 1 << 16, 0xe40c292c % (1 << 16)},
		{"foobar", 64, 0xbf9cf968 % 64},
	} {
		if got := store.Bucket(c.tenant, c.n); got != c.want {
			t.Errorf("Bucket(%q, %d) = %d, want %d", c.tenant, c.n, got, c.want)
		}
	}
}

// slowJoin is a store whose Join waits until let is closed: a database
// that does not answer.
type slowJoin struct {
	*postgres.Store
	entered, let chan struct{}
}

func (s slowJoin) Join(ctx context.Context, m store.Member, now, forget time.Time) ([]store.Member, []string, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.let
	return s.Store.Join(ctx, m, now, forget)
}

// TestHeldWhileTheDatabaseWaits: what a process holds is told at once,
// though its round waits on a database that does not answer (/healthz
// asks it).
func TestHeldWhileTheDatabaseWaits(t *testing.T) {
	st := slowJoin{open(t), make(chan struct{}, 1), make(chan struct{})}
	m := lease.New(st, buckets, lease.Options{ID: "p", Lease: time.Minute})
	close(st.let)
	tick(t, m)
	<-st.entered
	want := len(m.Held())
	st.let = make(chan struct{})
	m = lease.New(st, buckets, lease.Options{ID: "p", Lease: time.Minute})
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Tick(context.Background())
	}()
	defer func() { close(st.let); <-done }()
	<-st.entered
	held := make(chan int, 1)
	go func() { held <- len(m.Held()) }()
	select {
	case n := <-held:
		if n != 0 || want != buckets {
			t.Fatalf("held %d while the round waits, %d after a round; want 0 and %d", n, want, buckets)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Held waits for the round, which waits for the database")
	}
}
