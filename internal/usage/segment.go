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
}

// compareCostKey orders rows by tenant, resource, day and meter: the order
// of a segment, and of the records a month's segments merge into.
func compareCostKey(a, b *CostRow) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource),
		cmp.Compare(a.Day, b.Day), cmp.Compare(a.Meter, b.Meter))
}

// SortCostRows puts rows in a segment's order, and of rows with the same
// key keeps only the one reported last (the last given, at equal times).
func SortCostRows(rows []CostRow) []CostRow {
	slices.SortStableFunc(rows, func(a, b CostRow) int { return compareCostKey(&a, &b) })
	out := rows[:0]
	for _, r := range rows {
		if n := len(out); n > 0 && compareCostKey(&out[n-1], &r) == 0 {
			if r.At >= out[n-1].At {
				out[n-1] = r
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// segmentGroupRows is how many rows a row group of a segment holds.
const segmentGroupRows = 1 << 16

// WriteSegment encodes rows, in the order SortCostRows gives, as a segment.
func WriteSegment(rows []CostRow) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[CostRow](&buf, parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(segmentGroupRows))
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("write a consumption segment: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write a consumption segment: %w", err)
	}
	return buf.Bytes(), nil
}

// segmentCursor reads a segment's rows a batch at a time.
type segmentCursor struct {
	r    *parquet.GenericReader[CostRow]
	buf  []CostRow
	i, n int
	// order breaks ties between segments: a later segment's row, at an
	// equal report time, replaces an earlier one's.
	order int
}

func (c *segmentCursor) row() *CostRow { return &c.buf[c.i] }

// next moves to the next row, and reports false at the end.
func (c *segmentCursor) next() (bool, error) {
	c.i++
	if c.i < c.n {
		return true, nil
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
// the row reported last, and of rows reported at the same instant the one
// of the latest segment. What it holds is a batch of rows per segment.
func MergeSegments(segments [][]byte, fn func(*CostRow) error) error {
	h := make(cursorHeap, 0, len(segments))
	for k, data := range segments {
		c := &segmentCursor{r: parquet.NewGenericReader[CostRow](bytes.NewReader(data)), buf: make([]CostRow, 1024), i: -1, order: k}
		defer c.r.Close()
		ok, err := c.next()
		if err != nil {
			return err
		}
		if ok {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	var cur CostRow
	have := false
	for len(h) > 0 {
		c := h[0]
		r := c.row()
		switch {
		case !have:
			cur, have = *r, true
		case compareCostKey(&cur, r) == 0:
			if r.At >= cur.At {
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
