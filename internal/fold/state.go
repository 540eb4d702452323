package fold

import (
	"cmp"
	"context"
	"errors"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
)

// State is the fold of the whole log: the engine, the monthly metrics, the
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
// A state is not safe for concurrent use: the service keeps two, so that
// readers read one while a writer changes the other.
type State struct {
	opts attribution.Options
	// chunk is how many records CatchUp holds at once; progress, when
	// set, hears the sequence number folded after each chunk.
	chunk    int
	progress func(seq int64)
	engine   *attribution.Engine
	agg      *metrics.Aggregator
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
	// linkedBy holds, for each partner ID, the tenants the state folds in
	// which a pal.linked names it, whatever became of it.
	linkedBy map[string]map[string]bool
	// principals holds, for each tenant, the other tenants whose accounts
	// and groups its azure.role_assigned records name (Azure Lighthouse),
	// whatever became of them: the tenant's fold reads their state, so it
	// is folded with their records, and again when one of them changes
	// before its own latest record. dependents is the reverse.
	principals map[string]map[string]bool
	dependents map[string]map[string]bool
	// outbox holds the credit changes of the records folded since it was
	// last emptied, each with the sequence number under which it is filed:
	// that of the record that caused it, or for the corrections of a
	// refold that of the last record folded. The writer that committed
	// those records files them in the store; any other process drops
	// them. pending holds those of the record being applied.
	outbox  []Change
	pending []attribution.Change
	// noted holds, by tenant, the resources with consumption kept out of
	// the log (NoteConsumption): unlike the rest, a reset keeps them.
	noted map[string][]string
	// owns, when set, says which tenants the state owns among processes
	// that share them (SPEC.md section 10; Own); nil owns every tenant.
	// A reset keeps it.
	owns func(tenant string) bool
	// follow, when set, holds the buckets whose tenants the state owns
	// (OwnBuckets): it reads only the records of those, of the tenants
	// they read, and those every process reads, from a Follower.
	follow *store.Following
}

// Change is a credit change with the record that caused it.
type Change struct {
	Seq int64 `json:"seq"`
	attribution.Change
}

// New returns the state of an empty log, folded with opts.
func New(opts attribution.Options) *State {
	s := &State{opts: opts, chunk: defaultChunk}
	s.reset()
	return s
}

// reset empties the state, as before the first record.
func (s *State) reset() {
	s.engine = s.watch(attribution.New(s.opts))
	s.agg = metrics.NewAggregator()
	s.seq, s.stale, s.latest = 0, false, place{}
	s.last = make(map[string]place)
	s.directory = nil
	s.refused = make(map[string]map[int64]*event.Refusal)
	s.linkedBy = make(map[string]map[string]bool)
	s.principals = make(map[string]map[string]bool)
	s.dependents = make(map[string]map[string]bool)
	s.outbox, s.pending = nil, nil
	s.renote()
}

// NoteConsumption notes resources that have consumption kept out of the
// log (pal serve keeps pushed consumption files as segments): the engine
// lists them among their tenants' Azure resources, now and after the state
// is folded again, for the tenants it folds.
func (s *State) NoteConsumption(rs []store.TenantResource) {
	if s.noted == nil {
		s.noted = make(map[string][]string)
	}
	for _, r := range rs {
		s.noted[r.Tenant] = append(s.noted[r.Tenant], r.Resource)
		if s.folds(r.Tenant) {
			s.engine.NoteConsumption(r.Tenant, r.Resource)
		}
	}
}

// Noted returns the resources noted (NoteConsumption) of the tenants
// named: what a fold of those tenants from the log alone (Tenant, Tenants)
// notes to answer as the state does. The slice is the caller's.
func (s *State) Noted(tenants []string) []store.TenantResource {
	var out []store.TenantResource
	for _, t := range slices.Compact(slices.Sorted(slices.Values(tenants))) {
		for _, r := range s.noted[t] {
			out = append(out, store.TenantResource{Tenant: t, Resource: r})
		}
	}
	return out
}

