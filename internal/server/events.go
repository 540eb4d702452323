package server

import (
	"cmp"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// maxBatchBytes bounds the body of one POST /v1/events.
const maxBatchBytes = 64 << 20

// write runs fn inside a write of the log, and folds what fn appended
// before the write commits. fn is given the write's own context, not its
// caller's: a caller that goes away does not cancel the others' writes. Concurrent writes are committed together: each
// caller queues its fn, and one of them leads, running every queued fn in
// one transaction with one commit (group commit), so that one flush to disk
// serves them all. An error that fn returns before it appends anything is
// its caller's alone; any other error fails the whole group. When a group
// fails after the state folded its records, the state is marked stale and
// folded again on its next use.
func (s *Server) write(ctx context.Context, fn func(ctx context.Context, w store.Writer) error) error {
	req := &writeRequest{fn: fn, done: make(chan struct{})}
	c := &s.commits
	c.mu.Lock()
	c.queue = append(c.queue, req)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if lead {
		s.lead()
	}
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		// The write goes on, and commits or fails, without its caller.
		return ctx.Err()
	}
}

// writeRequest is one caller's part of a group commit.
type writeRequest struct {
	fn   func(ctx context.Context, w store.Writer) error
	err  error
	done chan struct{}
}

// commits is the queue of writes waiting for the next group commit.
type commits struct {
	mu      sync.Mutex
	queue   []*writeRequest
	leading bool
}

// lead commits the queued writes as one group, then hands the lead to a
// new goroutine if more have queued meanwhile.
func (s *Server) lead() {
	c := &s.commits
	c.mu.Lock()
	group := c.queue
	c.queue = nil
	c.mu.Unlock()
	s.commitGroup(group)
	for _, req := range group {
		close(req.done)
	}
	// The next group waits for the snapshot; readers do not.
	s.snapshotIfDue(context.Background())
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) > 0 {
		go s.lead()
		return
	}
	c.leading = false
}

// commitGroup runs a group of writes in one transaction.
func (s *Server) commitGroup(group []*writeRequest) {
	ctx := context.Background()
	s.committing.Lock()
	defer s.committing.Unlock()
	folded := false
	var queued []fold.Change
	// The state is told the buckets held before the write takes the
	// log's lock: what it gains it folds meanwhile.
	if err := s.reown(ctx, s.store); err != nil {
		for _, req := range group {
			req.err = err
		}
		return
	}
	err := s.store.Write(ctx, func(w store.Writer) error {
		// What other processes committed is folded first, so that each fn
		// sees the state of the log it appends to. The group holds the
		// log's lock, so the store's last record is the transaction's.
		if err := s.sync(ctx, w); err != nil {
			return err
		}
		var changes []fold.Change
		for _, req := range group {
			rw := &recordingWriter{Writer: w}
			if req.err = req.fn(ctx, rw); req.err != nil {
				if len(rw.records) > 0 {
					return req.err
				}
				continue
			}
			// What fn appended is folded from memory, not read back, and
			// the changes it causes are filed with it.
			folded = folded || len(rw.records) > 0
			caused, err := update(s.views, w, func(st *fold.State, src fold.Source) ([]fold.Change, error) {
				err := st.Fold(ctx, src, rw.records)
				return st.TakeOutbox(), err
			})
			if err != nil {
				return err
			}
			changes = append(changes, caused...)
		}
		if s.own != nil {
			var err error
			queued, err = s.fileOwned(ctx, w, changes)
			return err
		}
		return fileChanges(ctx, w, changes)
	})
	if err == nil {
		return
	}
	// The others' changes it took to file are filed by the next filing.
	s.requeue(queued)
	if folded {
		// The state folded what the log did not take.
		update(s.views, s.store, func(st *fold.State, _ fold.Source) (struct{}, error) {
			st.MarkStale()
			return struct{}{}, nil
		})
	}
	for _, req := range group {
		if req.err == nil {
			req.err = err
		}
	}
}

// recordingWriter keeps what a write appends, as the records the store
// will hold: the events as they will read back, with their sequence numbers.
type recordingWriter struct {
	store.Writer
	records []store.Record
}

func (w *recordingWriter) Append(ctx context.Context, events []*event.Event) ([]int64, error) {
	seqs, err := w.Writer.Append(ctx, events)
	for i, seq := range seqs {
		if seq == 0 {
			continue
		}
		ev := *events[i]
		ev.Line = 0
		w.records = append(w.records, store.Record{Seq: seq, Event: &ev})
	}
	return seqs, err
}

