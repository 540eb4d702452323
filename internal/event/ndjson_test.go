package event

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// readAll reads every line of a log, returning the events and refusals.
func readAll(t testing.TB, data []byte) ([]*Event, []*Refusal) {
	t.Helper()
	var events []*Event
	var refusals []*Refusal
	r := NewReader(bytes.NewReader(data))
	for {
		ev, rf, err := r.Next()
		if errors.Is(err, io.EOF) {
			return events, refusals
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if rf != nil {
			refusals = append(refusals, rf)
			continue
		}
		events = append(events, ev)
	}
}

func TestDecodeRefusals(t *testing.T) {
	tests := []struct {
		line string
		want Code
	}{
		{`not json`, Malformed},
		{`{"type":"usage","time":"2026-01-01T00:00:00Z","tenant":"t","resource":"r","user":7}`, Malformed},
		{`{"type":7,"time":"2026-01-01T00:00:00Z"}`, Malformed},
		{`{"type":"usage","time":"2026-01-01T00:00:00Z","tenant":"t","resource":"r"}`, MissingField},
		{`{"type":"usage","time":"2026-01-01T00:00:00Z","tenant":"","resource":"r","user":"u"}`, MissingField},
		{`{"type":"usage","time":"2026-01-01T00:00:00Z","tenant":null,"resource":"r","user":"u"}`, MissingField},
		{`{"time":"2026-01-01T00:00:00Z"}`, MissingField},
		{`{"type":"usage","tenant":"t","resource":"r","user":"u"}`, MissingField},
		{`{"type":"nope","time":"x"}`, UnknownType},
		{`{"type":"usage","time":"yesterday","tenant":"t","resource":"r","user":"u"}`, InvalidTime},
		{`{"type":"usage","time":"yesterday","resource":"r","user":"u"}`, MissingField},
		{`{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t","account":"a","partner":"12a456"}`, InvalidPartnerID},
		{`{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t","account":"a","partner":"12345678901"}`, InvalidPartnerID},
		{`{"type":"resource.created","time":"2026-01-01T00:00:00Z","tenant":"t","environment":"e","resource":"r","kind":"app","owner":"o"}`, InvalidKind},
		{`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","locations":["100011"],"segment":"huge"}`, InvalidValue},
		{`{"type":"partner.metrics","time":"2026-01-01T00:00:00Z","org":"100001","month":"2026-01","net_customer_adds":1,"intermediate_certified":-1,"advanced_certified":0}`, InvalidValue},
	}
	for _, tt := range tests {
		ev, rf := Decode([]byte(tt.line), 3)
		if rf == nil {
			t.Errorf("Decode(%s) = %+v, want refusal %s", tt.line, ev, tt.want)
			continue
		}
		if rf.Code != tt.want || rf.Line != 3 || rf.Message == "" {
			t.Errorf("Decode(%s) refused with %+v, want code %s on line 3 with a message", tt.line, rf, tt.want)
		}
	}
}

// TestZeroWithAMinusIsZero: JSON writes a negative zero as -0 (Go) or
// -0.0 (Python); such a cost is zero, not negative, and a record of it
// replaces the day's cost as any other does.
func TestZeroWithAMinusIsZero(t *testing.T) {
	line := func(cost string) []byte {
		return []byte(`{"type":"azure.consumption","time":"2026-01-05T00:00:00Z","tenant":"c","resource":"/subscriptions/s1/resourceGroups/r/providers/A.B/c/d","date":"2026-01-04","cost":` + cost + `}`)
	}
	for _, cost := range []string{"-0", "-0.0", "-0e5", "-0.000E-2", "0"} {
		if _, rf := Decode(line(cost), 1); rf != nil {
			t.Errorf("cost %s refused: %v", cost, rf)
		}
	}
	for _, cost := range []string{"-0.5", "-1e-3", "-10"} {
		if _, rf := Decode(line(cost), 1); rf == nil || rf.Code != InvalidValue {
			t.Errorf("cost %s: %v, want invalid_value", cost, rf)
		}
	}
}

func TestDecodeNormalisesAndIgnoresUnknownFields(t *testing.T) {
	ev, rf := Decode([]byte(`{"type":"partner.registered","time":"2026-01-01T01:30:00+01:30","org":"100001","locations":["100011"],"color":"red","count":"ignored"}`), 1)
	if rf != nil {
		t.Fatalf("refused: %v", rf)
	}
	if want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); !ev.Time.Equal(want) || ev.Time.Location() != time.UTC {
		t.Errorf("time = %v, want %v in UTC", ev.Time, want)
	}
	if ev.Segment != SMB {
		t.Errorf("segment = %q, want the default %q", ev.Segment, SMB)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	events := []*Event{
		{Type: SolutionImported, Time: time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC), ID: "x\"1", Tenant: "t<1>", Environment: "e", Account: "a",
			Resources: []SolutionResource{{Resource: "r1", Kind: "flow", Name: "Flow ✓"}, {Resource: "r2", Kind: "bot"}}},
		{Type: PartnerMetrics, Time: time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC), Org: "100001", Month: "2026-01", NetCustomerAdds: -2, IntermediateCertified: 3, AdvancedCertified: 0},
		{Type: Profiles, Time: time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC), Tenant: "t", Resource: "ci", Count: 0},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, ev := range events {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, refusals := readAll(t, buf.Bytes())
	if len(refusals) > 0 {
		t.Fatalf("refusals reading back %s: %v", buf.String(), refusals[0])
	}
	for i, ev := range got {
		ev.Line = 0
		want := *events[i]
		if a, b := string(ev.AppendJSON(nil)), string(want.AppendJSON(nil)); a != b {
			t.Errorf("event %d: read back %s, wrote %s", i, a, b)
		}
		if ev.Count != want.Count || ev.NetCustomerAdds != want.NetCustomerAdds || len(ev.Resources) != len(want.Resources) {
			t.Errorf("event %d: read back %+v, want %+v", i, ev, want)
		}
	}
}

