package server

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
)

// state is the fold of the whole log, in time order: the engine, the
// monthly metrics, and the sequence number of the last record it holds. The
// log is the source of truth; the state is rebuilt from it whenever it
// cannot follow incrementally.
type state struct {
	mu     sync.RWMutex
	opts   attribution.Options
	engine *attribution.Engine
	agg    *metrics.Aggregator
	seq    int64
	// stale is set when the state may differ from the log (a write failed
	// after the engine applied its events): the next use rebuilds it.
	stale bool
	// sinceSnapshot counts the records applied since the last snapshot.
	sinceSnapshot int
	// changes is the feed of credit changes, each with the sequence number
	// of the record that caused it; pending holds those of the event being
	// applied, until its record has a number.
	changes []change
	pending []attribution.Change
}

// change is a credit change with the record that caused it.
type change struct {
	Seq int64 `json:"seq"`
	attribution.Change
}

func newState(opts attribution.Options) *state {
	s := &state{opts: opts, agg: metrics.NewAggregator()}
	s.engine = s.watch(attribution.New(opts))
	return s
}

// watch makes the state hear the engine's changes.
func (s *state) watch(e *attribution.Engine) *attribution.Engine {
	e.OnChange(func(c attribution.Change) { s.pending = append(s.pending, c) })
	return e
}

// stamp files the pending changes under the record seq.
func (s *state) stamp(seq int64) {
	for _, c := range s.pending {
		s.changes = append(s.changes, change{seq, c})
	}
	s.pending = s.pending[:0]
}

// apply applies one event to the engine and feeds the metrics.
func (s *state) apply(ev *event.Event) attribution.Result {
	return applyTo(s.engine, s.agg, ev)
}

func applyTo(e *attribution.Engine, agg *metrics.Aggregator, ev *event.Event) attribution.Result {
	res := e.Apply(ev)
	agg.Record(ev, res)
	return res
}

type scanner interface {
	Scan(ctx context.Context, after int64, fn func(store.Record) error) error
	ScanByTime(ctx context.Context, fn func(store.Record) error) error
}

// catchUp applies the records committed after the state's last one. When
// one of them is earlier than the state's time, the whole log is folded
// again. The caller holds s.mu for writing.
func (s *state) catchUp(ctx context.Context, src scanner) error {
	if s.stale {
		return s.rebuild(ctx, src)
	}
	var recs []store.Record
	if err := src.Scan(ctx, s.seq, func(r store.Record) error { recs = append(recs, r); return nil }); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	now := s.engine.Now()
	for _, r := range recs {
		if r.Event.Time.Before(now) {
			return s.rebuild(ctx, src)
		}
	}
	slices.SortStableFunc(recs, func(a, b store.Record) int { return a.Event.Time.Compare(b.Event.Time) })
	for _, r := range recs {
		s.apply(r.Event)
		s.stamp(r.Seq)
		s.seq = max(s.seq, r.Seq)
	}
	s.sinceSnapshot += len(recs)
	return nil
}

// rebuild folds the whole log again.
func (s *state) rebuild(ctx context.Context, src scanner) error {
	f, err := foldWith(ctx, src, s.opts, nil)
	if err != nil {
		return err
	}
	s.adopt(f)
	s.stale = false
	s.sinceSnapshot++
	return nil
}

// fold is a fresh fold of the log: its engine, metrics, last record,
// changes, and the results of the events folded in their places.
type fold struct {
	engine  *attribution.Engine
	agg     *metrics.Aggregator
	seq     int64
	changes []change
	results []attribution.Result
}

// foldWith folds the log in time order into a new engine, applying each
// of extra (sorted by time) in its place: after every record of its time or
// earlier. The changes extra k causes carry the sequence number -(k+1)
// until it has one of its own.
func foldWith(ctx context.Context, src scanner, opts attribution.Options, extra []*event.Event) (*fold, error) {
	f := &fold{engine: attribution.New(opts), agg: metrics.NewAggregator(), results: make([]attribution.Result, 0, len(extra))}
	var pending []attribution.Change
	f.engine.OnChange(func(c attribution.Change) { pending = append(pending, c) })
	stamp := func(seq int64) {
		for _, c := range pending {
			f.changes = append(f.changes, change{seq, c})
		}
		pending = pending[:0]
	}
	applyExtra := func() {
		k := len(f.results)
		f.results = append(f.results, applyTo(f.engine, f.agg, extra[k]))
		stamp(-int64(k + 1))
	}
	err := src.ScanByTime(ctx, func(r store.Record) error {
		for len(f.results) < len(extra) && r.Event.Time.After(extra[len(f.results)].Time) {
			applyExtra()
		}
		applyTo(f.engine, f.agg, r.Event)
		stamp(r.Seq)
		f.seq = max(f.seq, r.Seq)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fold log: %w", err)
	}
	for len(f.results) < len(extra) {
		applyExtra()
	}
	return f, nil
}

// adopt makes a fresh fold the state.
func (s *state) adopt(f *fold) {
	s.engine, s.agg, s.seq, s.changes = s.watch(f.engine), f.agg, max(s.seq, f.seq), f.changes
	s.pending = s.pending[:0]
}

// asOf returns an engine with the state at time at: the live one when at is
// not before its time, otherwise one folded from the log up to at.
func (s *state) asOf(ctx context.Context, src scanner, at time.Time) (*attribution.Engine, error) {
	if !at.Before(s.engine.Now()) {
		return s.engine, nil
	}
	e := attribution.New(s.opts)
	stop := errors.New("past the instant")
	err := src.ScanByTime(ctx, func(r store.Record) error {
		if r.Event.Time.After(at) {
			return stop
		}
		e.Apply(r.Event)
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return nil, fmt.Errorf("fold log up to %s: %w", at.Format(time.RFC3339), err)
	}
	return e, nil
}

type snapshotData struct {
	Engine  []byte
	Metrics []byte
	Changes []change
}

// snapshot encodes the state; the caller holds s.mu.
func (s *state) snapshot() (int64, []byte, error) {
	e, err := s.engine.Snapshot()
	if err != nil {
		return 0, nil, err
	}
	m, err := s.agg.Snapshot()
	if err != nil {
		return 0, nil, err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(snapshotData{e, m, s.changes}); err != nil {
		return 0, nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return s.seq, buf.Bytes(), nil
}

// restore loads a snapshot taken after record seq. It returns false, and
// leaves the state as it was, when the snapshot was taken with other
// options or cannot be read.
func (s *state) restore(seq int64, data []byte) bool {
	var d snapshotData
	if gob.NewDecoder(bytes.NewReader(data)).Decode(&d) != nil {
		return false
	}
	e, err := attribution.Restore(d.Engine)
	if err != nil || !sameOptions(e.Options(), s.opts) {
		return false
	}
	agg, err := metrics.RestoreAggregator(d.Metrics)
	if err != nil {
		return false
	}
	s.engine, s.agg, s.seq, s.changes = s.watch(e), agg, seq, d.Changes
	return true
}

func sameOptions(a, b attribution.Options) bool {
	return a.Policy == b.Policy && slices.Equal(a.Counted, b.Counted)
}
