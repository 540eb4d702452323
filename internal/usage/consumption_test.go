package usage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// readWithin reads a consumption file with fn, failing the test when the
// reader does not return within a few seconds.
func readWithin(t *testing.T, data []byte, fn func(*ConsumptionBatch) error) (err error, panicked any) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { panicked = recover() }()
		err = ReadConsumption(context.Background(), bytes.NewReader(data), int64(len(data)), fn)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not return")
	}
	return err, panicked
}

// settled waits for the goroutines to come back to n, failing the test
// when they do not: the reader left one behind.
func settled(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the read", runtime.NumGoroutine(), n)
		}
	}
}

// TestCorruptPageIsRefused: a file whose page the Parquet library panics
// on is refused with a clear error, and the reader ends.
func TestCorruptPageIsRefused(t *testing.T) {
	data, err := os.ReadFile("testdata/corrupt-page.parquet")
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	err, panicked := readWithin(t, data, func(*ConsumptionBatch) error { return nil })
	if panicked != nil || err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("a corrupt page: error %v, panic %v; want an error saying the file is corrupt", err, panicked)
	}
	settled(t, before)
}

// TestCallbackPanicEndsTheReader: a panic of the callback reaches the
// caller once the reader reading ahead has ended; an error of it is
// returned the same way.
func TestCallbackPanicEndsTheReader(t *testing.T) {
	defer func(was int) { sliceRows = was }(sliceRows)
	sliceRows = 10
	var buf bytes.Buffer
	w := NewConsumptionWriter(&buf)
	for i := range 100 {
		if err := w.Write(Consumption{Tenant: "t", Resource: fmt.Sprintf("/subscriptions/s/resourcegroups/rg/providers/a/b/r%d", i),
			Date: "2026-01-01", Cost: 1, Meter: "standard"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	batches := 0
	err, panicked := readWithin(t, buf.Bytes(), func(*ConsumptionBatch) error {
		if batches++; batches == 2 {
			panic("the callback's own")
		}
		return nil
	})
	if panicked != "the callback's own" || err != nil {
		t.Fatalf("a panicking callback: error %v, panic %v; want its panic", err, panicked)
	}
	settled(t, before)
	batches = 0
	err, _ = readWithin(t, buf.Bytes(), func(*ConsumptionBatch) error {
		if batches++; batches == 2 {
			return fmt.Errorf("the callback's error")
		}
		return nil
	})
	if err == nil || err.Error() != "the callback's error" || batches != 2 {
		t.Fatalf("a failing callback: error %v after %d batches; want its error after 2", err, batches)
	}
	settled(t, before)
}