// renote notes again, in a new engine, the resources noted so far of the
// tenants the state folds.
func (s *State) renote() {
	for t := range s.noted {
		if s.folds(t) {
			s.renoteTenant(t)
		}
	}
}

// renoteTenant notes again the resources noted of one tenant, after its
// state was replaced.
func (s *State) renoteTenant(tenant string) {
	for _, r := range s.noted[tenant] {
		s.engine.NoteConsumption(tenant, r)
	}
}

// watch makes the state hear the engine's changes.
func (s *State) watch(e *attribution.Engine) *attribution.Engine {
	e.OnChange(func(c attribution.Change) { s.pending = append(s.pending, c) })
	return e
}

// file puts the pending changes of the tenants the state owns in the
// outbox under the record seq.
func (s *State) file(seq int64) {
	for _, c := range s.pending {
		if s.owned(c.Tenant) {
			s.outbox = append(s.outbox, Change{seq, c})
		}
	}
	s.pending = s.pending[:0]
}

// TakeOutbox empties the outbox and returns what it held, in feed order.
func (s *State) TakeOutbox() []Change {
	out := s.outbox
	s.outbox = nil
	return out
}

// defaultChunk is how many records CatchUp holds at once: a cold start
// folds the whole log, and must not hold it.
const defaultChunk = 20000

// SetChunk makes CatchUp hold n records at a time, for the tests of a cold
// start on a small log.
func (s *State) SetChunk(n int) { s.chunk = max(n, 1) }

// SetProgress makes CatchUp tell fn the sequence number it folded up to,
// after each chunk: a long cold start says how it goes.
func (s *State) SetProgress(fn func(seq int64)) { s.progress = fn }

// errChunkFull ends a scan when CatchUp holds a chunk.
var errChunkFull = errors.New("chunk full")

