package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Consumption is one row of a consumption file: a resource's cost for one
// day on one meter (the fields of azure.consumption, SPEC.md section 9.2).
type Consumption struct {
	Tenant   string  `parquet:"tenant,dict"`
	Resource string  `parquet:"resource,dict"`
	Date     string  `parquet:"date,dict"`
	Cost     float64 `parquet:"cost"`
	Meter    string  `parquet:"meter,dict"`
}

// ConsumptionWriter writes consumption rows as a Parquet file.
type ConsumptionWriter struct {
	pw  *parquet.GenericWriter[Consumption]
	buf []Consumption
}

// NewConsumptionWriter returns a writer of consumption rows to w. Call
// Close when done. A row group's pages wait in memory until Flush or Close
// writes them: a large file is written in row groups (see Flush).
func NewConsumptionWriter(w io.Writer) *ConsumptionWriter {
	return &ConsumptionWriter{pw: parquet.NewGenericWriter[Consumption](w, parquet.Compression(&parquet.Zstd))}
}

// Write adds one row.
func (w *ConsumptionWriter) Write(c Consumption) error {
	w.buf = append(w.buf, c)
	if len(w.buf) >= 4096 {
		return w.flush()
	}
	return nil
}

func (w *ConsumptionWriter) flush() error {
	_, err := w.pw.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Flush writes what is buffered as a row group of its own: the rows
// written after it go to the next one. A row group that is empty is not
// written.
func (w *ConsumptionWriter) Flush() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.pw.Flush()
}

// Close writes what is buffered and the file's footer.
func (w *ConsumptionWriter) Close() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.pw.Close()
}

// ConsumptionBatch is a run of consumption rows as columns. Tenant,
// Resource, Date and Meter hold indexes into the dictionaries of the row
// group, which batches of one row group share (and Group names); Meter is
// nil when the file has no meter column.
type ConsumptionBatch struct {
	Group int64
	// First is the number of the batch's first row in its file, from 1.
	First                         int64
	Tenant, Resource, Date, Meter []int32
	Cost                          []float64
	Tenants, Resources, Dates     Dict
	Meters                        Dict
}

// Len returns the number of rows.
func (b *ConsumptionBatch) Len() int { return len(b.Cost) }

// Row returns row i as text: its number in the file, and its fields as a
// consumption record of the log writes them (the cost in its shortest
// decimal form, the meter "" when the file has none).
func (b *ConsumptionBatch) Row(i int) (line int, tenant, resource, date, cost, meter string) {
	if b.Meter != nil {
		meter = b.Meters.String(b.Meter[i])
	}
	return int(b.First) + i, b.Tenants.String(b.Tenant[i]), b.Resources.String(b.Resource[i]), b.Dates.String(b.Date[i]),
		strconv.FormatFloat(b.Cost[i], 'f', -1, 64), meter
}

// ReadConsumption calls fn with the rows of a Parquet consumption file
// (columns tenant, resource and date as strings, cost as a DOUBLE, and
// meter, a string, optional) in file order, in batches; the batch is
// reused once fn returns. It returns a clear error for a file that is not
// Parquet, lacks a column, or holds nulls.
func ReadConsumption(ctx context.Context, r io.ReaderAt, size int64, fn func(b *ConsumptionBatch) error) error {
	return ReadConsumptionDays(ctx, r, size, "", "", fn)
}

// ReadConsumptionDays is ReadConsumption for the dates from first to last
// (YYYY-MM-DD; "" bounds nothing): a row group whose statistics say that
// every date of it is before first or after last is not read, though its
// rows keep their numbers. The rows of other dates in the groups read are
// the caller's to leave.
func ReadConsumptionDays(ctx context.Context, r io.ReaderAt, size int64, first, last string, fn func(b *ConsumptionBatch) error) error {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return fmt.Errorf("not a readable Parquet file (%v); write consumption with pal gen --azure or as the columns tenant, resource, date, cost, meter", err)
	}
	names := []string{"tenant", "resource", "date", "cost", "meter"}
	index := make([]int, len(names))
	for k, name := range names {
		leaf, ok := f.Schema().Lookup(name)
		switch {
		case !ok && name == "meter":
			index[k] = -1
			continue
		case !ok:
			return fmt.Errorf("the Parquet file has no column %q; consumption needs the columns tenant, resource, date (YYYY-MM-DD), cost (DOUBLE) and, optionally, meter", name)
		case name == "cost" && leaf.Node.Type().Kind() != parquet.Double:
			return errors.New(`the column "cost" is not a DOUBLE`)
		case name != "cost" && leaf.Node.Type().Kind() != parquet.ByteArray:
			return fmt.Errorf("the column %q is not a string column", name)
		}
		index[k] = leaf.ColumnIndex
	}
	// A goroutine reads the next batch while fn works on one: a batch is
	// fn's until fn returns, and the row group's dictionaries stay until
	// fn has returned for its last batch.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free, full := make(chan *ConsumptionBatch, readAhead), make(chan *ConsumptionBatch, readAhead)
	for range readAhead {
		free <- &ConsumptionBatch{}
	}
	var readErr error
	go func() {
		defer close(full)
		// The Parquet library panics on some corrupt pages: the file is
		// refused, the caller told why.
		defer func() {
			if r := recover(); r != nil {
				readErr = fmt.Errorf("the Parquet file cannot be read (%v): it is corrupt; write it again", r)
			}
		}()
		readErr = readConsumptionGroups(ctx, f, names, index, first, last, free, full)
	}()
	// Every batch goes back, whatever fn does, so that the reader ends; a
	// panic of fn's is the caller's again once it has.
	var panicked any
	for b := range full {
		if err == nil && panicked == nil {
			func() {
				defer func() {
					if panicked = recover(); panicked != nil {
						cancel()
					}
				}()
				if err = fn(b); err != nil {
					cancel()
				}
			}()
		}
		free <- b
	}
	if panicked != nil {
		panic(panicked)
	}
	return cmp.Or(err, readErr)
}

