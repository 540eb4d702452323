package usage

import (
	"bytes"
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"
)

// CostRow is an azure.consumption record as pal serve keeps it: in a
// segment of one month, a Parquet file of its own that the store holds
// whole, out of the log. A later record of the same tenant, resource, day
// and meter replaces an earlier one (SPEC.md section 9.2), the one
// reported later winning (At).
type CostRow struct {
	Tenant   string `parquet:"tenant,dict"`
	Resource string `parquet:"resource,dict"`
	// Day is the day of the cost, in days since 1970-01-01.
	Day int32 `parquet:"day,delta"`
	// Meter is the meter's index in event.Meters.
	Meter int32 `parquet:"meter"`
	// Nanos is the cost in billionths, unless Exact holds it: a cost that
	// billionths cannot hold, as it was written.
	Nanos int64  `parquet:"nanos"`
	Exact string `parquet:"exact,dict"`
	// At is when the record was reported, in Unix nanoseconds.
	At int64 `parquet:"at"`
	// Place is where the record came among the log's records, which
	// decides between records reported at the same instant: one more than
	// the sequence number of the log's last record when it was pushed; 0
	// when its segment says it (Source.After); LogPlace for a record of
	// the log itself, whose own sequence number says it.
	Place int64 `parquet:"place"`
}

// LogPlace is the Place of a record of the log.
const LogPlace = -1

// Source is a segment to merge: its bytes, and its place in the log (the
// sequence number of the log's last record when it was kept), which its
// rows of Place 0 take. Rows held already, in the order SortCostRows
// gives (the log's own records), are merged as Sorted, without Data.
type Source struct {
	Data   []byte
	After  int64
	Sorted []CostRow
}

// compareCostKey orders rows by tenant, resource, day and meter: the order
// of a segment, and of the records a month's segments merge into.
func compareCostKey(a, b *CostRow) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource),
		cmp.Compare(a.Day, b.Day), cmp.Compare(a.Meter, b.Meter))
}

// SortCostRows returns rows in a segment's order, and of rows with the
// same key only the one reported last (the last given, at equal times).
// It sorts the distinct (tenant, resource) pairs only, and places the rows
// by their pair's rank in one pass (a counting sort, which keeps their
// order); the rows of a pair, which come by day nearly always, are sorted
// only when they do not.
func SortCostRows(rows []CostRow) []CostRow {
	type pair struct{ tenant, resource string }
	ids := make(map[pair]int32)
	var pairs []pair
	of := make([]int32, len(rows))
	for i := range rows {
		p := pair{rows[i].Tenant, rows[i].Resource}
		id, ok := ids[p]
		if !ok {
			id = int32(len(pairs))
			ids[p] = id
			pairs = append(pairs, p)
		}
		of[i] = id
	}
	byName := make([]int32, len(pairs))
	for k := range byName {
		byName[k] = int32(k)
	}
	slices.SortFunc(byName, func(a, b int32) int {
		return cmp.Or(cmp.Compare(pairs[a].tenant, pairs[b].tenant), cmp.Compare(pairs[a].resource, pairs[b].resource))
	})
	// start[r] is where the rows of the pair ranked r begin.
	start := make([]int, len(pairs)+1)
	rank := make([]int32, len(pairs))
	for r, id := range byName {
		rank[id] = int32(r)
	}
	for _, id := range of {
		start[rank[id]+1]++
	}
	for r := range pairs {
		start[r+1] += start[r]
	}
	placed := make([]CostRow, len(rows))
	next := slices.Clone(start[:len(pairs)])
	for i, id := range of {
		r := rank[id]
		placed[next[r]] = rows[i]
		next[r]++
	}
	dayMeter := func(a, b CostRow) int { return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Meter, b.Meter)) }
	out := placed[:0]
	for r := range pairs {
		group := placed[start[r]:start[r+1]]
		if !slices.IsSortedFunc(group, dayMeter) {
			slices.SortStableFunc(group, dayMeter)
		}
		first := len(out)
		for _, row := range group {
			if n := len(out); n > first && dayMeter(out[n-1], row) == 0 {
				if row.At >= out[n-1].At {
					out[n-1] = row
				}
				continue
			}
			out = append(out, row)
		}
	}
	return out
}

// segmentGroupRows is how many rows a row group of a segment holds.
const segmentGroupRows = 1 << 16

// WriteSegment encodes rows, in the order SortCostRows gives, as a segment.
func WriteSegment(rows []CostRow) ([]byte, error) {
	w := NewSegmentWriter()
	for i := range rows {
		if err := w.Write(&rows[i]); err != nil {
			return nil, err
		}
	}
	return w.Close()
}

