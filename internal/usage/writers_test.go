package usage

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
)

// TestSpillingConsumptionWriterWritesTheSameBytes: pages waiting in
// temporary files rather than in memory change nothing of the file, and
// leave no file behind; a folder that cannot hold them is an error.
func TestSpillingConsumptionWriterWritesTheSameBytes(t *testing.T) {
	dir := t.TempDir()
	var inMemory, spilled bytes.Buffer
	writers := []*ConsumptionWriter{NewConsumptionWriter(&inMemory), NewSpillingConsumptionWriter(&spilled, dir)}
	for i := range 100000 {
		c := Consumption{Tenant: fmt.Sprintf("t%d", i%7), Resource: fmt.Sprintf("/subscriptions/s/resourcegroups/rg/providers/a/b/r%d", i%5000),
			Date: fmt.Sprintf("2026-01-%02d", 1+i/5000), Cost: float64(i%997) / 8, Meter: "standard"}
		for _, w := range writers {
			if err := w.Write(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, w := range writers {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if inMemory.Len() == 0 || !bytes.Equal(inMemory.Bytes(), spilled.Bytes()) {
		t.Errorf("the spilling writer wrote %d bytes, not the %d of the writer in memory", spilled.Len(), inMemory.Len())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	w := NewSpillingConsumptionWriter(&bytes.Buffer{}, dir+"/missing")
	w.Write(Consumption{Tenant: "t"})
	if err := w.Close(); err == nil {
		t.Error("a folder that does not exist: no error")
	}
}

// TestTimelineWriterRowGroups: Flush ends a row group, and the rows read
// back as written, nulls included.
func TestTimelineWriterRowGroups(t *testing.T) {
	sub, share, active, end := "s1", 0.5, true, int64(2000)
	rows := []Interval{
		{Tenant: "t", Resource: "app", Workload: "power_apps", Org: "1", Partner: "11", Account: "a", Start: 1000},
		{Tenant: "t", Resource: "/subscriptions/s1/x", Workload: "azure", Subscription: &sub, Org: "2", Partner: "21",
			Account: "b", Share: &share, Active: &active, Start: 1000, End: &end},
	}
	var buf bytes.Buffer
	w := NewTimelineWriter(&buf)
	for i, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.RowGroups()); got != 2 {
		t.Errorf("%d row groups, want 2", got)
	}
	got, err := parquet.Read[Interval](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rows, got); diff != "" {
		t.Errorf("rows read back (-want +got):\n%s", diff)
	}
}