// readAhead is how many batches go round between the reader of a file and
// its caller.
const readAhead = 2

// readConsumptionGroups reads the row groups of a file into batches taken
// from free and sent to full, skipping the groups whose dates are all
// outside first to last.
//
// A batch's dictionaries and indexes are the pages of its row group, which
// stay open until every batch of the group is back. As many groups are
// open at once as batches go round, so that the next group is read while
// the last batches of one are worked on: the batches come back in the
// order they were sent, so once a batch is taken for group n, every batch
// of group n-readAhead is back, and its pages and dictionaries can be used
// again.
func readConsumptionGroups(ctx context.Context, f *parquet.File, names []string, index []int, first, last string,
	free, full chan *ConsumptionBatch) error {
	var dicts [readAhead][len(consumptionDicts)]Dict
	var open [readAhead][]chunk
	var reading *ConsumptionBatch
	// Before the chunks close, every batch comes back, the one being read
	// too when reading it failed or panicked: then nothing reads the
	// groups' pages or dictionaries any longer.
	defer func() {
		if reading != nil {
			free <- reading
		}
		back := make([]*ConsumptionBatch, 0, cap(free))
		for range cap(free) {
			back = append(back, <-free)
		}
		for _, b := range back {
			free <- b
		}
		for _, cs := range open {
			closeChunks(cs)
		}
	}()
	take := func() (*ConsumptionBatch, error) {
		select {
		case b := <-free:
			reading = b
			return b, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	row := int64(1)
	meta := f.Metadata().RowGroups
	n := 0
	for k, g := range f.RowGroups() {
		rows := g.NumRows()
		if k < len(meta) && outside(meta[k].Columns[index[2]].MetaData.Statistics, first, last) || rows == 0 {
			row += rows
			continue
		}
		group, p := groups.Add(1), n%readAhead
		n++
		for done := int64(0); done < rows; {
			b, err := take()
			if err != nil {
				return err
			}
			if done == 0 {
				closeChunks(open[p])
				open[p] = openChunks(g, names, index, &dicts[p])
			}
			size := int(min(int64(sliceRows), rows-done))
			b.Group, b.First = group, row+done
			if err := readConsumptionBatch(b, open[p], index, size); err != nil {
				return err
			}
			// The dictionaries as they stand: a column without one grows
			// it as its pages are read, after what this batch sees.
			b.Tenants, b.Resources, b.Dates, b.Meters = dicts[p][0], dicts[p][1], dicts[p][2], dicts[p][3]
			reading = nil
			full <- b
			done += int64(size)
		}
		for _, c := range open[p] {
			if c.pages != nil && c.pos < c.len() {
				return fmt.Errorf("column %s: it holds more values than its row group has rows: the file is corrupt", c.name)
			}
		}
		row += rows
	}
	return nil
}

// outside reports whether a date column's statistics put every date of its
// row group before first or after last.
func outside(st format.Statistics, first, last string) bool {
	lo, hi := string(st.MinValue), string(st.MaxValue)
	if lo == "" || hi == "" {
		return false
	}
	return first != "" && hi < first || last != "" && lo > last
}

// consumptionDicts are the string columns of a consumption file with
// dictionaries, by their place in names.
var consumptionDicts = [...]int{0, 1, 2, 4}

// openChunks opens the column chunks of a row group, its string columns
// with dictionaries emptied for it.
func openChunks(g parquet.RowGroup, names []string, index []int, dicts *[len(consumptionDicts)]Dict) []chunk {
	chunks := g.ColumnChunks()
	cs := make([]chunk, len(names))
	for k := range cs {
		if index[k] >= 0 {
			cs[k].name, cs[k].pages, cs[k].double = names[k], chunks[index[k]].Pages(), true
		}
	}
	for d, k := range consumptionDicts {
		dicts[d].reset()
		cs[k].dict, cs[k].double = &dicts[d], false
	}
	return cs
}

// closeChunks closes the column chunks of a row group.
func closeChunks(cs []chunk) {
	for k := range cs {
		if cs[k].pages != nil {
			cs[k].close()
		}
	}
}

// readConsumptionBatch reads the next n rows of a row group's chunks into b.
func readConsumptionBatch(b *ConsumptionBatch, cs []chunk, index []int, n int) error {
	var err error
	for k, dst := range []*[]int32{&b.Tenant, &b.Resource, &b.Date, nil, &b.Meter} {
		switch {
		case dst == nil:
			b.Cost, err = cs[k].doubles(b.Cost[:0], n)
		case index[k] < 0:
			*dst = nil
		default:
			*dst, err = cs[k].indexes((*dst)[:0], n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
