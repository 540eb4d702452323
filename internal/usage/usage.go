// Package usage reads and writes usage events in columns: Parquet files
// with the columns time (a UTC timestamp), tenant, resource and user, and
// NDJSON files of usage events, both as batches whose strings are indexes
// into per-batch dictionaries. A platform's month of usage is hundreds of
// millions of rows; batches let the engine map each distinct string once
// per batch instead of once per row, and never hold a whole file.
package usage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
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
	data    []byte
	offsets []uint32 // entry i is data[offsets[i]:offsets[i+1]]
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

// reset empties d, keeping its buffers.
func (d *Dict) reset() { d.data, d.offsets = d.data[:0], d.offsets[:0] }

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
// written in row groups of a million.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: parquet.NewGenericWriter[Row](w, parquet.MaxRowsPerRowGroup(1<<20), parquet.Compression(&parquet.Zstd))}
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

// ReadParquet reads the row groups of a Parquet usage file with workers
// goroutines, calling fn with each row group as a batch. fn is called
// concurrently, each worker with its own number; the batch is reused once
// fn returns, so fn keeps none of it (strings it keeps, it clones). It returns a clear error
// for a file that is not Parquet, lacks a column, or holds nulls.
func ReadParquet(ctx context.Context, r io.ReaderAt, size int64, workers int, fn func(worker int, b *Batch) error) error {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return fmt.Errorf("not a readable Parquet file (%v); write usage with pal gen or as the columns time, tenant, resource, user", err)
	}
	var index [4]int
	var unit time.Duration
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
				unit = d.Duration()
			}
		} else if leaf.Node.Type().Kind() != parquet.ByteArray {
			return fmt.Errorf("the column %q is not a string column", name)
		}
	}
	micros := func(v int64) int64 { return v }
	switch unit {
	case time.Millisecond:
		micros = func(v int64) int64 { return v * 1000 }
	case time.Nanosecond:
		micros = func(v int64) int64 { return v / 1000 }
	}

	groups := f.RowGroups()
	firsts := make([]int64, len(groups))
	var n int64
	for i, g := range groups {
		firsts[i] = n + 1
		n += g.NumRows()
	}
	next := make(chan int)
	errs := make(chan error, workers)
	buffers := make([]*Batch, max(1, workers))
	for w := range buffers {
		buffers[w] = &Batch{}
	}
	var wg sync.WaitGroup
	for w := range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				b, err := readGroup(groups[i], index, micros, buffers[w])
				if err == nil {
					b.First = firsts[i]
					err = fn(w, b)
				}
				if err != nil {
					errs <- fmt.Errorf("row group %d: %w", i, err)
					return
				}
			}
		}()
	}
	var failed error
