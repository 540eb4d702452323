package usage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
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

// TestLowerASCIIIsToLower: a path lowered as ASCII is what strings.ToLower
// makes of it, and one that is not ASCII is left to strings.ToLower.
func TestLowerASCIIIsToLower(t *testing.T) {
	alphabet := []byte("aZ/.-_09\x7f\x80\xc3\x89\xe2\x84\xaa")
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		s := make([]byte, rng.IntN(20))
		for i := range s {
			s[i] = alphabet[rng.IntN(len(alphabet))]
		}
		got, ok := lowerASCII([]byte("x"), s)
		ascii := !bytes.ContainsFunc(s, func(r rune) bool { return r >= 0x80 })
		switch {
		case ok != ascii:
			t.Fatalf("lowerASCII(%q) reports %v", s, ok)
		case ok && string(got[1:]) != strings.ToLower(string(s)):
			t.Fatalf("lowerASCII(%q) = %q, strings.ToLower gives %q", s, got[1:], strings.ToLower(string(s)))
		case !ok && string(got) != "x":
			t.Fatalf("lowerASCII(%q) wrote %q though it is not ASCII", s, got)
		}
	}
}
