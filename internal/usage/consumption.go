package usage

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
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
// Close when done.
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

// Close writes what is buffered and the file's footer.
func (w *ConsumptionWriter) Close() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.pw.Close()
}

// ReadConsumption calls fn with every row of a Parquet consumption file, in
// file order, numbered from 1.
func ReadConsumption(r io.ReaderAt, size int64, fn func(row int, c Consumption) error) error {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return fmt.Errorf("not a Parquet file: %w", err)
	}
	for _, name := range []string{"tenant", "resource", "date", "cost"} {
		if _, ok := f.Schema().Lookup(name); !ok {
			return fmt.Errorf("the file has no %q column; a consumption file has tenant, resource, date, cost and meter", name)
		}
	}
	rd := parquet.NewGenericReader[Consumption](f)
	defer rd.Close()
	buf := make([]Consumption, 1024)
	row := 0
	for {
		n, err := rd.Read(buf)
		for _, c := range buf[:n] {
			row++
			if err := fn(row, c); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
