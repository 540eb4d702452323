package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
)

// state is the fold of the whole log: the engine, the monthly metrics, the
// verdict on every stored record, and the credit changes waiting to be
// filed in the feed. The log is the source of truth, and the state is what
// `pal` folds from it.
//
// The fold is partitioned by tenant. A tenant's state depends only on its
// own records and on those of no tenant (the partner directory), so a
// record that arrives in its place is applied at once, and one that arrives
// late (earlier than what its tenant or the directory already folded) makes
// only its tenant be folded again, from its records in the store. A late
// directory record folds the directory again, and then the tenants that
// link to an organisation whose history changed.
//
// A state is not safe for concurrent use: views keeps two, so that readers
// read one while a writer changes the other.
type state struct {
	opts   attribution.Options
	engine *attribution.Engine
	agg    *metrics.Aggregator
	// seq is the last record folded.
	seq int64
	// stale is set when the state may differ from the log (a write failed
	// after the state folded its records): the next use folds it again.
	stale bool
	// sinceSnapshot counts the records folded since the last snapshot.
	sinceSnapshot int
	// last is the place of each tenant's latest record folded in its
	// place; the tenant "" is the directory. latest is the latest of all.
	last   map[string]place
	latest place
	// directory holds the records of no tenant in the order they apply:
	// every tenant's fold replays them.
	directory []store.Record
	// refused holds, by tenant then sequence number, the stored records
	// that the state refuses as it stands.
	refused map[string]map[int64]*event.Refusal
	// linkedBy holds, for each partner ID, the tenants in which a
	// pal.linked names it, whatever became of it.
	linkedBy map[string]map[string]bool
	// principals holds, for each tenant, the other tenants whose accounts
	// and groups its azure.role_assigned records name (Azure Lighthouse),
	// whatever became of them: the tenant's fold reads their state, so it
	// is folded with their records, and again when one of them changes
	// before its own latest record. dependents is the reverse.
	principals map[string]map[string]bool
	dependents map[string]map[string]bool
	// perDay counts the stored records by the day of their time: what
	// comes in, for the operator.
	perDay map[string]int
	// outbox holds the credit changes of the records folded since it was
	// last emptied, each with the sequence number under which it is filed:
	// that of the record that caused it, or for the corrections of a
	// refold that of the last record folded. The writer that committed
	// those records files them in the store; any other process drops
	// them. pending holds those of the record being applied.
	outbox  []change
	pending []attribution.Change
}

// place is where a record applies: by time, then by sequence number.
type place struct {
	Time time.Time
	Seq  int64
}

func placeOf(r store.Record) place { return place{r.Event.Time, r.Seq} }

func (p place) before(q place) bool {
	c := p.Time.Compare(q.Time)
	return c < 0 || (c == 0 && p.Seq < q.Seq)
}

func later(p, q place) place {
	if p.before(q) {
		return q
	}
	return p
}

// change is a credit change with the record that caused it.
type change struct {
	Seq int64 `json:"seq"`
	attribution.Change
}

func newState(opts attribution.Options) *state {
	s := &state{opts: opts}
	s.reset()
	return s
}

// reset empties the state, as before the first record.
func (s *state) reset() {
	s.engine = s.watch(attribution.New(s.opts))
	s.agg = metrics.NewAggregator()
	s.seq, s.stale, s.latest = 0, false, place{}
	s.last = make(map[string]place)
	s.directory = nil
	s.refused = make(map[string]map[int64]*event.Refusal)
	s.linkedBy = make(map[string]map[string]bool)
	s.principals = make(map[string]map[string]bool)
	s.dependents = make(map[string]map[string]bool)
	s.perDay = make(map[string]int)
	s.outbox, s.pending = nil, nil
}

// watch makes the state hear the engine's changes.
func (s *state) watch(e *attribution.Engine) *attribution.Engine {
	e.OnChange(func(c attribution.Change) { s.pending = append(s.pending, c) })
	return e
}

// file puts the pending changes in the outbox under the record seq.
func (s *state) file(seq int64) {
	for _, c := range s.pending {
		s.outbox = append(s.outbox, change{seq, c})
	}
	s.pending = s.pending[:0]
}

// takeOutbox empties the outbox and returns what it held, in feed order.
func (s *state) takeOutbox() []change {
	out := s.outbox
	s.outbox = nil
	return out
}

// tenantScanner reads the log: what the state catches up with.
type tenantScanner interface {
	Scan(ctx context.Context, after int64, fn func(store.Record) error) error
	ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error
}

