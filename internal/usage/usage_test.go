package usage

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/palproject/pal/internal/event"
)

type row struct {
	at                     time.Time
	tenant, resource, user string
}

func collect(t *testing.T, data []byte, workers int) []row {
	t.Helper()
	var mu sync.Mutex
	var rows []row
	err := ReadParquet(context.Background(), bytes.NewReader(data), int64(len(data)), workers, func(_ int, b *Batch) error {
		mu.Lock()
		defer mu.Unlock()
		for i := range b.Len() {
			if b.Row(i) != b.First+int64(i) {
				t.Errorf("row number %d, want %d", b.Row(i), b.First+int64(i))
			}
			rows = append(rows, row{b.Time(i), b.Tenants.String(b.Tenant[i]), b.Resources.String(b.Resource[i]), b.Users.String(b.User[i])})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestParquetRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []row
	for i := range 100000 {
		r := row{base.Add(time.Duration(i) * time.Second), fmt.Sprintf("t%d", i%7), fmt.Sprintf("r%d", i%13), fmt.Sprintf("user-%d", i%1000)}
		want = append(want, r)
		if err := w.Write(r.at, r.tenant, r.resource, r.user); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// One row group, read in batches of every size, across page ends.
	for _, size := range []int{sliceRows, 777, 1} {
		defer func(was int) { sliceRows = was }(sliceRows)
		sliceRows = size
		got := collect(t, buf.Bytes(), 2)
		if len(got) != len(want) {
			t.Fatalf("batches of %d: read %d rows, want %d", size, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("batches of %d: row %d is %+v, want %+v", size, i+1, got[i], want[i])
			}
		}
	}
}

// plainRow has the usage columns without dictionary encoding, in
// milliseconds, as another tool may write them.
type plainRow struct {
	User     string `parquet:"user"`
	Time     int64  `parquet:"time,timestamp(millisecond)"`
	Resource string `parquet:"resource"`
	Tenant   string `parquet:"tenant"`
	Extra    int64  `parquet:"extra"`
}

func TestPlainColumnsInAnyOrder(t *testing.T) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[plainRow](&buf)
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	w.Write([]plainRow{{User: "u1", Time: at.UnixMilli(), Resource: "r1", Tenant: "t1"}, {User: "u2", Time: at.UnixMilli(), Resource: "r1", Tenant: "t1"}})
	w.Close()
	got := collect(t, buf.Bytes(), 1)
	if len(got) != 2 || got[0] != (row{at, "t1", "r1", "u1"}) || got[1].user != "u2" {
		t.Fatalf("read %+v", got)
	}
}

func TestBadFiles(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Write(time.Now(), "t", "r", "u")
	w.Close()
	good := buf.Bytes()
	type noUser struct {
		Time   int64  `parquet:"time,timestamp(microsecond)"`
		Tenant string `parquet:"tenant"`
	}
	var missing bytes.Buffer
	mw := parquet.NewGenericWriter[noUser](&missing)
	mw.Write([]noUser{{Time: 1, Tenant: "t"}})
	mw.Close()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"not parquet", []byte("tenant,resource\nt,r\n"), "not a readable Parquet file"},
		{"truncated", good[:len(good)-20], "not a readable Parquet file"},
		{"missing column", missing.Bytes(), `no column "resource"`},
	}
	for _, tt := range tests {
		err := ReadParquet(context.Background(), bytes.NewReader(tt.data), int64(len(tt.data)), 2, func(int, *Batch) error { return nil })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

func TestReadNDJSON(t *testing.T) {
	log := `{"type":"usage","time":"2026-01-01T00:00:00Z","tenant":"t","resource":"r","user":"u1"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t","account":"a","partner":"100011"}

{"type":"usage","time":"2026-01-01T00:00:01Z","tenant":"t","resource":"r","user":"u2"}
{"type":"usage","time":"2026-01-01T00:00:02Z","tenant":"t","resource":"r2","user":"u1"}
`
	var refused []*event.Refusal
	var lines []int64
	var users []string
	err := ReadNDJSON(strings.NewReader(log), 2, func(rf *event.Refusal) { refused = append(refused, rf) }, func(b *Batch) error {
		for i := range b.Len() {
			lines = append(lines, b.Row(i))
			users = append(users, b.Users.String(b.User[i]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(lines) != "[1 4 5]" || fmt.Sprint(users) != "[u1 u2 u1]" {
		t.Errorf("lines %v users %v", lines, users)
	}
	if len(refused) != 1 || refused[0].Line != 2 || refused[0].Code != event.InvalidValue {
		t.Errorf("refused %+v, want line 2 invalid_value", refused)
	}
}
