package usage

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestCostColumnsReadPlainColumns: a file whose string columns have no
// dictionary, over many pages (as other writers than pal write them),
// grows its dictionaries as its pages are read; every row is read as the
// cost it is.
func TestCostColumnsReadPlainColumns(t *testing.T) {
	type plain struct {
		Tenant   string  `parquet:"tenant"`
		Resource string  `parquet:"resource"`
		Date     string  `parquet:"date"`
		Cost     float64 `parquet:"cost"`
		Meter    string  `parquet:"meter"`
	}
	const n = 20000
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[plain](&buf, parquet.PageBufferSize(4096))
	for i := range n {
		row := plain{Tenant: fmt.Sprintf("t%d", i%3), Resource: fmt.Sprintf("/subscriptions/s/resourcegroups/rg/providers/a/b/r%d", i),
			Date: fmt.Sprintf("2026-01-%02d", 1+i%28), Cost: float64(i%100) / 4, Meter: "standard"}
		if _, err := w.Write([]plain{row}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var cols CostColumns
	read := 0
	err := ReadConsumption(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), func(b *ConsumptionBatch) error {
		for i := range b.Len() {
			c, ok := cols.Cost(b, i)
			want := fmt.Sprintf("/subscriptions/s/resourcegroups/rg/providers/a/b/r%d", read)
			if !ok || c.Resource != want || c.Tenant != fmt.Sprintf("t%d", read%3) || c.Nanos != int64(read%100)*25e7 {
				t.Fatalf("row %d: %+v, %v", read, c, ok)
			}
			read++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if read != n {
		t.Errorf("%d rows read, want %d", read, n)
	}
}