// verdicts are what became of the events of a batch: each stored one is
// accepted (applied now) or held (stored, refused by the state as of now);
// a duplicate is not stored.
type verdicts struct {
	seqs []int64
	held []*event.Refusal // by event, nil unless held
}

// submit stores events at the end of the log, inside write, and returns
// a function that reads their verdicts from the state once it has folded
// them.
func (s *Server) submit(ctx context.Context, w store.Writer, events []*event.Event) (func(st *fold.State) verdicts, error) {
	seqs, err := w.Append(ctx, events)
	if err != nil {
		return nil, err
	}
	return func(st *fold.State) verdicts {
		v := verdicts{seqs: seqs, held: make([]*event.Refusal, len(events))}
		for i, seq := range seqs {
			if seq == 0 {
				continue
			}
			if rf := st.Refusal(events[i].Tenant, seq); rf != nil {
				held := *rf
				held.Line = events[i].Line
				v.held[i] = &held
			}
		}
		return v
	}, nil
}

// Ingest stores events at the end of the log, as POST /v1/events does for
// the lines that pass its checks, and says what became of them.
func (s *Server) Ingest(ctx context.Context, events []*event.Event) (accepted, held, duplicates int, err error) {
	var res api.IngestResult
	err = s.ingest(ctx, events, &res)
	return res.Accepted, len(res.Held), res.Duplicates, err
}

// ingest stores events and counts their verdicts into res.
func (s *Server) ingest(ctx context.Context, events []*event.Event, res *api.IngestResult) error {
	// Nothing is stored that no owner could say what became of.
	if err := s.judged(ctx, events); err != nil {
		return err
	}
	var outcome func(st *fold.State) verdicts
	err := s.write(ctx, func(ctx context.Context, wr store.Writer) error {
		var err error
		outcome, err = s.submit(ctx, wr, events)
		return err
	})
	if err != nil {
		return err
	}
	var v verdicts
	s.views.read(func(st *fold.State) error {
		v = outcome(st)
		return nil
	})
	// The lines of tenants another process folds: their owners say.
	away, err := s.verdictsAway(ctx, events, v.seqs)
	if err != nil {
		return err
	}
	for i, rf := range away {
		v.held[i] = rf
	}
	for i, seq := range v.seqs {
		switch {
		case seq == 0:
			res.Duplicates++
		case v.held[i] != nil:
			res.Held = append(res.Held, v.held[i])
		default:
			res.Accepted++
		}
	}
	return nil
}

// readBatch reads a batch of events posted to the service, every line of
// it: the refusals of the lines, and of the events that check refuses, go
// into refused, the rest comes back. A body over its limit is an error.
func readBatch(body io.Reader, check func(*event.Event) *event.Refusal, refused *[]*event.Refusal) ([]*event.Event, error) {
	var events []*event.Event
	err := event.NewReader(body).Each(func(ev *event.Event, rf *event.Refusal) error {
		if rf == nil {
			rf = check(ev)
		}
		if rf != nil {
			*refused = append(*refused, rf)
			return nil
		}
		events = append(events, ev)
		return nil
	})
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errorf(codeBadRequest, "the batch is larger than %d bytes; send it in smaller batches", tooLarge.Limit)
	}
	if err != nil {
		return nil, errorf(codeBadRequest, "read the batch: %v", err)
	}
	return events, nil
}

// maxAhead is how far after the service's clock a line other than the
// operator's may be: the clocks of the machines that push may run ahead.
const maxAhead = 5 * time.Minute

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request, p Principal) error {
	body := http.MaxBytesReader(w, r.Body, maxBatchBytes)
	res := api.IngestResult{Held: []*event.Refusal{}, Refused: []*event.Refusal{}}
	events, err := readBatch(body, func(ev *event.Event) *event.Refusal {
		if why := pushRefused(p, ev); why != "" {
			return event.Refuse(ev, event.Forbidden, "%s", why)
		}
		if ev.Time.Before(store.Earliest) || ev.Time.After(store.Latest) {
			return event.Refuse(ev, event.InvalidTime, "time %s is outside the instants the service keeps, %s to %s (nanoseconds since 1970 in 64 bits)",
				ev.Time.Format(time.RFC3339), store.Earliest.Format(time.RFC3339), store.Latest.Format(time.RFC3339))
		}
		if now := s.cfg.Clock(); p.Role != store.RoleOperator && ev.Time.After(now.Add(maxAhead)) {
			// The present of every answer is the latest event's time: a
			// line from the future would move it for every caller, for
			// good.
			return event.Refuse(ev, event.Forbidden, "time %s is after the service's clock (%s): a %s pushes what happened, up to now; only the operator may push later lines",
				ev.Time.Format(time.RFC3339), now.UTC().Format(time.RFC3339), p.Role)
		}
		ev.Imported = p.imports(ev)
		return nil
	}, &res.Refused)
	if err != nil {
		return err
	}
	return s.ingestAndAnswer(w, r, p, events, res)
}

