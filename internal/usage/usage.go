package usage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/palproject/pal/internal/event"
)

// Row is one usage event of a Parquet usage file.
type Row struct {
	Time     int64  `parquet:"time,timestamp(microsecond)"`
	Tenant   string `parquet:"tenant,dict"`
	Resource string `parquet:"resource,dict"`
	User     string `parquet:"user,dict"`
}

// Batch is a run of usage rows as columns. Tenant, Resource and User hold
// indexes into Tenants, Resources and Users.
type Batch struct {
	// Group numbers the batch's dictionaries, uniquely in the process:
	// batches of one Parquet row group share them and have the same Group,
	// and a reader may keep what it derived from them from one such batch
	// to the next.
	Group int64
	// First is the number of the batch's first row in its file, from 1.
	First int64
	// Line, when set, holds each row's line in an NDJSON file.
	Line      []int64
	Micros    []int64
	Tenant    []int32
	Resource  []int32
	User      []int32
	Tenants   Dict
	Resources Dict
	Users     Dict
}

// Dict is a string column's dictionary, kept as the bytes it was read as:
// a row group's users are hundreds of thousands of strings, and copying
// each into a string of its own costs more than the lookups that use them.
type Dict struct {
	data     []byte
	offsets  []uint32 // entry i is data[offsets[i]:offsets[i+1]]
	borrowed bool     // data and offsets are a Parquet dictionary's
}

// Len returns the number of entries.
func (d *Dict) Len() int { return max(0, len(d.offsets)-1) }

// Bytes returns entry i, valid while the batch is.
func (d *Dict) Bytes(i int32) []byte { return d.data[d.offsets[i]:d.offsets[i+1]] }

// String returns entry i as a string of its own.
func (d *Dict) String(i int32) string { return string(d.Bytes(i)) }

// add appends an entry and returns its index.
func (d *Dict) add(s string) int32 {
	if len(d.offsets) == 0 {
		d.offsets = append(d.offsets, 0)
	}
	d.data = append(d.data, s...)
	d.offsets = append(d.offsets, uint32(len(d.data)))
	return int32(len(d.offsets) - 2)
}

// reset empties d, keeping its buffers unless they were borrowed.
func (d *Dict) reset() {
	if d.borrowed {
		*d = Dict{}
	}
	d.data, d.offsets = d.data[:0], d.offsets[:0]
}

// borrow makes d a Parquet dictionary's entries.
func (d *Dict) borrow(pd parquet.Dictionary) {
	values := pd.Page().Data()
	d.data, d.offsets = values.ByteArray()
	d.borrowed = true
}

// Len returns the number of rows.
func (b *Batch) Len() int { return len(b.Micros) }

// Row returns the number of row i in its file: its line in an NDJSON file,
// its row from 1 in a Parquet file.
func (b *Batch) Row(i int) int64 {
	if b.Line != nil {
		return b.Line[i]
	}
	return b.First + int64(i)
}

// Time returns the time of row i.
func (b *Batch) Time(i int) time.Time { return time.UnixMicro(b.Micros[i]).UTC() }

// Writer writes a Parquet usage file.
type Writer struct {
	w   *parquet.GenericWriter[Row]
	buf []Row
}

// NewWriter returns a writer of a Parquet usage file to w. Rows are
// written in row groups of 8 Mi rows, about 60 MiB, as big as data lakes
// commonly write them: each row group has a dictionary of its users, which
// a reader maps once, so a month's users are mapped 12 times in 100 M rows
// rather than 96. Readers hold a slice of a row group at a time, so the
// size costs them no memory.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: parquet.NewGenericWriter[Row](w, parquet.MaxRowsPerRowGroup(1<<23), parquet.Compression(&parquet.Zstd))}
}

// Write adds one usage event.
func (w *Writer) Write(at time.Time, tenant, resource, user string) error {
	w.buf = append(w.buf, Row{Time: at.UnixMicro(), Tenant: tenant, Resource: resource, User: user})
	if len(w.buf) == cap(w.buf) && len(w.buf) >= 8192 {
		return w.flush()
	}
	return nil
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Close writes what is buffered and the file's footer.
func (w *Writer) Close() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.w.Close()
}

// columns are the usage file's columns, in the order they are read.
var columns = []string{"time", "tenant", "resource", "user"}

