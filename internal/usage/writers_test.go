package usage

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
)

// TestConsumptionWriterFlushEndsARowGroup: Flush ends a row group, a
// Flush with nothing written adds none, and the rows read back as written,
// in order.
func TestConsumptionWriterFlushEndsARowGroup(t *testing.T) {
	var buf bytes.Buffer
	w := NewConsumptionWriter(&buf)
	var want []string
	for g := range 3 {
		for i := range 5000 {
			c := Consumption{Tenant: fmt.Sprintf("t%d", g), Resource: fmt.Sprintf("/subscriptions/s/resourcegroups/rg/providers/a/b/r%d", i),
				Date: "2026-01-01", Cost: float64(i%997) / 8, Meter: "standard"}
			if err := w.Write(c); err != nil {
				t.Fatal(err)
			}
			want = append(want, c.Tenant+c.Resource)
		}
		for range 2 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rowGroups(t, buf.Bytes()); got != 3 {
		t.Errorf("%d row groups, want 3", got)
	}
	var got []string
	err := ReadConsumption(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), func(b *ConsumptionBatch) error {
		for i := range b.Len() {
			_, tenant, resource, _, _, _ := b.Row(i)
			got = append(got, tenant+resource)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows read back (-want +got):\n%s", diff)
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
	if got := rowGroups(t, buf.Bytes()); got != 2 {
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

// TestReadConsumptionDaysSkipsOtherMonths: the row groups whose dates all
// fall outside the days asked are not read, and the rows read keep their
// numbers in the file.
func TestReadConsumptionDaysSkipsOtherMonths(t *testing.T) {
	var buf bytes.Buffer
	w := NewConsumptionWriter(&buf)
	for m := 1; m <= 3; m++ {
		for d := 1; d <= 4; d++ {
			if err := w.Write(Consumption{Tenant: "t", Resource: "/subscriptions/s/r", Date: fmt.Sprintf("2026-%02d-%02d", m, d), Cost: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := ReadConsumptionDays(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), "2026-02-01", "2026-02-28", func(b *ConsumptionBatch) error {
		for i := range b.Len() {
			line, _, _, date, _, _ := b.Row(i)
			got = append(got, fmt.Sprintf("%d %s", line, date))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"5 2026-02-01", "6 2026-02-02", "7 2026-02-03", "8 2026-02-04"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows read (-want +got):\n%s", diff)
	}
}

// rowGroups returns how many row groups a Parquet file has.
func rowGroups(t *testing.T, data []byte) int {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return len(f.RowGroups())
}