func TestReaderLinesAndLongLines(t *testing.T) {
	long := `{"type":"usage","time":"2026-01-01T00:00:00Z","tenant":"t","resource":"r","user":"` + strings.Repeat("u", MaxLineBytes) + `"}`
	log := "\xef\xbb\xbf" + `{"type":"usage","time":"2026-01-01T00:00:00Z","tenant":"t","resource":"r","user":"u"}` + "\r\n\n   \n" + long + "\n" +
		`{"type":"usage","time":"2026-01-01T00:00:00Z","tenant":"t","resource":"r","user":"v"}`
	events, refusals := readAll(t, []byte(log))
	if len(events) != 2 || events[0].Line != 1 || events[1].Line != 5 || events[1].User != "v" {
		t.Fatalf("events = %+v, want lines 1 and 5", events)
	}
	if len(refusals) != 1 || refusals[0].Line != 4 || refusals[0].Code != Malformed {
		t.Fatalf("refusals = %+v, want line 4 malformed", refusals)
	}
}

// TestASolutionOfThousands: a solution listing thirty thousand flows, a
// line of about 2.5 MB, is one event, read whole.
func TestASolutionOfThousands(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"type":"solution.imported","time":"2026-01-05T00:00:00Z","tenant":"t","environment":"prod","account":"alice","resources":[`)
	for i := range 30000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"resource":"flow-%05d","kind":"flow","name":"Approval flow number %05d of the finance team"}`, i, i)
	}
	b.WriteString("]}\n")
	events, refusals := readAll(t, []byte(b.String()))
	if len(refusals) > 0 || len(events) != 1 || len(events[0].Resources) != 30000 {
		t.Fatalf("a solution of %d bytes: %d events, refusals %+v", b.Len(), len(events), refusals)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"type":"usage","time":"2026-01-01T00:00:00Z","tenant":"t","resource":"r","user":"u"}`))
	f.Add([]byte(`{"type":"solution.imported","time":"2026-01-01T00:00:00Z","tenant":"t","environment":"e","account":"a","resources":[{"resource":"r","kind":"flow"}]}` + "\n[]\n{}"))
	f.Add([]byte(`{"type":"partner.registered","time":"2026-01-01T00:00:00+02:00","org":"100001","locations":["100011",null]}`))
	f.Add([]byte("\xff\xfe\n\n{\"type\":null}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, refusals := readAll(t, data)
		for _, rf := range refusals {
			if rf.Line < 1 || rf.Code == "" || rf.Message == "" {
				t.Fatalf("refusal without line, code or message: %+v", rf)
			}
		}
		for _, ev := range events {
			if _, ok := schemas[ev.Type]; !ok || ev.Time.Location() != time.UTC {
				t.Fatalf("accepted event of type %q at %v", ev.Type, ev.Time)
			}
			// What was accepted is written and read back the same.
			line := ev.AppendJSON(nil)
			back, rf := Decode(line, 1)
			if rf != nil {
				t.Fatalf("an accepted event does not read back: %s: %v", line, rf)
			}
			if again := back.AppendJSON(nil); !bytes.Equal(again, line) {
				t.Fatalf("round trip changed %s into %s", line, again)
			}
		}
	})
}

func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const lines = 10000
	for i := range lines {
		w.Write(&Event{Type: Usage, Time: at.Add(time.Duration(i) * time.Second), Tenant: "contoso", Resource: "expenses", User: "user0123@contoso.example"})
	}
	w.Flush()
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		events, _ := readAll(b, data)
		if len(events) != lines {
			b.Fatalf("read %d events", len(events))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/event")
}

// failingReader gives its bytes, then an error.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, f.err
	}
	return n, err
}

// TestEachIsNextInOrder: Each gives fn what Next reads, line by line and in
// order, whatever the log's length, its blank, bad and overlong lines; it
// stops at fn's first error, and ends with the reader's error after the
// lines before it.
func TestEachIsNextInOrder(t *testing.T) {
	good := `{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t","account":"a%d","partner":"100"}`
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 100 {
		var b bytes.Buffer
		long := round%10 == 0
		if round%7 == 0 {
			b.WriteString("\xef\xbb\xbf")
		}
		for i := range rng.IntN(3 * chunkLines) {
			switch rng.IntN(20) {
			case 0:
				b.WriteString("   ")
			case 1:
				b.WriteString("not json")
			case 2:
				if long {
					b.WriteString(strings.Repeat("x", MaxLineBytes+5))
					long = false
				}
			default:
				fmt.Fprintf(&b, good, i)
			}
			b.WriteString("\n")
		}
		log := b.Bytes()
		readErr := errors.New("the disk went away")
		open := func() *Reader {
			if round%3 == 0 {
				return NewReader(&failingReader{bytes.NewReader(log), readErr})
			}
			return NewReader(bytes.NewReader(log))
		}
		// What Next reads, one line after another.
		var want []string
		var wantErr error
		for r := open(); ; {
			ev, rf, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					wantErr = err
				}
				break
			}
			want = append(want, lineText(ev, rf))
		}
		// Each, to the end or stopped by fn.
		stop := len(want) + 1
		if round%2 == 1 && len(want) > 0 {
			stop = rng.IntN(len(want))
		}
		var got []string
		stopped := errors.New("stopped")
		err := open().Each(func(ev *Event, rf *Refusal) error {
			if len(got) == stop {
				return stopped
			}
			got = append(got, lineText(ev, rf))
			return nil
		})
		if stop <= len(want) {
			want, wantErr = want[:stop], stopped
		}
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("round %d: Each returned %v, want %v", round, err, wantErr)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: Each gave %d lines, Next %d; first difference at %d", round, len(got), len(want), firstDiff(got, want))
		}
	}
}

