package server

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/demo"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/sqlite"
)

// records numbers events as a store would.
func records(t *testing.T) []store.Record {
	t.Helper()
	log := attributiontest.RandomLog(1, 300)
	recs := make([]store.Record, len(log))
	for i, ev := range log {
		recs[i] = store.Record{Seq: int64(i + 1), Event: ev}
	}
	return recs
}

// TestReadersDoNotWaitForAWriter holds a reader inside a read while a
// writer folds records: a new reader reads at once, and sees them; the
// writer waits for the first reader to leave.
func TestReadersDoNotWaitForAWriter(t *testing.T) {
	recs := records(t)
	v := newViews(attribution.DefaultOptions(), 0, nil)
	ctx := context.Background()
	// write folds records from..to, the store holding those up to to.
	write := func(from, to int) {
		_, err := update(v, fold.Records(recs[:to]), func(st *fold.State, src fold.Source) (struct{}, error) {
			return struct{}{}, st.Fold(ctx, src, recs[from:to])
		})
		if err != nil {
			t.Error(err)
		}
	}
	write(0, 100)

	inside, release := make(chan struct{}), make(chan struct{})
	go v.read(func(st *fold.State) error {
		close(inside)
		<-release
		return nil
	})
	<-inside
	written := make(chan struct{})
	go func() {
		write(100, len(recs))
		close(written)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var seq int64
		start := time.Now()
		v.read(func(st *fold.State) error {
			seq = st.Seq()
			return nil
		})
		if took := time.Since(start); took > time.Second {
			t.Fatalf("a read took %s while a writer waited", took)
		}
		if seq == int64(len(recs)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer's records were never published")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-written:
		t.Fatal("the writer changed the copy a reader was on")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-written
	// Both copies hold the same fold.
	for _, st := range v.copies {
		if st.Seq() != int64(len(recs)) {
			t.Errorf("a copy at record %d, want %d", st.Seq(), len(recs))
		}
	}
	a, b := v.copies[0].Engine().Attribution(), v.copies[1].Engine().Attribution()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("copies differ: %d and %d rows", len(a), len(b))
	}
	for i := range a {
		if a[i].Resource != b[i].Resource || a[i].Partner != b[i].Partner {
			t.Errorf("copies differ at %d: %+v and %+v", i, a[i], b[i])
		}
	}
}

// TestReadsDuringWrites reads the state from several goroutines while a
// writer folds a random log in small steps, late records included: under
// the race detector, no reader and writer touch the same memory.
func TestReadsDuringWrites(t *testing.T) {
	recs := records(t)
	v := newViews(attribution.DefaultOptions(), 0, nil)
	ctx, stop := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	for range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for ctx.Err() == nil {
				v.read(func(st *fold.State) error {
					st.Engine().Attribution()
					st.Metrics().Report(metrics.DefaultConfig(), "2026-01", func(string, string) string { return "smb" })
					st.Refusals(nil)
					return nil
				})
			}
		}()
	}
	for i := 0; i < len(recs); i += 7 {
		to := min(i+7, len(recs))
		_, err := update(v, fold.Records(recs[:to]), func(st *fold.State, src fold.Source) (struct{}, error) {
			return struct{}{}, st.Fold(ctx, src, recs[i:to])
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	stop()
	readers.Wait()
}

// TestAWriteFoldsIntoACurrentCopy: a catch-up that failed on one copy of
// the state left it behind while the published one is current; the next
// write folds into that copy, so it is caught up first, and the feed of
// changes is the one a single fold of the log files.
func TestAWriteFoldsIntoACurrentCopy(t *testing.T) {
	ctx := context.Background()
	var events []*event.Event
	var buf bytes.Buffer
	if err := demo.Write(&buf, 1); err != nil {
		t.Fatal(err)
	}
	if err := event.NewReader(&buf).Each(func(ev *event.Event, _ *event.Refusal) error {
		events = append(events, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	feed := func(st store.Store) []string {
		var out []string
		if err := st.Changes(ctx, store.ChangeFilter{}, store.Cursor{}, 1<<30, func(c store.FiledChange) error {
			out = append(out, string(c.Body))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	open := func() store.Store {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "pal.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	whole := open()
	one, err := New(ctx, Config{Store: whole})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := one.Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}

	st := open()
	s, err := New(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	half := len(events) / 2
	if _, _, _, err := s.Ingest(ctx, events[:half]); err != nil {
		t.Fatal(err)
	}
	s.views.mu.Lock()
	s.views.copies[1-s.views.published.Load()] = fold.New(s.cfg.Options)
	s.views.mu.Unlock()
	if _, _, _, err := s.Ingest(ctx, events[half:]); err != nil {
		t.Fatal(err)
	}
	if got, want := feed(st), feed(whole); !slices.Equal(got, want) {
		t.Errorf("the feed has %d changes, %d when the log is folded at once", len(got), len(want))
	}
}