feed:
	for i := range groups {
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

// readGroup reads one row group's four columns.
func readGroup(g parquet.RowGroup, index [4]int, micros func(int64) int64, b *Batch) (*Batch, error) {
	chunks := g.ColumnChunks()
	n := int(g.NumRows())
	b.Micros = slices.Grow(b.Micros[:0], n)
	if err := eachPage(chunks[index[0]], func(p parquet.Page) error {
		d := p.Data()
		for _, v := range d.Int64() {
			b.Micros = append(b.Micros, micros(v))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("column time: %w", err)
	}
	var err error
	if b.Tenant, err = readStrings(chunks[index[1]], n, b.Tenant, &b.Tenants); err != nil {
		return nil, fmt.Errorf("column tenant: %w", err)
	}
	if b.Resource, err = readStrings(chunks[index[2]], n, b.Resource, &b.Resources); err != nil {
		return nil, fmt.Errorf("column resource: %w", err)
	}
	if b.User, err = readStrings(chunks[index[3]], n, b.User, &b.Users); err != nil {
		return nil, fmt.Errorf("column user: %w", err)
	}
	if len(b.Micros) != n || len(b.Tenant) != n || len(b.Resource) != n || len(b.User) != n {
		return nil, fmt.Errorf("the columns hold %d, %d, %d and %d values for %d rows: the file is corrupt", len(b.Micros), len(b.Tenant), len(b.Resource), len(b.User), n)
	}
	return b, nil
}

func eachPage(c parquet.ColumnChunk, fn func(parquet.Page) error) error {
	pages := c.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if p.NumNulls() > 0 {
			parquet.Release(p)
			return errors.New("it holds nulls; every usage row has a time, tenant, resource and user")
		}
		err = fn(p)
		parquet.Release(p)
		if err != nil {
			return err
		}
	}
}

// readStrings reads a string column as indexes into a dictionary: the
// column's own when its pages are dictionary-encoded (dict then shares its
// bytes), one built here when they are not.
func readStrings(c parquet.ColumnChunk, n int, buf []int32, dict *Dict) ([]int32, error) {
	idx := slices.Grow(buf[:0], n)
	dict.reset()
	var seen map[string]int32
	var lastDict parquet.Dictionary
	err := eachPage(c, func(p parquet.Page) error {
		if d := p.Dictionary(); d != nil {
			if d != lastDict {
				if lastDict != nil || seen != nil {
					return errors.New("a column chunk changes dictionaries; write one dictionary a row group")
				}
				lastDict = d
				// The dictionary's buffers are its own, not the page's, and
				// stay valid for as long as dict holds them.
				values := d.Page().Data()
				dict.data, dict.offsets = values.ByteArray()
			}
			values := p.Data()
			idx = append(idx, values.Int32()...)
			return nil
		}
		if lastDict != nil {
			return errors.New("a column chunk mixes dictionary and plain pages")
		}
		if seen == nil {
			seen = make(map[string]int32)
		}
		data := p.Data()
		values, offsets := data.ByteArray()
		for i := 0; i+1 < len(offsets); i++ {
			v := values[offsets[i]:offsets[i+1]]
			k, ok := seen[string(v)]
			if !ok {
				s := string(v)
				k = dict.add(s)
				seen[s] = k
			}
			idx = append(idx, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if lastDict != nil && (len(dict.offsets) == 0 || int(dict.offsets[len(dict.offsets)-1]) > len(dict.data)) {
		return nil, errors.New("its dictionary is malformed: the file is corrupt")
	}
	size := int32(dict.Len())
	for _, k := range idx {
		if k < 0 || k >= size {
			return nil, errors.New("an index points outside its dictionary: the file is corrupt")
		}
	}
	return idx, nil
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
		b = &Batch{}
		for k := range maps {
			maps[k] = make(map[string]int32)
		}
	}
	reset()
	for {
		ev, rf, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if rf == nil && ev.Type != event.Usage {
			rf = event.Refuse(ev, event.InvalidValue, "a usage file holds usage events only; put %s events in the log", ev.Type)
		}
		if rf != nil {
			refuse(rf)
			continue
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
	}
	if b.Len() > 0 {
		return fn(b)
	}
	return nil
}

// Interval is one row of a timeline file: a span of a resource's credit.
type Interval struct {
	Tenant   string `parquet:"tenant,dict"`
	Resource string `parquet:"resource,dict"`
	Workload string `parquet:"workload,dict"`
	Org      string `parquet:"org,dict"`
	Partner  string `parquet:"partner,dict"`
	Account  string `parquet:"account,dict"`
	Start    int64  `parquet:"start,timestamp(microsecond)"`
	// End is null while the interval is open.
	End *int64 `parquet:"end,optional,timestamp(microsecond)"`
}

// WriteTimeline writes timeline rows as a Parquet file.
func WriteTimeline(w io.Writer, rows []Interval) error {
	pw := parquet.NewGenericWriter[Interval](w, parquet.Compression(&parquet.Zstd))
	if _, err := pw.Write(rows); err != nil {
		return err
	}
	return pw.Close()
}