// groups numbers the dictionaries of batches.
var groups atomic.Int64

// sliceRows is how many rows of a row group a batch holds: a row group of
// a million rows would need 20 MiB of columns a worker at once.
var sliceRows = 1 << 16

// ReadParquet reads the row groups of a Parquet usage file with workers
// goroutines, calling fn with batches of each row group's rows in order. fn
// is called concurrently, each worker with its own number and whole row
// groups; the batch is reused once fn returns, so fn keeps none of it
// (strings it keeps, it clones). It returns a clear error for a file that
// is not Parquet, lacks a column, or holds nulls.
func ReadParquet(ctx context.Context, r io.ReaderAt, size int64, workers int, fn func(worker int, b *Batch) error) error {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return fmt.Errorf("not a readable Parquet file (%v); write usage with pal gen or as the columns time, tenant, resource, user", err)
	}
	var index [4]int
	scale := int64(1) // multiplies or, when negative, divides times into microseconds
	for k, name := range columns {
		leaf, ok := f.Schema().Lookup(name)
		if !ok {
			return fmt.Errorf("the Parquet file has no column %q; usage needs the columns time (UTC timestamp), tenant, resource, user", name)
		}
		index[k] = leaf.ColumnIndex
		if k == 0 {
			var ts *format.TimestampType
			if lt := leaf.Node.Type().LogicalType(); lt != nil {
				ts, _ = lt.Value.(*format.TimestampType)
			}
			if ts == nil || leaf.Node.Type().Kind() != parquet.Int64 {
				return errors.New(`the column "time" is not an INT64 timestamp`)
			}
			if d, ok := ts.Unit.Value.(interface{ Duration() time.Duration }); ok {
				switch d.Duration() {
				case time.Millisecond:
					scale = 1000
				case time.Nanosecond:
					scale = -1000
				}
			}
		} else if leaf.Node.Type().Kind() != parquet.ByteArray {
			return fmt.Errorf("the column %q is not a string column", name)
		}
	}

	rowGroups := f.RowGroups()
	firsts := make([]int64, len(rowGroups))
	var n int64
	for i, g := range rowGroups {
		firsts[i] = n + 1
		n += g.NumRows()
	}
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := &Batch{}
			for i := range next {
				b.Group, b.First = groups.Add(1), firsts[i]
				if err := readGroup(rowGroups[i], index, scale, b, func(b *Batch) error { return fn(w, b) }); err != nil {
					errs <- fmt.Errorf("row group %d: %w", i, err)
					return
				}
			}
		}()
	}
	var failed error
feed:
	for i := range rowGroups {
		select {
		case next <- i:
		case failed = <-errs:
			break feed
		case <-ctx.Done():
			failed = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if failed != nil {
		return failed
	}
	for err := range errs {
		return err
	}
	return nil
}

// readGroup reads one row group's four columns in batches of sliceRows
// rows, starting at row b.First.
func readGroup(g parquet.RowGroup, index [4]int, scale int64, b *Batch, fn func(*Batch) error) error {
	chunks := g.ColumnChunks()
	var cs [4]chunk
	for k := range cs {
		cs[k].name, cs[k].pages = columns[k], chunks[index[k]].Pages()
		defer cs[k].close()
	}
	for k, d := range []*Dict{&b.Tenants, &b.Resources, &b.Users} {
		d.reset()
		cs[k+1].dict = d
	}
	rows := g.NumRows()
	for done := int64(0); done < rows; {
		n := int(min(int64(sliceRows), rows-done))
		var err error
		if b.Micros, err = cs[0].times(b.Micros[:0], n, scale); err != nil {
			return err
		}
		if b.Tenant, err = cs[1].indexes(b.Tenant[:0], n); err != nil {
			return err
		}
		if b.Resource, err = cs[2].indexes(b.Resource[:0], n); err != nil {
			return err
		}
		if b.User, err = cs[3].indexes(b.User[:0], n); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
		done += int64(n)
		b.First += int64(n)
	}
	for _, c := range cs {
		if c.pos < c.len() {
			return fmt.Errorf("column %s: it holds more values than its row group has rows: the file is corrupt", c.name)
		}
	}
	return nil
}

// chunk reads a column chunk page by page: times, or indexes into the row
// group's dictionary of a string column. That is the column's own when its
// pages are dictionary-encoded (dict then shares its bytes), one built here
// when they are not.
type chunk struct {
	name   string
	pages  parquet.Pages
	page   parquet.Page // the page being read
	micros []int64
	floats []float64 // the values of a DOUBLE column (double set)
	idx    []int32
	pos    int
	double bool

	dict   *Dict              // nil for the time and DOUBLE columns
	shared parquet.Dictionary // the chunk's dictionary, once read
	seen   map[string]int32   // the dictionary built for plain pages
	own    []int32            // the indexes of a plain page
}

func (c *chunk) len() int { return len(c.micros) + len(c.floats) + len(c.idx) }

func (c *chunk) close() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
	c.pages.Close()
}

