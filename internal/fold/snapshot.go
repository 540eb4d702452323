package fold

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"slices"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
)

// snapshotVersion changes whenever the snapshot's shape does, or what the
// fold makes of the log (version 13: a state that owns some tenants only
// notes the links of the tenants it folds alone, and no longer counts the
// records by day): a service that finds another version folds its log
// again.
const snapshotVersion = 13

type snapshotData struct {
	Version  int
	Engine   []byte
	Metrics  []byte
	Last     map[string]place
	Latest   place
	Refused  map[string]map[int64]*event.Refusal
	LinkedBy map[string]map[string]bool
	// Principals is the state's principals: dependents is its reverse.
	Principals map[string]map[string]bool
	// Partial is set when the state owned some tenants only (Own): those
	// of Owned, among those it held.
	Partial bool
	Owned   []string
}

// snapshot encodes the state.
func (s *State) Snapshot() (int64, []byte, error) {
	e, err := s.engine.Snapshot()
	if err != nil {
		return 0, nil, err
	}
	m, err := s.agg.Snapshot()
	if err != nil {
		return 0, nil, err
	}
	var buf bytes.Buffer
	d := snapshotData{Version: snapshotVersion, Engine: e, Metrics: m, Last: s.last, Latest: s.latest, Refused: s.refused,
		LinkedBy: s.linkedBy, Principals: s.principals, Partial: s.owns != nil}
	if d.Partial {
		for t := range s.held() {
			if s.owns(t) {
				d.Owned = append(d.Owned, t)
			}
		}
		slices.Sort(d.Owned)
	}
	if err := gob.NewEncoder(&buf).Encode(d); err != nil {
		return 0, nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return s.seq, buf.Bytes(), nil
}

// restore loads a snapshot taken after record seq, and the directory's
// records up to it from the store. A snapshot of a state that owned some
// tenants only makes the state own those it held then, and pass over the
// records of any other, until Own says which it owns: a state restored
// from another's snapshot is told again, with every tenant it may gain. It returns false, and leaves the state
// as it was, when the snapshot was taken with other options or cannot be
// read.
func (s *State) Restore(ctx context.Context, src Source, seq int64, data []byte) (bool, error) {
	var d snapshotData
	if gob.NewDecoder(bytes.NewReader(data)).Decode(&d) != nil || d.Version != snapshotVersion {
		return false, nil
	}
	e, err := attribution.Restore(d.Engine)
	if err != nil || !sameOptions(e.Options(), s.opts) {
		return false, nil
	}
	// Azure options decide answers, not the fold: the service's own hold.
	e.Azure().SetOptions(s.opts.Azure)
	agg, err := metrics.RestoreAggregator(d.Metrics)
	if err != nil {
		return false, nil
	}
	var dir []store.Record
	err = src.ScanTenant(ctx, "", func(r store.Record) error {
		if r.Seq <= seq {
			dir = append(dir, r)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("load the directory: %w", err)
	}
	s.owns, s.follow = nil, nil
	if d.Partial {
		owned := make(map[string]bool, len(d.Owned))
		for _, t := range d.Owned {
			owned[t] = true
		}
		s.owns = func(t string) bool { return owned[t] }
	}
	s.reset()
	s.engine, s.agg, s.seq = s.watch(e), agg, seq
	s.last, s.latest, s.directory = orEmpty(d.Last), d.Latest, dir
	if d.Refused != nil {
		s.refused = d.Refused
	}
	if d.LinkedBy != nil {
		s.linkedBy = d.LinkedBy
	}
	for t, pts := range d.Principals {
		for pt := range pts {
			addTo(s.principals, t, pt)
			addTo(s.dependents, pt, t)
		}
	}
	s.renote()
	return true, nil
}

func orEmpty[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return make(map[K]V)
	}
	return m
}

// sameOptions reports whether two sets of options fold a log the same.
func sameOptions(a, b attribution.Options) bool {
	return a.Policy == b.Policy && slices.Equal(a.Counted, b.Counted)
}