// ingestAndAnswer charges p for the events of a push, ingests them, counts
// what became of them and answers it, the refusals of its lines res holds
// already in line order.
func (s *Server) ingestAndAnswer(w http.ResponseWriter, r *http.Request, p Principal, events []*event.Event, res api.IngestResult) error {
	if err := s.limits.charge(p, len(events), s.cfg.Clock()); err != nil {
		return err
	}
	if err := s.ingest(r.Context(), events, &res); err != nil {
		return err
	}
	slices.SortFunc(res.Refused, func(a, b *event.Refusal) int { return a.Line - b.Line })
	s.m.events.WithLabelValues("accepted").Add(float64(res.Accepted))
	s.m.events.WithLabelValues("held").Add(float64(len(res.Held)))
	s.m.events.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	s.m.events.WithLabelValues("refused").Add(float64(len(res.Refused)))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// getLog streams the log as NDJSON v1, in sequence order, then the
// consumption kept as segments: all of it to the operator, a tenant's own
// events to its administrator, read from the store by tenant, with the
// registrations of the organisations its credit reads (registered).
func (s *Server) getLog(w http.ResponseWriter, r *http.Request, p Principal) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	out := event.NewWriter(w)
	write := func(rec store.Record) error { return out.Write(rec.Event) }
	var err error
	tenant, scoped := p.tenantScope()
	if scoped {
		var reads func(*event.Event) bool
		if reads, err = s.registered(r.Context(), tenant); err != nil {
			return err
		}
		err = s.store.TenantLog(r.Context(), tenant, func(rec store.Record) error {
			if rec.Event.Tenant == "" && !reads(rec.Event) {
				return nil
			}
			return write(rec)
		})
	} else {
		err = s.store.Scan(r.Context(), 0, write)
	}
	if err != nil {
		return err
	}
	// Then what pushed consumption files added, kept out of the log.
	if err := s.logConsumption(r.Context(), out, tenant); err != nil {
		return err
	}
	return out.Flush()
}

// registered says which of the directory's registrations a tenant's credit
// reads: those that name a partner ID its accounts link, or that share an
// ID with one that does (a registration refused for an ID another holds
// changes which holds it), and so on. Another organisation's cannot change
// its credit, and a tenant's administrator is not shown them.
func (s *Server) registered(ctx context.Context, tenant string) (func(*event.Event) bool, error) {
	ids := map[string]bool{}
	var regs []*event.Event
	err := s.store.TenantLog(ctx, tenant, func(rec store.Record) error {
		switch ev := rec.Event; {
		case ev.Type == event.PalLinked:
			ids[ev.Partner] = true
		case ev.Tenant == "":
			regs = append(regs, ev)
		}
		return nil
	})
	names := func(ev *event.Event) bool {
		return ids[ev.Org] || slices.ContainsFunc(ev.Locations, func(id string) bool { return ids[id] })
	}
	orgs := map[string]bool{}
	for grew := true; grew; {
		grew = false
		for _, ev := range regs {
			if !orgs[ev.Org] {
				if !names(ev) {
					continue
				}
				orgs[ev.Org], grew = true, true
			}
			for _, id := range append([]string{ev.Org}, ev.Locations...) {
				if !ids[id] {
					ids[id], grew = true, true
				}
			}
		}
	}
	return func(ev *event.Event) bool { return orgs[ev.Org] }, err
}