// CatchUp folds the records committed after the state's last one, a chunk
// at a time; the tenants that late records make it fold again are folded
// once, after the last chunk, as one fold of every record would. On an
// error in folding a tenant again, or in reading the log once late records
// asked for that, the state is marked stale: the next catch-up starts over.
func (s *State) CatchUp(ctx context.Context, src Source) error {
	if s.stale {
		s.reset()
	}
	late := newLateRecords()
	recs := make([]store.Record, 0, s.chunk)
	for {
		recs = recs[:0]
		horizon, err := s.scan(ctx, src, func(r store.Record) error {
			recs = append(recs, r)
			if len(recs) == s.chunk {
				return errChunkFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errChunkFull) {
			// The chunks folded may have left tenants to fold again,
			// which the next catch-up, from here, would not know of:
			// that one starts over.
			if len(late.tenants) > 0 || late.directory != nil {
				s.stale = true
			}
			return err
		}
		s.apply(recs, &late)
		if len(recs) < s.chunk {
			// Every record up to the horizon that the state folds was
			// read, but those of a tenant it began to read meanwhile,
			// which the refold below reads: it has folded the log that
			// far.
			s.seq = max(s.seq, horizon)
		}
		if s.progress != nil {
			s.progress(s.seq)
		}
		if len(recs) < s.chunk {
			return s.refold(ctx, src, &late)
		}
	}
}

// scan reads the records after the state's last one, and returns the
// horizon up to which it read the log (0: up to the last record given).
// A state that follows some buckets reads only what it folds from a
// source that can narrow its reads.
func (s *State) scan(ctx context.Context, src Source, fn func(store.Record) error) (int64, error) {
	if f, ok := src.(Follower); ok && s.follow != nil {
		following := *s.follow
		following.Tenants = s.readOutside()
		return f.ScanFollowing(ctx, s.seq, following, fn)
	}
	return 0, src.Scan(ctx, s.seq, fn)
}

// lateRecords are what records that came after their place ask of the
// fold: the tenants to fold again, each with the first late record that
// makes it so (the cause of its corrections), and the first late record
// of the directory. since holds, for each tenant to fold again and for
// the directory (""), the earliest time of the late records that ask it.
// passed holds, for each tenant to fold again, the uses passed over
// meanwhile: its fold counts them.
type lateRecords struct {
	tenants   map[string]*event.Event
	directory *event.Event
	since     map[string]time.Time
	passed    map[string]*passedUses
}

// ask notes that a late record, cause, asks tenant to be folded again.
func (l *lateRecords) ask(tenant string, cause *event.Event, at time.Time) {
	l.tenants[tenant] = cmp.Or(l.tenants[tenant], cause)
	l.from(tenant, at)
}

// from notes a late record at an instant, of a tenant or the directory.
func (l *lateRecords) from(tenant string, at time.Time) {
	if since, ok := l.since[tenant]; !ok || at.Before(since) {
		l.since[tenant] = at
	}
}

// passedUses are the uses of a tenant passed over while it waited to be
// folded again: the resources they are of, each with the earliest time,
// and the place of the latest.
type passedUses struct {
	from map[string]time.Time
	last place
}

// pass notes a use passed over while its tenant waits to be folded again.
func (l *lateRecords) pass(r store.Record) {
	ev := r.Event
	p := l.passed[ev.Tenant]
	if p == nil {
		p = &passedUses{from: make(map[string]time.Time)}
		l.passed[ev.Tenant] = p
	}
	if at, ok := p.from[ev.Resource]; !ok || ev.Time.Before(at) {
		p.from[ev.Resource] = ev.Time
	}
	p.last = later(p.last, placeOf(r))
}

func newLateRecords() lateRecords {
	return lateRecords{tenants: map[string]*event.Event{}, since: map[string]time.Time{}, passed: map[string]*passedUses{}}
}

// fold folds records that follow the state's last one, in sequence order;
// src gives the tenants' records when one must be folded again. On an
// error in folding a tenant again the state is marked stale.
func (s *State) Fold(ctx context.Context, src Source, recs []store.Record) error {
	if len(recs) == 0 {
		return nil
	}
	late := newLateRecords()
	s.apply(recs, &late)
	return s.refold(ctx, src, &late)
}

// apply applies records that follow the state's last one, in sequence
// order, noting in late what must be folded again.
func (s *State) apply(recs []store.Record, late *lateRecords) {
	refold := late.tenants
	for _, r := range recs {
		ev := r.Event
		s.seq = max(s.seq, r.Seq)
		s.sinceSnapshot++
		unread := ev.Type == event.AzureRoleAssigned && ev.PrincipalTenant != ev.Tenant && !s.folds(ev.PrincipalTenant)
		s.notePrincipal(ev)
		if !s.folds(ev.Tenant) {
			continue
		}
		s.noteLink(ev)
		if unread && s.folds(ev.PrincipalTenant) {
			// A tenant of this state's now reads one it did not fold:
			// that one is folded from the log, and this one again with it.
			late.ask(ev.PrincipalTenant, ev, time.Time{})
			late.ask(ev.Tenant, ev, ev.Time)
			continue
		}
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
				late.from("", ev.Time)
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
				late.ask(d, ev, ev.Time)
			}
		}
		// A tenant whose fold reads one waiting to be folded again waits
		// too: in its place now, it would read that one's past state.
		for pt := range s.principals[ev.Tenant] {
			if refold[pt] != nil && refold[ev.Tenant] == nil {
				late.ask(ev.Tenant, refold[pt], late.since[pt])
			}
		}
		if refold[ev.Tenant] != nil {
			if isMeasure(ev.Type) {
				late.pass(r)
			} else {
				// An earlier one moves what the fold reads again.
				late.ask(ev.Tenant, ev, ev.Time)
			}
			continue
		}
		if p.before(s.folded(ev.Tenant)) {
			// Usage and profiles change no state: they are credited from
			// the history. Anything else is folded in its place.
			if res, ok := s.engine.ApplyLate(ev); ok {
				s.count(ev, res)
				s.verdict(r, res)
				if res.Outcome != attribution.Refused {
					s.engine.AdvanceTo(ev.Time)
				}
				continue
			}
			late.ask(ev.Tenant, ev, ev.Time)
			continue
		}
		s.applyRecord(r)
	}
}