// catchUpChunk is how many records catchUp holds at once: a cold start
// folds the whole log, and must not hold it. A variable for the tests.
var catchUpChunk = 20000

// errChunkFull ends a scan when catchUp holds a chunk.
var errChunkFull = errors.New("chunk full")

// catchUp folds the records committed after the state's last one, a chunk
// at a time; the tenants that late records make it fold again are folded
// once, after the last chunk, as one fold of every record would. On an
// error in folding a tenant again the state is marked stale.
func (s *state) catchUp(ctx context.Context, src tenantScanner) error {
	if s.stale {
		s.reset()
	}
	late := lateRecords{tenants: map[string]*event.Event{}}
	recs := make([]store.Record, 0, catchUpChunk)
	for {
		recs = recs[:0]
		err := src.Scan(ctx, s.seq, func(r store.Record) error {
			recs = append(recs, r)
			if len(recs) == catchUpChunk {
				return errChunkFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errChunkFull) {
			return err
		}
		s.apply(recs, &late)
		if len(recs) < catchUpChunk {
			return s.refold(ctx, src, &late)
		}
	}
}

// lateRecords are what records that came after their place ask of the
// fold: the tenants to fold again, each with the first late record that
// makes it so (the cause of its corrections), and the first late record
// of the directory.
type lateRecords struct {
	tenants   map[string]*event.Event
	directory *event.Event
}

// fold folds records that follow the state's last one, in sequence order;
// src gives the tenants' records when one must be folded again. On an
// error in folding a tenant again the state is marked stale.
func (s *state) fold(ctx context.Context, src tenantScanner, recs []store.Record) error {
	if len(recs) == 0 {
		return nil
	}
	late := lateRecords{tenants: map[string]*event.Event{}}
	s.apply(recs, &late)
	return s.refold(ctx, src, &late)
}

// apply applies records that follow the state's last one, in sequence
// order, noting in late what must be folded again.
func (s *state) apply(recs []store.Record, late *lateRecords) {
	refold := late.tenants
	for _, r := range recs {
		ev := r.Event
		s.seq = max(s.seq, r.Seq)
		s.sinceSnapshot++
		s.noteLink(ev)
		s.notePrincipal(ev)
		s.perDay[ev.Time.Format(time.DateOnly)]++
		p := placeOf(r)
		if ev.Tenant == "" {
			i, _ := slices.BinarySearchFunc(s.directory, p, func(d store.Record, p place) int {
				if placeOf(d).before(p) {
					return -1
				}
				return 1
			})
			s.directory = slices.Insert(s.directory, i, r)
			if late.directory != nil || p.before(s.latest) {
				late.directory = cmp.Or(late.directory, ev)
				continue
			}
			s.applyRecord(r)
			continue
		}
		// Tenants whose fold reads this one's state and went past this
		// record are folded again.
		for d := range s.dependents[ev.Tenant] {
			if p.before(s.last[d]) {
				refold[d] = cmp.Or(refold[d], ev)
			}
		}
		if refold[ev.Tenant] != nil {
			continue
		}
		if p.before(s.folded(ev.Tenant)) {
			// Usage and profiles change no state: they are credited from
			// the history. Anything else is folded in its place.
			if res, ok := s.engine.ApplyLate(ev); ok {
				s.agg.Record(ev, res)
				s.verdict(r, res)
				continue
			}
			refold[ev.Tenant] = ev
			continue
		}
		s.applyRecord(r)
	}
}

// refold folds again what late records ask.
func (s *state) refold(ctx context.Context, src tenantScanner, late *lateRecords) error {
	refold := late.tenants
	if late.directory != nil {
		for _, t := range s.refoldDirectory() {
			refold[t] = cmp.Or(refold[t], late.directory)
		}
	}
	tenants := make([]string, 0, len(refold))
	for t := range refold {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		if err := s.refoldTenant(ctx, src, t, refold[t]); err != nil {
			s.stale = true
			return err
		}
	}
	return nil
}

// folded returns the place up to which a tenant's fold has gone: its own
// latest record, the directory's, and those of the tenants it reads.
func (s *state) folded(tenant string) place {
	p := later(s.last[tenant], s.last[""])
	for pt := range s.principals[tenant] {
		p = later(p, s.last[pt])
	}
	return p
}

// reads lists the tenants whose state a tenant's fold reads.
func (s *state) reads(tenant string) []string {
	out := make([]string, 0, len(s.principals[tenant]))
	for pt := range s.principals[tenant] {
		out = append(out, pt)
	}
	slices.Sort(out)
	return out
}

// notePrincipal remembers the tenants a role assignment's principal lives
// in, when not its own.
func (s *state) notePrincipal(ev *event.Event) {
	if ev.Type != event.AzureRoleAssigned || ev.PrincipalTenant == ev.Tenant {
		return
	}
	addTo(s.principals, ev.Tenant, ev.PrincipalTenant)
	addTo(s.dependents, ev.PrincipalTenant, ev.Tenant)
}

func addTo(m map[string]map[string]bool, k, v string) {
	if m[k] == nil {
		m[k] = make(map[string]bool)
	}
	m[k][v] = true
}

// noteLink remembers the tenants that name a partner ID in a link.
func (s *state) noteLink(ev *event.Event) {
	if ev.Type != event.PalLinked {
		return
	}
	ts := s.linkedBy[ev.Partner]
	if ts == nil {
		ts = make(map[string]bool)
		s.linkedBy[ev.Partner] = ts
	}
	ts[ev.Tenant] = true
}

// applyRecord applies a record in its place.
func (s *state) applyRecord(r store.Record) {
	res := s.engine.Apply(r.Event)
	s.agg.Record(r.Event, res)
	s.file(r.Seq)
	s.verdict(r, res)
	p := placeOf(r)
	s.last[r.Event.Tenant] = later(s.last[r.Event.Tenant], p)
	s.latest = later(s.latest, p)
}

// verdict keeps what the fold said of a record.
func (s *state) verdict(r store.Record, res attribution.Result) {
	t := r.Event.Tenant
	if res.Outcome != attribution.Refused {
		delete(s.refused[t], r.Seq)
		return
	}
	if s.refused[t] == nil {
		s.refused[t] = make(map[int64]*event.Refusal)
	}
	s.refused[t][r.Seq] = res.Refusal
}

// refoldDirectory folds the directory's records again, adopts the result,
// and returns the tenants that must be folded again for it.
func (s *state) refoldDirectory() []string {
	fresh := attribution.New(s.opts)
	delete(s.refused, "")
	for _, r := range s.directory {
		s.verdict(r, fresh.Apply(r.Event))
	}
	if n := len(s.directory); n > 0 {
		s.last[""] = placeOf(s.directory[n-1])
		s.latest = later(s.latest, s.last[""])
	}
	affected := make(map[string]bool)
	for _, id := range s.engine.AdoptDirectory(fresh) {
		for t := range s.linkedBy[id] {
			affected[t] = true
		}
	}
	tenants := make([]string, 0, len(affected))
	for t := range affected {
		tenants = append(tenants, t)
	}
	return tenants
}

// foldTenant folds one tenant's records, with the directory's records dir
// in their places, into a fresh engine, up to the instant until when it is
// not zero; each hears every record of the tenant with its result. It
// touches no state: readers call it on a copy of the directory, without
// holding the state. The records of the tenants reads (see principals) are
// folded in their places too, unheard.
func foldTenant(ctx context.Context, src tenantScanner, opts attribution.Options, dir []store.Record, tenant string, reads []string, until time.Time, each func(store.Record, attribution.Result)) (*attribution.Engine, error) {
	e := attribution.New(opts)
	if len(reads) > 0 {
		side := slices.Clone(dir)
		for _, pt := range reads {
			err := src.ScanTenant(ctx, pt, func(r store.Record) error {
				side = append(side, r)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("fold tenant %s: %w", pt, err)
			}
		}
		slices.SortStableFunc(side, func(a, b store.Record) int {
			return cmp.Or(a.Event.Time.Compare(b.Event.Time), cmp.Compare(a.Seq, b.Seq))
		})
		dir = side
	}
	// upTo applies the directory's records before p, or all of them when
	// p is nil, up to until.
	upTo := func(p *place) {
		for len(dir) > 0 && (p == nil || placeOf(dir[0]).before(*p)) && (until.IsZero() || !dir[0].Event.Time.After(until)) {
			e.Apply(dir[0].Event)
			dir = dir[1:]
		}
	}
	err := src.ScanTenant(ctx, tenant, func(r store.Record) error {
		if !until.IsZero() && r.Event.Time.After(until) {
			return errStop
		}
		p := placeOf(r)
		upTo(&p)
		res := e.Apply(r.Event)
		if each != nil {
			each(r, res)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("fold tenant %s: %w", tenant, err)
	}
	upTo(nil)
	return e, nil
}

// errStop ends a scan early.
var errStop = errors.New("stop")

// refoldTenant folds one tenant again and adopts the result: its state,
// its month counts, its verdicts, and corrections in the feed for every
// credit interval that moved, caused by the late record cause.
func (s *state) refoldTenant(ctx context.Context, src tenantScanner, tenant string, cause *event.Event) error {
	s.agg.DropTenant(tenant)
	delete(s.refused, tenant)
	var last place
	fresh, err := foldTenant(ctx, src, s.opts, s.directory, tenant, s.reads(tenant), time.Time{}, func(r store.Record, res attribution.Result) {
		s.agg.Record(r.Event, res)
		s.verdict(r, res)
		last = later(last, placeOf(r))
	})
	if err != nil {
		return err
	}
	before := s.engine.TenantHistory(tenant)
	s.engine.AdoptTenant(tenant, fresh)
	after := s.engine.TenantHistory(tenant)
	s.last[tenant] = later(s.last[tenant], last)
	s.latest = later(s.latest, last)
	ids := make([]string, 0, len(after))
	for id := range after {
		ids = append(ids, id)
	}
	for id := range before {
		if _, ok := after[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, c := range attribution.Corrections(tenant, id, before[id], after[id]) {
			c.Cause, c.CauseID = cause.Type, cause.ID
			s.outbox = append(s.outbox, change{s.seq, c})
		}
	}
	return nil
}

// refusal returns the verdict refusing a stored record, or nil.
func (s *state) refusal(tenant string, seq int64) *event.Refusal {
	return s.refused[tenant][seq]
}

// refusals lists the records refused as the state stands, by sequence
// number, of one tenant or (tenant nil) of all.
func (s *state) refusals(tenant *string) []storedRefusal {
	var out []storedRefusal
	add := func(rs map[int64]*event.Refusal) {
		for seq, rf := range rs {
			out = append(out, storedRefusal{Seq: seq, Type: rf.Type, Code: rf.Code, Message: rf.Message})
		}
	}
	if tenant != nil {
		add(s.refused[*tenant])
	} else {
		for _, rs := range s.refused {
			add(rs)
		}
	}
	slices.SortFunc(out, func(a, b storedRefusal) int { return int(a.Seq - b.Seq) })
	return out
}

// storedRefusal is a stored record that the state refuses.
type storedRefusal struct {
	Seq     int64      `json:"seq"`
	Type    string     `json:"type"`
	Code    event.Code `json:"code"`
	Message string     `json:"message"`
}

// directoryCopy returns the directory's records, for a fold of one tenant
// that a reader makes on its own.
func (s *state) directoryCopy() []store.Record {
	return slices.Clone(s.directory)
}

// snapshotVersion changes whenever the snapshot's shape does: a service
// that finds another version folds its log again.
const snapshotVersion = 8

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
	PerDay     map[string]int
}

// snapshot encodes the state.
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
	d := snapshotData{snapshotVersion, e, m, s.last, s.latest, s.refused, s.linkedBy, s.principals, s.perDay}
	if err := gob.NewEncoder(&buf).Encode(d); err != nil {
		return 0, nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return s.seq, buf.Bytes(), nil
}

// restore loads a snapshot taken after record seq, and the directory's
// records up to it from the store. It returns false, and leaves the state
// as it was, when the snapshot was taken with other options or cannot be
// read.
func (s *state) restore(ctx context.Context, src tenantScanner, seq int64, data []byte) (bool, error) {
	var d snapshotData
	if gob.NewDecoder(bytes.NewReader(data)).Decode(&d) != nil || d.Version != snapshotVersion {
		return false, nil
	}
	e, err := attribution.Restore(d.Engine)
	if err != nil || !sameOptions(e.Options(), s.opts) {
		return false, nil
	}
	// Azure options decide answers, not the fold: the service's own hold.
	e.SetAzureOptions(s.opts.Azure)
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
	s.reset()
	s.engine, s.agg, s.seq = s.watch(e), agg, seq
	s.last, s.latest, s.directory = orEmpty(d.Last), d.Latest, dir
	if d.Refused != nil {
		s.refused = d.Refused
	}
	if d.LinkedBy != nil {
		s.linkedBy = d.LinkedBy
	}
	if d.PerDay != nil {
		s.perDay = d.PerDay
	}
	for t, pts := range d.Principals {
		for pt := range pts {
			addTo(s.principals, t, pt)
			addTo(s.dependents, pt, t)
		}
	}
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