// advance reads the chunk's next page.
func (c *chunk) advance() error {
	if c.page != nil {
		parquet.Release(c.page)
		c.page, c.micros, c.floats, c.idx = nil, nil, nil, nil
	}
	p, err := c.pages.ReadPage()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("column %s: it holds fewer values than its row group has rows: the file is corrupt", c.name)
	}
	if err != nil {
		return fmt.Errorf("column %s: %w", c.name, err)
	}
	c.page, c.pos = p, 0
	if p.NumNulls() > 0 {
		return fmt.Errorf("column %s: it holds nulls; every row has a value in it", c.name)
	}
	values := p.Data()
	if c.double {
		c.floats = values.Double()
		return nil
	}
	if c.dict == nil {
		c.micros = values.Int64()
		return nil
	}
	if d := p.Dictionary(); d != nil {
		switch {
		case c.shared == nil && c.seen == nil:
			c.shared = d
			c.dict.borrow(d)
		case c.shared != d:
			return fmt.Errorf("column %s: a column chunk changes dictionaries or mixes them with plain pages; write one dictionary a row group", c.name)
		}
		c.idx = values.Int32()
		size := int32(c.dict.Len())
		for _, k := range c.idx {
			if k < 0 || k >= size {
				return fmt.Errorf("column %s: an index points outside its dictionary: the file is corrupt", c.name)
			}
		}
		return nil
	}
	if c.shared != nil {
		return fmt.Errorf("column %s: a column chunk mixes dictionary and plain pages", c.name)
	}
	if c.seen == nil {
		c.seen = make(map[string]int32)
	}
	data, offsets := values.ByteArray()
	c.own = c.own[:0]
	for i := 0; i+1 < len(offsets); i++ {
		v := data[offsets[i]:offsets[i+1]]
		k, ok := c.seen[string(v)]
		if !ok {
			s := string(v)
			k = c.dict.add(s)
			c.seen[s] = k
		}
		c.own = append(c.own, k)
	}
	c.idx = c.own
	return nil
}

// times appends the next n times to dst, in microseconds.
func (c *chunk) times(dst []int64, n int, scale int64) ([]int64, error) {
	for n > 0 {
		if c.pos == len(c.micros) {
			if err := c.advance(); err != nil {
				return nil, err
			}
			continue
		}
		k := min(n, len(c.micros)-c.pos)
		switch values := c.micros[c.pos : c.pos+k]; {
		case scale == 1:
			dst = append(dst, values...)
		case scale > 1:
			for _, v := range values {
				dst = append(dst, v*scale)
			}
		default:
			for _, v := range values {
				dst = append(dst, v/-scale)
			}
		}
		c.pos += k
		n -= k
	}
	return dst, nil
}

// doubles appends the next n values of a DOUBLE column to dst.
func (c *chunk) doubles(dst []float64, n int) ([]float64, error) {
	for n > 0 {
		if c.pos == len(c.floats) {
			if err := c.advance(); err != nil {
				return nil, err
			}
			continue
		}
		k := min(n, len(c.floats)-c.pos)
		dst = append(dst, c.floats[c.pos:c.pos+k]...)
		c.pos += k
		n -= k
	}
	return dst, nil
}

// indexes appends the next n dictionary indexes to dst.
func (c *chunk) indexes(dst []int32, n int) ([]int32, error) {
	for n > 0 {
		if c.pos == len(c.idx) {
			if err := c.advance(); err != nil {
				return nil, err
			}
			continue
		}
		k := min(n, len(c.idx)-c.pos)
		dst = append(dst, c.idx[c.pos:c.pos+k]...)
		c.pos += k
		n -= k
	}
	return dst, nil
}