// SegmentWriter encodes a segment row by row, in the order SortCostRows
// gives: what it holds besides the segment's bytes is a row group.
type SegmentWriter struct {
	buf  bytes.Buffer
	w    *parquet.GenericWriter[CostRow]
	rows []CostRow
}

// NewSegmentWriter returns an empty segment.
func NewSegmentWriter() *SegmentWriter {
	sw := &SegmentWriter{}
	sw.w = parquet.NewGenericWriter[CostRow](&sw.buf, parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(segmentGroupRows))
	return sw
}

// Write adds a row.
func (sw *SegmentWriter) Write(r *CostRow) error {
	sw.rows = append(sw.rows, *r)
	if len(sw.rows) >= 4096 {
		return sw.flush()
	}
	return nil
}

func (sw *SegmentWriter) flush() error {
	if _, err := sw.w.Write(sw.rows); err != nil {
		return fmt.Errorf("write a consumption segment: %w", err)
	}
	sw.rows = sw.rows[:0]
	return nil
}

// Close ends the segment and returns its bytes.
func (sw *SegmentWriter) Close() ([]byte, error) {
	if err := sw.flush(); err != nil {
		return nil, err
	}
	if err := sw.w.Close(); err != nil {
		return nil, fmt.Errorf("write a consumption segment: %w", err)
	}
	return sw.buf.Bytes(), nil
}

// segmentCursor reads a segment's rows a batch at a time.
type segmentCursor struct {
	r    *parquet.GenericReader[CostRow]
	buf  []CostRow
	i, n int
	// order breaks ties between segments: a later segment's row, at an
	// equal report time and place, replaces an earlier one's. after is
	// the segment's place in the log.
	order int
	after int64
}

func (c *segmentCursor) row() *CostRow { return &c.buf[c.i] }

// next moves to the next row, and reports false at the end.
func (c *segmentCursor) next() (bool, error) {
	c.i++
	if c.i < c.n || c.r == nil {
		return c.i < c.n, nil
	}
	n, err := c.r.Read(c.buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read a consumption segment: %w", err)
	}
	c.i, c.n = 0, n
	return n > 0, nil
}

type cursorHeap []*segmentCursor

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(i, j int) bool {
	if c := compareCostKey(h[i].row(), h[j].row()); c != 0 {
		return c < 0
	}
	return h[i].order < h[j].order
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*segmentCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// MergeSegments calls fn with the rows of segments, oldest segment first,
// merged in the order of tenant, resource, day and meter, each key once:
// the row reported last, and of rows reported at the same instant the
// later among the log's records: of two pushed rows the one pushed after
// more of them, then the later segment's; of a row of the log (LogPlace)
// and a pushed one, the log's when logLater says so (nil: never). Each
// pushed row fn is given has its Place set. What it holds is a batch of
// rows per segment.
func MergeSegments(segments []Source, logLater func(log, pushed *CostRow) (bool, error), fn func(*CostRow) error) error {
	h := make(cursorHeap, 0, len(segments))
	for k, seg := range segments {
		c := &segmentCursor{buf: seg.Sorted, n: len(seg.Sorted), i: -1, order: k, after: seg.After}
		if seg.Sorted == nil {
			c.r, c.buf, c.n = parquet.NewGenericReader[CostRow](bytes.NewReader(seg.Data)), make([]CostRow, 1024), 0
			defer c.r.Close()
		}
		ok, err := c.next()
		if err != nil {
			return err
		}
		if ok {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	// later reports whether r replaces cur, of the same key, r coming from
	// the same segment as cur or a later one.
	later := func(cur, r *CostRow) (bool, error) {
		switch {
		case r.At != cur.At:
			return r.At > cur.At, nil
		case r.Place == LogPlace && cur.Place == LogPlace:
			return true, nil
		case r.Place == LogPlace:
			if logLater == nil {
				return false, nil
			}
			return logLater(r, cur)
		case cur.Place == LogPlace:
			if logLater == nil {
				return true, nil
			}
			log, err := logLater(cur, r)
			return !log, err
		}
		return r.Place >= cur.Place, nil
	}
	var cur CostRow
	have := false
	for len(h) > 0 {
		c := h[0]
		r := c.row()
		if r.Place == 0 {
			r.Place = c.after + 1
		}
		switch {
		case !have:
			cur, have = *r, true
		case compareCostKey(&cur, r) == 0:
			replace, err := later(&cur, r)
			if err != nil {
				return err
			}
			if replace {
				cur = *r
			}
		default:
			if err := fn(&cur); err != nil {
				return err
			}
			cur = *r
		}
		ok, err := c.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	if have {
		return fn(&cur)
	}
	return nil
}