// getRefusals pages through the stored records that the state refuses as
// it stands, by sequence number after ?after=, at most ?limit= a page.
func (s *Server) getRefusals(w http.ResponseWriter, r *http.Request, p Principal) error {
	after, limit, err := pageParams(r, "after")
	if err != nil {
		return err
	}
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (pagePart[fold.StoredRefusal], error) {
		return refusalsPart(st, p.readsRefusals(owns), after, limit), nil
	})
	if err != nil {
		return err
	}
	page, more := mergePage(parts, limit, func(a, b fold.StoredRefusal) int { return cmp.Compare(a.Seq, b.Seq) })
	var next *int64
	if more {
		n := page[len(page)-1].Seq
		next = &n
	}
	writeJSON(w, http.StatusOK, map[string]any{"refused": page, "next": next})
	return nil
}

// readsRefusals returns whose refusals p reads of the tenants owns names:
// a tenant administrator its tenant's, the operator every one's, the
// directory's with them.
func (p Principal) readsRefusals(owns func(string) bool) func(tenant string) bool {
	if tenant, scoped := p.tenantScope(); scoped {
		return func(t string) bool { return t == tenant && owns(t) }
	}
	return owns
}

// refusalsPart returns the part of a page of the refusals of the tenants
// for which in is true: those after the sequence number after, at most
// limit.
func refusalsPart(st *fold.State, in func(string) bool, after int64, limit int) pagePart[fold.StoredRefusal] {
	part := pagePart[fold.StoredRefusal]{Items: []fold.StoredRefusal{}}
	for _, rf := range st.Refusals(in) {
		if rf.Seq > after && !part.add(rf, limit) {
			break
		}
	}
	return part
}

// getIntake says what comes in, for the operator: events by day, and the
// held events by refusal code.
func (s *Server) getIntake(w http.ResponseWriter, r *http.Request, p Principal) error {
	days := 30
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3660 {
			return errorf(codeBadRequest, "days=%q is not a number of days from 1 to 3660", v)
		}
		days = n
	}
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (intakePart, error) {
		perDay, err := s.store.LogDays(r.Context())
		if err != nil {
			return intakePart{}, err
		}
		return intakePartOf(st, owns, days, perDay), nil
	})
	if err != nil {
		return err
	}
	out, held := mergeIntake(parts)
	total := 0
	for _, n := range held {
		total += n
	}
	if len(out) > 0 {
		pushed, err := s.store.ConsumptionDays(r.Context(), out[0].Day, out[len(out)-1].Day)
		if err != nil {
			return err
		}
		for i := range out {
			out[i].Consumption = pushed[out[i].Day]
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"days": out, "held": total, "held_by_code": held})
	return nil
}

// intakeDay is what came in on a day.
type intakeDay struct {
	Day    string `json:"day"`
	Events int    `json:"events"`
	// Consumption counts the records of consumption files pushed, kept
	// out of the log, by the day they were reported.
	Consumption int `json:"consumption"`
}

// intakePart is an owner's part of what comes in: the events of the log
// on each day up to the present, which the store counts for every process
// (store.LogDays); and the held events of its tenants, and apart the
// directory's, which every process holds, by code.
type intakePart struct {
	Days      []intakeDay        `json:"days"`
	Held      map[event.Code]int `json:"held"`
	Directory map[event.Code]int `json:"directory"`
}

// intakePartOf returns the part of what comes in over the tenants owns
// names, on the days days up to the present, of the log's records by day.
func intakePartOf(st *fold.State, owns func(string) bool, days int, perDay map[string]int) intakePart {
	part := intakePart{Held: map[event.Code]int{}, Directory: map[event.Code]int{}}
	end := st.Engine().Now()
	for i := days - 1; i >= 0; i-- {
		d := end.AddDate(0, 0, -i).Format(time.DateOnly)
		part.Days = append(part.Days, intakeDay{Day: d, Events: perDay[d]})
	}
	for _, rf := range st.Refusals(func(t string) bool { return t != "" && owns(t) }) {
		part.Held[rf.Code]++
	}
	for _, rf := range st.Refusals(func(t string) bool { return t == "" }) {
		part.Directory[rf.Code]++
	}
	return part
}

// mergeIntake makes what comes in of its parts: the days of one, as every
// process counts them, and the held events by code, the directory's once.
func mergeIntake(parts []intakePart) ([]intakeDay, map[event.Code]int) {
	held := maps.Clone(parts[0].Directory)
	for _, p := range parts {
		for code, n := range p.Held {
			held[code] += n
		}
	}
	return slices.Clone(parts[0].Days), held
}