// refold folds again what late records ask.
func (s *State) refold(ctx context.Context, src Source, late *lateRecords) error {
	refold := late.tenants
	if late.directory != nil {
		for _, t := range s.refoldDirectory() {
			if s.folds(t) {
				late.ask(t, late.directory, late.since[""])
			}
		}
	}
	tenants := make([]string, 0, len(refold))
	for t := range refold {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		if err := s.refoldTenant(ctx, src, t, refold[t], late.since[t], late.passed[t]); err != nil {
			s.stale = true
			return err
		}
	}
	return nil
}

// folded returns the place up to which a tenant's fold has gone: its own
// latest record, the directory's, and those of the tenants it reads.
func (s *State) folded(tenant string) place {
	p := later(s.last[tenant], s.last[""])
	for pt := range s.principals[tenant] {
		p = later(p, s.last[pt])
	}
	return p
}

// reads lists the tenants whose State a tenant's fold reads.
func (s *State) Reads(tenant string) []string { return sortedKeys(s.principals[tenant]) }

// notePrincipal remembers the tenants a role assignment's principal lives
// in, when not its own.
func (s *State) notePrincipal(ev *event.Event) {
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
func (s *State) noteLink(ev *event.Event) {
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
func (s *State) applyRecord(r store.Record) {
	res := s.engine.Apply(r.Event)
	s.count(r.Event, res)
	s.file(r.Seq)
	s.verdict(r, res)
	p := placeOf(r)
	s.last[r.Event.Tenant] = later(s.last[r.Event.Tenant], p)
	s.latest = later(s.latest, p)
}

// count counts a record's usage or profiles, of a tenant the state owns.
func (s *State) count(ev *event.Event, res attribution.Result) {
	if s.owned(ev.Tenant) {
		s.agg.Record(ev, res)
	}
}

// verdict keeps what the fold said of a record, of a tenant the state owns.
func (s *State) verdict(r store.Record, res attribution.Result) {
	t := r.Event.Tenant
	if !s.owned(t) {
		return
	}
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
func (s *State) refoldDirectory() []string {
	fresh := attribution.New(s.opts)
	delete(s.refused, "")
	for _, r := range s.directory {
		s.verdict(r, fresh.Apply(r.Event))
	}
	if n := len(s.directory); n > 0 {
		s.last[""] = placeOf(s.directory[n-1])
		s.latest = later(s.latest, s.last[""])
	}
	// The directory's records move the present as a fold of every record
	// would.
	s.engine.AdvanceTo(fresh.Now())
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

// refoldTenant folds one tenant again and adopts the result: its state,
// its verdicts, its month counts, and corrections in the feed for every
// credit interval that moved, caused by the late record cause. Only the
// records that make its state are folded (Tenant); its usage and profiles
// are counted again where their credit moved (recount), and those passed
// over while it waited.
func (s *State) refoldTenant(ctx context.Context, src Source, tenant string, cause *event.Event, since time.Time, passed *passedUses) error {
	for seq, rf := range s.refused[tenant] {
		if !isMeasure(rf.Type) {
			delete(s.refused[tenant], seq)
		}
	}
	var last place
	if passed != nil {
		last = passed.last
	}
	// Instants of several records, at or after the earliest late one:
	// which of them changes a credit may have moved across a use between
	// them.
	at := make(map[time.Time]int)
	for _, r := range s.directory {
		if !r.Event.Time.Before(since) {
			at[r.Event.Time]++
		}
	}
	fresh, err := Tenant(ctx, src, s.opts, s.directory, tenant, s.Reads(tenant), time.Time{}, func(r store.Record, res attribution.Result) {
		if r.Event.Tenant == tenant {
			// A tenant read from now on was not followed before.
			s.noteLink(r.Event)
		}
		s.verdict(r, res)
		last = later(last, placeOf(r))
		if !r.Event.Time.Before(since) {
			at[r.Event.Time]++
		}
	})
	if err != nil {
		return err
	}
	var crowded []time.Time
	for t, n := range at {
		if n > 1 {
			crowded = append(crowded, t)
		}
	}
	before := creditsOf(s.engine, tenant)
	s.engine.AdoptTenant(tenant, fresh)
	s.renoteTenant(tenant)
	after := creditsOf(s.engine, tenant)
	if last != (place{}) {
		s.last[tenant] = later(s.last[tenant], last)
		s.latest = later(s.latest, last)
	}
	if !s.owned(tenant) {
		// Folded for the tenants that read it: nothing to count or file.
		return nil
	}
	if err := s.recount(ctx, src, tenant, before, after, crowded, passed); err != nil {
		return err
	}
	ids := make([]string, 0, len(after.history))
	for id := range after.history {
		ids = append(ids, id)
	}
	for id := range before.history {
		if _, ok := after.history[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, c := range attribution.Corrections(tenant, id, before.history[id], after.history[id]) {
			c.Cause, c.CauseID = cause.Type, cause.ID
			s.outbox = append(s.outbox, Change{s.seq, c})
		}
	}
	return nil
}

// credits are a tenant's credit histories, and the credits its resources
// held for no time (attribution.Transient), by resource.
type credits struct {
	history    map[string][]attribution.Interval
	transients map[string][]attribution.Transient
}

func creditsOf(e *attribution.Engine, tenant string) credits {
	return credits{e.TenantHistory(tenant), e.TenantTransients(tenant)}
}

// shared reports whether a resource's credit was ever shared between
// locations, if only for no time.
func (c credits) shared(id string) bool {
	return attribution.Shared(c.history[id]) ||
		slices.ContainsFunc(c.transients[id], func(t attribution.Transient) bool { return len(t.Credit.Shares) > 0 })
}

// recount counts again, after a tenant was folded again, what its usage
// and profiles count for where their credit moved, and the uses passed
// over while it waited. A use is credited by its resource's credit at its
// time, so the counts of a resource whose credits did not move stand, and
// its uses are not read: a late record that moves no credit costs the
// tenant's few records that make its state, not its millions of uses. For
// a resource whose credit moved, planRecount says which months' uses are
// read again and which months' counts move, unread, from one holder to
// the other. Uses are read again in their places, in a fold of the
// tenant's records (a use is credited by the state after the records
// before it, which a history does not tell apart from those of the same
// instant after it). An organisation's users under a shared credit are
// counted by tenant, not by resource, so a resource whose credit was
// shared before has the whole tenant counted again.
func (s *State) recount(ctx context.Context, src Source, tenant string, before, after credits, crowded []time.Time, passed *passedUses) error {
	var passedFrom map[string]time.Time
	if passed != nil {
		passedFrom = passed.from
	}
	plans := make(map[string]recountPlan)
	for _, ids := range []iter.Seq[string]{maps.Keys(before.history), maps.Keys(after.history), maps.Keys(passedFrom)} {
		for id := range ids {
			if _, done := plans[id]; done {
				continue
			}
			at, wasPassed := passedFrom[id]
			p, ok := planRecount(before, after, id, at, wasPassed)
			if changed := changedAt(crowded, before, after, id); len(changed) > 0 {
				p, ok = p.covering(changed, ok), true
			}
			if !ok {
				continue
			}
			if before.shared(id) {
				s.agg.DropTenant(tenant)
				return s.countAgain(ctx, src, tenant, time.Time{}, time.Time{}, func(store.Record) bool { return true })
			}
			plans[id] = p
		}
	}
	if len(plans) == 0 {
		return nil
	}
	var from, to time.Time
	unbounded := false
	for id, p := range plans {
		s.agg.DropResource(tenant, id, event.MonthOf(p.from), monthOr(p.to))
		switch {
		case p.move == nil:
		case p.move[1].Attributed:
			s.agg.MoveCredit(tenant, id, event.MonthOf(p.to), p.move[0], p.move[1])
		default:
			s.agg.DropResource(tenant, id, event.MonthOf(p.to), "")
		}
		if from.IsZero() || p.from.Before(from) {
			from = p.from
		}
		unbounded = unbounded || p.to.IsZero()
		to = latest(to, p.to)
	}
	if unbounded {
		to = time.Time{}
	}
	return s.countAgain(ctx, src, tenant, from, to, func(r store.Record) bool {
		p, ok := plans[r.Event.Resource]
		return ok && p.reads(r.Event.Time)
	})
}

// countAgain counts the uses of a tenant that want says, from the instant
// from up to, not including, to (zero: no bound), in a fold of the
// records that make its state before from and of all its records after;
// the engine's present moves to the latest of them applied.
func (s *State) countAgain(ctx context.Context, src Source, tenant string, from, to time.Time, want func(store.Record) bool) error {
	scan := func(ctx context.Context, tenant string, fn func(store.Record) error) error {
		// Read whole, as the tenant's fold read it, so that the second
		// copy of a service's state is given the same records.
		err := src.ScanTenantState(ctx, tenant, func(r store.Record) error {
			if r.Event.Time.Before(from) {
				return fn(r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return src.ScanTenantBetween(ctx, tenant, from, to, fn)
	}
	_, err := foldTenant(ctx, src, scan, s.opts, s.directory, tenant, s.Reads(tenant), time.Time{}, func(r store.Record, res attribution.Result) {
		if isMeasure(r.Event.Type) && want(r) {
			s.count(r.Event, res)
			s.verdict(r, res)
			if res.Outcome != attribution.Refused {
				s.engine.AdvanceTo(r.Event.Time)
			}
		}
	})
	return err
}

// recountPlan is what a resource's recount reads and moves: its uses from
// the instant from up to to (zero: every use after from) are counted
// again; when move is set, what was counted from to's month on for
// move[0] is counted for move[1], or for no one when it is not attributed.
type recountPlan struct {
	from, to time.Time
	move     *[2]attribution.Credit
}

// changedAt returns the instants among crowded at which a resource's
// credit changes, before or after: it holds no credit there for no time
// (a Transient), or an interval begins or ends. Elsewhere its credit is
// one through the instant, and a use there is credited by it whatever
// the order of the instant's records.
func changedAt(crowded []time.Time, before, after credits, id string) []time.Time {
	changes := append(before.changes(id), after.changes(id)...)
	var out []time.Time
	for _, t := range crowded {
		if slices.ContainsFunc(changes, t.Equal) {
			out = append(out, t)
		}
	}
	return out
}

// changes lists the instants at which a resource's credit changes: an
// interval begins or ends, or a credit is held for no time.
func (c credits) changes(id string) []time.Time {
	var out []time.Time
	for _, iv := range c.history[id] {
		out = append(out, iv.From)
		if !iv.To.IsZero() {
			out = append(out, iv.To)
		}
	}
	for _, t := range c.transients[id] {
		out = append(out, t.At)
	}
	return out
}

// covering returns the plan extended to read the months of the instants
// given, or (planned false) a plan of those months alone: a use of an
// instant of several records at which the credit changes may be credited
// otherwise though no credit moved.
func (p recountPlan) covering(crowded []time.Time, planned bool) recountPlan {
	first, last := slices.MinFunc(crowded, time.Time.Compare), slices.MaxFunc(crowded, time.Time.Compare)
	end := monthStart(last).AddDate(0, 1, 0)
	if !planned {
		return recountPlan{from: monthStart(first), to: end}
	}
	if first.Before(p.from) {
		p.from = monthStart(first)
	}
	if !p.to.IsZero() && p.to.Before(end) {
		p.to = end
	}
	return p
}

func (p recountPlan) reads(at time.Time) bool {
	return !at.Before(p.from) && (p.to.IsZero() || at.Before(p.to))
}

// planRecount plans the recount of a resource id whose credits were
// before and are after, and whose uses were passed over from passedAt
// when passed; false when nothing is to be counted again. Its uses are
// read again from the month in which its credits first differ. From the
// month after the last change of either on, each holds one credit: when
// both hold the resource, of one kind, counted for one holder each (or for
// no one after), the counts there move (or are dropped) without a read.
// Otherwise, or when uses were passed over, every use from the first month
// on is read.
func planRecount(before, after credits, id string, passedAt time.Time, passed bool) (recountPlan, bool) {
	h0, h1 := before.history[id], after.history[id]
	first, differ := attribution.MeasuresDiffer(h0, h1, before.transients[id], after.transients[id])
	if passed && (!differ || passedAt.Before(first)) {
		first = passedAt
	}
	if !differ && !passed {
		return recountPlan{}, false
	}
	p := recountPlan{from: monthStart(first)}
	if passed || len(h0) == 0 || len(h1) == 0 {
		return p, true
	}
	last := first
	for _, t := range append(before.changes(id), after.changes(id)...) {
		last = latest(last, t)
	}
	end := monthStart(last).AddDate(0, 1, 0)
	f0, f1 := h0[len(h0)-1], h1[len(h1)-1]
	open0, open1 := f0.To.IsZero(), f1.To.IsZero()
	switch {
	case !open0 && !open1:
		// Gone in both: its uses there are refused in both.
		p.to = end
	case !open0 || !open1 || f0.Kind != f1.Kind || len(f0.Credit.Shares) > 0 || len(f1.Credit.Shares) > 0:
		// Its uses there may be refused otherwise, or counted by shares.
	case f1.Credit.Attributed && !f0.Credit.Attributed:
		// Its uses there counted for no one: they are not in the counts.
	default:
		p.to = end
		p.move = &[2]attribution.Credit{f0.Credit, f1.Credit}
	}
	return p, true
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// monthOr returns the month of t, "" when t is zero.
func monthOr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return event.MonthOf(t)
}

func latest(t, u time.Time) time.Time {
	if u.After(t) {
		return u
	}
	return t
}

// refusal returns the verdict refusing a stored record, or nil.
func (s *State) Refusal(tenant string, seq int64) *event.Refusal {
	return s.refused[tenant][seq]
}

// Refusals lists the records refused as the state stands, by sequence
// number, of the tenants for which in is true ("" is the directory), of
// every tenant when in is nil.
func (s *State) Refusals(in func(tenant string) bool) []StoredRefusal {
	var out []StoredRefusal
	for t, rs := range s.refused {
		if in != nil && !in(t) {
			continue
		}
		for seq, rf := range rs {
			out = append(out, StoredRefusal{Seq: seq, Type: rf.Type, Code: rf.Code, Message: rf.Message})
		}
	}
	slices.SortFunc(out, func(a, b StoredRefusal) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// StoredRefusal is a stored record that the state refuses.
type StoredRefusal struct {
	Seq     int64      `json:"seq"`
	Type    string     `json:"type"`
	Code    event.Code `json:"code"`
	Message string     `json:"message"`
}

// Directory returns the directory's records, for a fold of one tenant
// that a reader makes on its own.
func (s *State) Directory() []store.Record {
	return slices.Clone(s.directory)
}

// Engine is the state's engine, for readers: what they keep of it past
// their read must be a copy.
func (s *State) Engine() *attribution.Engine { return s.engine }

// Metrics is the state's monthly aggregates.
func (s *State) Metrics() *metrics.Aggregator { return s.agg }

// Seq is the sequence number of the last record folded.
func (s *State) Seq() int64 { return s.seq }

// Stale reports whether the state may differ from the log: a write failed
// after it folded its records, and its next CatchUp folds it again.
func (s *State) Stale() bool { return s.stale }

// MarkStale says the state may differ from the log.
func (s *State) MarkStale() { s.stale = true }

// SinceSnapshot counts the records folded since the last snapshot.
func (s *State) SinceSnapshot() int { return s.sinceSnapshot }

// Snapshotted says that a snapshot holds n more of the records folded.
func (s *State) Snapshotted(n int) { s.sinceSnapshot -= n }

// Tenants lists, in order, the tenants that have records.
func (s *State) Tenants() []string {
	out := make([]string, 0, len(s.last))
	for t := range s.last {
		if t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Linking lists, in order, the tenants in which a pal.linked names a
// partner ID, whatever became of it.
func (s *State) Linking(partnerID string) []string { return sortedKeys(s.linkedBy[partnerID]) }

// Dependents lists, in order, the tenants whose folds read a tenant's
// state: those whose role assignments name its accounts and groups.
func (s *State) Dependents(tenant string) []string { return sortedKeys(s.dependents[tenant]) }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
