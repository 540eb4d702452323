package server

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/usage"
)

// The service keeps consumption pushed as files out of the log and out of
// its state's memory: each push is stored as segments, one a month
// (store.Segment), and a month's report merges that month's segments with
// what the log holds of it (azure.consumption events, which stay in the
// log and in the state). The state only notes which resources have any,
// so that they are listed among their tenants' Azure resources.

// maxConsumptionBytes is the largest consumption file the service reads
// at once.
const maxConsumptionBytes = 256 << 20

// consumptionNotes is how far the state noted the store's resources with
// consumption (store.Store.ConsumptionResources), and the last segment it
// knows of: what the answers kept for the state depend on besides the log.
type consumptionNotes struct {
	mu      sync.Mutex
	seen    int64
	segment atomic.Int64
}

// postConsumption reads a consumption file (Parquet: the columns of pal
// report azure --consumption) and keeps its rows as segments, each the
// azure.consumption record it stands for, reported at the instant of the
// service's state, as the command line reports a file's records at the
// log's last instant: a row whose tenant, resource, day and meter the log
// has replaces it. Rows are checked as log lines are, and refused in words
// with their row number; the others are kept, all or none.
func (s *Server) postConsumption(w http.ResponseWriter, r *http.Request, p Principal) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxConsumptionBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errorf(codeBadRequest, "the file is larger than %d bytes; send it in parts (a file a month, or a tenant's)", maxConsumptionBytes)
	}
	if err != nil {
		return errorf(codeBadRequest, "read the file: %v", err)
	}
	var at time.Time
	if err := s.read(r.Context(), func(st *fold.State) error { at = st.Engine().Now(); return nil }); err != nil {
		return err
	}
	if at.IsZero() {
		// An empty log has no instant yet: the rows are reported now.
		at = s.cfg.Clock().UTC()
	}
	res := api.IngestResult{Held: []*event.Refusal{}, Refused: []*event.Refusal{}}
	months := map[string][][]usage.CostRow{}
	monthOf := map[int32]string{}
	allowed := map[string]bool{}
	// A month's rows are gathered in runs and joined once: one slice grown
	// by appends copied a million rows again at every doubling.
	add := func(row usage.CostRow) {
		month, ok := monthOf[row.Day]
		if !ok {
			month = event.DayStart(row.Day).Format("2006-01")
			monthOf[row.Day] = month
		}
		runs := months[month]
		if len(runs) == 0 || len(runs[len(runs)-1]) == cap(runs[len(runs)-1]) {
			runs = append(runs, make([]usage.CostRow, 0, 1<<14))
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], row)
		months[month] = runs
		res.Accepted++
	}
	cr := event.NewConsumptionReader()
	reported := at.UnixNano()
	var cols usage.CostColumns
	err = usage.ReadConsumption(r.Context(), bytes.NewReader(data), int64(len(data)), func(b *usage.ConsumptionBatch) error {
		for i := range b.Len() {
			// A row known good by its dictionary entries, pushed by one
			// who may, is kept as it is; any other is read as the log
			// line it stands for, which says what is wrong with it.
			if c, ok := cols.Cost(b, i); ok {
				may, seen := allowed[c.Tenant]
				if !seen {
					may = pushRefused(p, &event.Event{Type: event.AzureConsumption, Tenant: c.Tenant}) == ""
					allowed[c.Tenant] = may
				}
				if may {
					add(usage.CostRow{Tenant: c.Tenant, Resource: c.Resource, Day: c.Day, Meter: int32(c.Meter), Nanos: c.Nanos, At: reported})
					continue
				}
			}
			line, tenant, resource, date, cost, meter := b.Row(i)
			ev, rf := cr.Event(line, at, tenant, resource, date, cost, meter)
			if rf == nil && pushRefused(p, ev) != "" {
				rf = event.Refuse(ev, event.Forbidden, "a %s may not push consumption for tenant %q", p.Role, ev.Tenant)
			}
			if rf != nil {
				res.Refused = append(res.Refused, rf)
				continue
			}
			row := usage.CostRow{Tenant: ev.Tenant, Resource: ev.Resource, Day: event.DayNumber(ev.Date),
				Meter: int32(event.MeterIndex(ev.Meter)), At: reported}
			if n, ok := azure.ParseNanos(ev.Cost); ok {
				row.Nanos = n
			} else {
				row.Exact = ev.Cost
			}
			add(row)
		}
		return nil
	})
	if err != nil {
		return errorf(codeBadRequest, "the body is no consumption file: %v", err)
	}
	if err := s.limits.charge(p, res.Accepted, s.cfg.Clock()); err != nil {
		return err
	}
	var segments []store.Segment
	var noted []store.TenantResource
	for _, month := range slices.Sorted(maps.Keys(months)) {
		rows := usage.SortCostRows(slices.Concat(months[month]...))
		months[month] = nil
		data, err := usage.WriteSegment(rows)
		if err != nil {
			return err
		}
		segments = append(segments, store.Segment{Month: month, Rows: len(rows), Data: data, Reported: at})
		for i, row := range rows {
			if i == 0 || row.Tenant != rows[i-1].Tenant || row.Resource != rows[i-1].Resource {
				noted = append(noted, store.TenantResource{Tenant: row.Tenant, Resource: row.Resource})
			}
		}
	}
	// The resources the state lists already are in the store, or in the
	// log: only the others need noting.
	if err := s.read(r.Context(), func(st *fold.State) error {
		az := st.Engine().Azure()
		noted = slices.DeleteFunc(noted, func(k store.TenantResource) bool { return az.HasConsumption(k.Tenant, k.Resource) })
		return nil
	}); err != nil {
		return err
	}
	slices.SortFunc(noted, func(a, b store.TenantResource) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
	noted = slices.Compact(noted)
	if len(segments) > 0 {
		if err := s.store.AppendConsumption(r.Context(), segments, noted); err != nil {
			return err
		}
		// The rows are stored: should the state fail to note them now, the
		// next read notes them, and the push is not to be sent again.
		if err := s.noteConsumption(r.Context(), true); err != nil {
			s.m.storeErrors.Inc()
			s.log.Error("noting pushed consumption failed; the next read notes it", "err", err)
		}
		for _, seg := range segments {
			if err := s.compactConsumption(r.Context(), seg.Month); err != nil {
				s.m.storeErrors.Inc()
				s.log.Error("compacting a month's consumption failed; the next push tries again", "month", seg.Month, "err", err)
			}
		}
	}
	slices.SortFunc(res.Refused, func(a, b *event.Refusal) int { return a.Line - b.Line })
	s.m.events.WithLabelValues("accepted").Add(float64(res.Accepted))
	s.m.events.WithLabelValues("refused").Add(float64(len(res.Refused)))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// compactAfter is how many segments a month may have before a push merges
// them into one: a report reads every segment of its month at once.
const compactAfter = 16

// compactConsumption merges a month's segments into one once there are
// more than compactAfter, each resource, day and meter once, so that many
// small pushes cost a report no more than one large one.
func (s *Server) compactConsumption(ctx context.Context, month string) error {
	n, err := s.store.SegmentCount(ctx, month)
	if err != nil || n <= compactAfter {
		return err
	}
	var segments []usage.Source
	var last int64
	err = s.store.ConsumptionSegments(ctx, month, func(seg store.Segment) error {
		segments, last = append(segments, usage.Source{Data: seg.Data, After: seg.After}), seg.ID
		return nil
	})
	if err != nil {
		return err
	}
	// Each merged row keeps its own place in the log.
	w, rows := usage.NewSegmentWriter(), 0
	err = usage.MergeSegments(segments, nil, func(r *usage.CostRow) error {
		rows++
		return w.Write(r)
	})
	if err != nil {
		return err
	}
	data, err := w.Close()
	if err != nil {
		return err
	}
	// Another process may have compacted them first: then its merge
	// stands, and nothing is lost either way.
	_, err = s.store.CompactConsumption(ctx, month, last, store.Segment{Month: month, Rows: rows, Data: data})
	return err
}

// noteConsumption notes, in both copies of the state, the resources with
// consumption that the store noted since it last looked: this process's
// pushes and other processes'. A reader does not wait (wait false) for
// another caller that is noting: it reads the state as it is, the notes
// a moment behind; a pusher waits, to read its own push.
func (s *Server) noteConsumption(ctx context.Context, wait bool) error {
	_, segment, err := s.store.Heads(ctx)
	if err != nil {
		return err
	}
	return s.noteConsumptionTo(ctx, segment, wait)
}

// noteConsumptionTo is noteConsumption once the last segment is known.
func (s *Server) noteConsumptionTo(ctx context.Context, segment int64, wait bool) error {
	n := &s.consumption
	if segment == n.segment.Load() {
		return nil
	}
	if !wait {
		if !n.mu.TryLock() {
			return nil
		}
	} else {
		n.mu.Lock()
	}
	defer n.mu.Unlock()
	var found []store.TenantResource
	last := n.seen
	err := s.store.ConsumptionResources(ctx, n.seen, func(id int64, r store.TenantResource) error {
		found, last = append(found, r), id
		return nil
	})
	if err != nil {
		return err
	}
	if len(found) > 0 {
		_, err = update(s.views, nil, func(st *fold.State, _ fold.Source) (struct{}, error) {
			st.NoteConsumption(found)
			return struct{}{}, nil
		})
		if err != nil {
			return err
		}
	}
	n.seen = last
	if segment > n.segment.Load() {
		n.segment.Store(segment)
	}
	return nil
}

// version is what an answer computed from a state depends on: the log
// folded, and the consumption kept as segments.
type version struct{ seq, segment int64 }

// versionOf returns the version of a state read.
func (s *Server) versionOf(st *fold.State) version {
	return version{st.Seq(), s.consumption.segment.Load()}
}

// monthRows calls fn with a month's consumption as its report reads it:
// the records the state holds of the month (from the log) merged with the
// month's segments, in the order of tenant, resource, day and meter, each
// once, the record reported last; of the tenants owns names, every tenant
// when nil. It reports false, and calls nothing, when the month has no
// segment: the state holds all of it.
func (s *Server) monthRows(ctx context.Context, az *azure.Engine, month string, owns func(tenant string) bool, fn func(*usage.CostRow) error) (bool, error) {
	segments, err := s.monthSegments(ctx, month)
	if err != nil || len(segments) == 0 {
		return false, err
	}
	kept, err := keptRows(az, month, owns)
	if err != nil {
		return false, err
	}
	return true, s.mergeMonth(ctx, segments, kept, owns, fn)
}

// monthSegments returns the segments of the consumption pushed for a month.
func (s *Server) monthSegments(ctx context.Context, month string) ([]usage.Source, error) {
	var segments []usage.Source
	err := s.store.ConsumptionSegments(ctx, month, func(seg store.Segment) error {
		segments = append(segments, usage.Source{Data: seg.Data, After: seg.After})
		return nil
	})
	return segments, err
}

// keptRows returns the records an engine holds of a month, of the tenants
// owns names (every tenant when nil), as rows of the log.
func keptRows(az *azure.Engine, month string, owns func(tenant string) bool) ([]usage.CostRow, error) {
	var kept []usage.CostRow
	err := az.MonthRecords(month, func(tenant, path string, rec azure.CostRecord, exact string) {
		if owns != nil && !owns(tenant) {
			return
		}
		row := usage.CostRow{Tenant: tenant, Resource: path, Day: rec.Day, Meter: int32(rec.Meter), Nanos: rec.Nanos, Exact: exact,
			At: rec.At, Place: usage.LogPlace}
		if exact != "" {
			row.Nanos = 0
		}
		kept = append(kept, row)
	})
	return kept, err
}

// mergeMonth calls fn with the rows of a month's segments merged with the
// log's rows kept, of the tenants owns names (every tenant when nil).
func (s *Server) mergeMonth(ctx context.Context, segments []usage.Source, kept []usage.CostRow, owns func(tenant string) bool, fn func(*usage.CostRow) error) error {
	if len(kept) > 0 {
		segments = append([]usage.Source{{Sorted: usage.SortCostRows(kept)}}, segments...)
	}
	return usage.MergeSegments(segments, s.logLater(ctx), func(r *usage.CostRow) error {
		if owns != nil && !owns(r.Tenant) {
			return nil
		}
		return fn(r)
	})
}

// logLater returns what tells, of a record of the log and a pushed one
// reported at the same instant for the same resource, day and meter,
// whether the log's came later: whether the log's record that the state
// keeps was stored after the push. Such ties are rare, and each is looked
// up in the log.
func (s *Server) logLater(ctx context.Context) func(log, pushed *usage.CostRow) (bool, error) {
	return func(log, pushed *usage.CostRow) (bool, error) {
		at := time.Unix(0, log.At).UTC()
		day := event.DayStart(log.Day).Format(time.DateOnly)
		var seq int64
		err := s.store.ScanTenantAt(ctx, log.Tenant, at, func(r store.Record) error {
			ev := r.Event
			if ev.Type == event.AzureConsumption && ev.Date == day && event.MeterIndex(ev.Meter) == int(log.Meter) {
				if sc, err := event.ParseResourcePath(ev.Resource); err == nil && sc.Path == log.Resource {
					seq = r.Seq
				}
			}
			return nil
		})
		return seq > pushed.Place-1, err
	}
}

// azureReport is the Azure report of a month (YYYY-MM) of the tenants
// owns names on a state: its recognition, and the month's consumption, in
// the log and in segments. Its rows are those tenants'; its organisations'
// totals are too, and only the merge of every owner's part
// (mergeAzureReport) has those of every tenant.
func (s *Server) azureReport(ctx context.Context, st *fold.State, owns func(tenant string) bool, month string) (azure.Report, error) {
	az := st.Engine().Azure()
	m, err := az.Month(month)
	if err != nil {
		return azure.Report{}, err
	}
	var slot azure.MonthSlot
	var at store.TenantResource
	merged, err := s.monthRows(ctx, az, month, owns, func(r *usage.CostRow) error {
		if r.Tenant != at.Tenant || r.Resource != at.Resource || slot == (azure.MonthSlot{}) {
			at = store.TenantResource{Tenant: r.Tenant, Resource: r.Resource}
			slot = m.Slot(r.Tenant, r.Resource)
		}
		if r.Exact != "" {
			slot.PutExact(r.Day, uint8(r.Meter), r.Exact)
		} else {
			slot.Put(r.Day, uint8(r.Meter), r.Nanos)
		}
		return nil
	})
	if err != nil {
		return azure.Report{}, err
	}
	if !merged {
		return az.ReportOf(month, owns)
	}
	return m.Merged(), nil
}

// azurePart returns an owner's part of the Azure report of a month.
func (s *Server) azurePart(ctx context.Context, st *fold.State, owns func(tenant string) bool, month string) (azure.Part, error) {
	rep, err := s.azureReport(ctx, st, owns, month)
	return azure.PartOf(rep), err
}

// mergeAzureReport makes the Azure report of a month of its parts.
func (s *Server) mergeAzureReport(month string, parts []azure.Part) azure.Report {
	return s.cfg.Options.Azure.Merge(month, parts)
}

// azureCosts returns what customers paid in a month for each of some
// Azure resources, every meter but marketplace: the most a partner can be
// credited for it that month. az is the engine of the instant asked, and
// upTo, when not zero, that instant: the costs pushed as files count when
// reported by then.
func (s *Server) azureCosts(ctx context.Context, az *azure.Engine, month string, want map[store.TenantResource]bool, upTo time.Time) (map[store.TenantResource]azure.Money, error) {
	out := make(map[store.TenantResource]azure.Money, len(want))
	merged, err := s.monthRows(ctx, az, month, nil, func(r *usage.CostRow) error {
		k := store.TenantResource{Tenant: r.Tenant, Resource: r.Resource}
		if !want[k] || event.Meters[r.Meter] == event.MeterMarketplace || !upTo.IsZero() && r.At > upTo.UnixNano() {
			return nil
		}
		m := out[k]
		m.AddCost(r.Nanos, r.Exact)
		out[k] = m
		return nil
	})
	if err != nil || merged {
		return out, err
	}
	for k := range want {
		out[k] = az.Cost(k.Tenant, k.Resource, month)
	}
	return out, nil
}

// logConsumption writes the records of the segments as the
// azure.consumption events they stand for, month by month, each resource,
// day and meter once: what pushed files add to the log a reader exports.
// tenant, when not empty, keeps that tenant's records only. A process that
// shares the tenants with others knows which pushed records its own
// tenants' log records replace; those of the others' it folds from the
// log, so that every process exports the same lines.
func (s *Server) logConsumption(ctx context.Context, out *event.Writer, tenant string) error {
	months, err := s.store.ConsumptionMonths(ctx)
	if err != nil || len(months) == 0 {
		return err
	}
	write := func(r *usage.CostRow) error {
		if r.Place == usage.LogPlace || tenant != "" && r.Tenant != tenant {
			return nil
		}
		cost := r.Exact
		if cost == "" {
			cost = decimalOfNanos(r.Nanos)
		}
		return out.Write(&event.Event{Type: event.AzureConsumption, Time: time.Unix(0, r.At).UTC(), Tenant: r.Tenant,
			Resource: r.Resource, Date: event.DayStart(r.Day).Format(time.DateOnly), Cost: cost, Meter: event.Meters[r.Meter]})
	}
	var others *othersLog
	if s.own != nil {
		others = &othersLog{s: s, folded: map[string]bool{}, engine: attribution.New(s.cfg.Options)}
	}
	for _, month := range months {
		segments, err := s.monthSegments(ctx, month)
		if err != nil {
			return err
		}
		if len(segments) == 0 {
			continue
		}
		// The state is read for what it keeps of the month, and let go:
		// its writers wait for its readers, and the rows are written as
		// fast as the client reads them.
		var kept []usage.CostRow
		var owns func(string) bool
		var dir []store.Record
		err = s.read(ctx, func(st *fold.State) error {
			owns, dir = st.Owner(), st.Directory()
			var err error
			kept, err = keptRows(st.Engine().Azure(), month, owns)
			return err
		})
		if err != nil {
			return err
		}
		if others != nil {
			az, err := others.azure(ctx, segments, dir, owns, tenant)
			if err != nil {
				return err
			}
			theirs, err := keptRows(az, month, func(t string) bool { return !owns(t) })
			if err != nil {
				return err
			}
			kept = append(kept, theirs...)
		}
		// Merged with the log's own records of the month, of which only
		// the pushed ones that win are written: a pushed record that a
		// record of the log replaces is left out, and the others come
		// after every line of the log, as they replace what they meet.
		if err := s.mergeMonth(ctx, segments, kept, nil, write); err != nil {
			return err
		}
	}
	return nil
}

// othersLog folds from the log the Azure records of the tenants with
// consumption kept out of it that a state does not own, which only their
// owners fold, for an export that lists what every tenant's log records
// leave of the pushed ones.
type othersLog struct {
	s      *Server
	folded map[string]bool
	engine *attribution.Engine
}

// azure returns the Azure records of the tenants of a month's pushed
// records (its segments) that owns does not name (of tenant alone, when
// not empty), folding those it has not yet with the directory dir.
func (o *othersLog) azure(ctx context.Context, segments []usage.Source, dir []store.Record, owns func(string) bool, tenant string) (*azure.Engine, error) {
	var others []string
	err := usage.MergeSegments(segments, nil, func(r *usage.CostRow) error {
		if !owns(r.Tenant) && !o.folded[r.Tenant] && (tenant == "" || r.Tenant == tenant) {
			o.folded[r.Tenant] = true
			others = append(others, r.Tenant)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, t := range others {
		// Which records the log keeps of a tenant's consumption depends on
		// its own records alone, not on those of the tenants it reads.
		fresh, err := fold.Tenant(ctx, o.s.store, o.s.cfg.Options, dir, t, nil, time.Time{}, nil)
		if err != nil {
			return nil, err
		}
		o.engine.AdoptTenant(t, fresh)
	}
	return o.engine.Azure(), nil
}

// decimalOfNanos writes billionths as a decimal number, without trailing
// zeros.
func decimalOfNanos(n int64) string {
	s := strconv.FormatInt(n/1e9, 10)
	if frac := n % 1e9; frac != 0 {
		f := strconv.FormatInt(1e9+frac, 10)[1:]
		s += "." + strings.TrimRight(f, "0")
	}
	return s
}