func lineText(ev *Event, rf *Refusal) string {
	if rf != nil {
		return fmt.Sprintf("refused line %d: %s %s", rf.Line, rf.Code, rf.Message)
	}
	return fmt.Sprintf("line %d: %s", ev.Line, ev.AppendJSON(nil))
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestEachEndsWithFn: a panic of fn's leaves no goroutine of Each behind,
// and Each returns at fn's error without waiting for more of a log that is
// still being written.
func TestEachEndsWithFn(t *testing.T) {
	line := `{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t","account":"a","partner":"100"}` + "\n"
	before := runtime.NumGoroutine()
	func() {
		defer func() { recover() }()
		NewReader(strings.NewReader(strings.Repeat(line, 3*chunkLines))).Each(func(*Event, *Refusal) error { panic("fn") })
	}()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after fn panicked, %d before", runtime.NumGoroutine(), before)
		}
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	go io.WriteString(pw, strings.Repeat(line, chunkLines+100))
	stop := errors.New("stop")
	done := make(chan error, 1)
	go func() { done <- NewReader(pr).Each(func(*Event, *Refusal) error { return stop }) }()
	select {
	case err := <-done:
		if !errors.Is(err, stop) {
			t.Fatalf("Each returned %v, want fn's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Each still waits for more of the log after fn's error")
	}
}