// ReadNDJSON reads usage events from a log file in format v1, in batches
// of up to size rows. Lines that are not valid usage events are refused
// through refuse, with their line numbers; the rest goes on.
func ReadNDJSON(r io.Reader, size int, refuse func(*event.Refusal), fn func(b *Batch) error) error {
	rd := event.NewReader(r)
	var b *Batch
	var maps [3]map[string]int32
	intern := func(k int, dict *Dict, s string) int32 {
		id, ok := maps[k][s]
		if !ok {
			id = dict.add(s)
			maps[k][s] = id
		}
		return id
	}
	reset := func() {
		b = &Batch{Group: groups.Add(1)}
		for k := range maps {
			maps[k] = make(map[string]int32)
		}
	}
	reset()
	err := rd.Each(func(ev *event.Event, rf *event.Refusal) error {
		if rf == nil && ev.Type != event.Usage {
			rf = event.Refuse(ev, event.InvalidValue, "a usage file holds usage events only; put %s events in the log", ev.Type)
		}
		if rf != nil {
			refuse(rf)
			return nil
		}
		b.Line = append(b.Line, int64(ev.Line))
		b.Micros = append(b.Micros, ev.Time.UnixMicro())
		b.Tenant = append(b.Tenant, intern(0, &b.Tenants, ev.Tenant))
		b.Resource = append(b.Resource, intern(1, &b.Resources, ev.Resource))
		b.User = append(b.User, intern(2, &b.Users, ev.User))
		if b.Len() == size {
			if err := fn(b); err != nil {
				return err
			}
			reset()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if b.Len() > 0 {
		return fn(b)
	}
	return nil
}

// Interval is one row of a timeline file: a span of a resource's credit
// (Power Platform), or of a location's recognition for an Azure resource
// in one way (docs/warehouse.md). Subscription, Share and Active are an
// Azure row's, null on a Power Platform row.
type Interval struct {
	Tenant       string  `parquet:"tenant,dict"`
	Resource     string  `parquet:"resource,dict"`
	Workload     string  `parquet:"workload,dict"`
	Subscription *string `parquet:"subscription,optional,dict"`
	Org          string  `parquet:"org,dict"`
	Partner      string  `parquet:"partner,dict"`
	Account      string  `parquet:"account,dict"`
	// Share is the location's credited share, exactly 1/n, or 0 while it
	// is recognised but not credited.
	Share *float64 `parquet:"share,optional"`
	// Active tells whether an active assignment, not a PIM activation,
	// recognises the location throughout.
	Active *bool `parquet:"active,optional"`
	Start  int64 `parquet:"start,timestamp(microsecond)"`
	// End is null while the interval is open.
	End *int64 `parquet:"end,optional,timestamp(microsecond)"`
}

// TimelineWriter writes timeline rows as a Parquet file, a row group at a
// time, so that its memory does not grow with the file.
type TimelineWriter struct {
	pw  *parquet.GenericWriter[Interval]
	buf []Interval
}

// timelineGroupRows is the most rows of a timeline row group.
const timelineGroupRows = 1 << 20

// NewTimelineWriter returns a writer of timeline rows to w. Call Close when
// done.
func NewTimelineWriter(w io.Writer) *TimelineWriter {
	return &TimelineWriter{pw: parquet.NewGenericWriter[Interval](w, parquet.MaxRowsPerRowGroup(timelineGroupRows),
		parquet.Compression(&parquet.Zstd))}
}

// Write adds rows.
func (w *TimelineWriter) Write(rows ...Interval) error {
	w.buf = append(w.buf, rows...)
	if len(w.buf) >= 4096 {
		return w.write()
	}
	return nil
}

func (w *TimelineWriter) write() error {
	_, err := w.pw.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Flush ends the row group: the rows written next go into another.
func (w *TimelineWriter) Flush() error {
	if err := w.write(); err != nil {
		return err
	}
	return w.pw.Flush()
}

// Close writes what is buffered and the file's footer.
func (w *TimelineWriter) Close() error {
	if err := w.write(); err != nil {
		return err
	}
	return w.pw.Close()
}
