package cli

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/metrics"
)

// TestJSONRowsIsJSON: a report written a row at a time is, byte for byte,
// the report written whole, with rows, without, and with empty lists.
func TestJSONRowsIsJSON(t *testing.T) {
	type withTime struct {
		At   time.Time         `json:"at"`
		Rows []attribution.Row `json:"resources"`
		None []string          `json:"none"`
		Nil  []string          `json:"nil"`
		Skip string            `json:"-"`
		Text string            `json:"text,omitempty"`
	}
	for _, v := range []any{
		azure.Report{Month: "2026-01", Policy: "all", Resources: []azure.ResourceRow{{Tenant: "t<1>", Resource: "/a"}, {Tenant: "t2"}}, Subscriptions: []azure.Subscription{}},
		metrics.Monthly{Month: "2026-03", Resources: []metrics.ResourceRow{{Tenant: "contoso", MAU: 3}}},
		withTime{At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Rows: []attribution.Row{{Tenant: "x", Shares: []credit.Share{{Partner: "1"}}}}, None: []string{}, Text: "a & b"},
		withTime{},
		struct{}{},
	} {
		var whole, rows bytes.Buffer
		if err := writeJSON(&whole, v); err != nil {
			t.Fatal(err)
		}
		if err := writeJSONRows(&rows, v); err != nil {
			t.Fatal(err)
		}
		if whole.String() != rows.String() {
			t.Errorf("%T a row at a time:\n%s\nwhole:\n%s", v, rows.String(), whole.String())
		}
	}
}

// TestIndentFlatIsIndent: a flat object indented as a report's rows are is,
// byte for byte, what json.Indent writes, whatever its strings hold; any
// other value is left to json.Indent.
func TestIndentFlatIsIndent(t *testing.T) {
	alphabet := []rune(`ab"\,:{}[] /<>&é` + "\n\t\x00\u2028")
	rng := rand.New(rand.NewPCG(3, 4))
	text := func() string {
		r := make([]rune, rng.IntN(12))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(r)
	}
	for range 5000 {
		obj := map[string]any{}
		nested := false
		for range rng.IntN(5) {
			switch rng.IntN(6) {
			case 0:
				obj[text()] = rng.Float64() * 1e6
			case 1:
				obj[text()] = rng.IntN(2) == 0
			case 2:
				obj[text()] = nil
			case 3:
				obj[text()], nested = []string{text()}, true
			case 4:
				obj[text()], nested = map[string]string{text(): text()}, true
			default:
				obj[text()] = text()
			}
		}
		var value any = obj
		if rng.IntN(10) == 0 {
			value = text()
		}
		compact, err := json.Marshal(value)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := json.Indent(&want, compact, "    ", "  "); err != nil {
			t.Fatal(err)
		}
		got, flat := indentFlat([]byte("x"), compact, "    ")
		if !flat {
			if string(got) != "x" {
				t.Fatalf("%s is not flat, yet indentFlat wrote %q", compact, got)
			}
			if _, isObject := value.(map[string]any); isObject && len(obj) > 0 && !nested {
				t.Fatalf("%s is flat, yet indentFlat refused it", compact)
			}
			continue
		}
		if string(got[1:]) != want.String() {
			t.Fatalf("indentFlat(%s):\n%s\njson.Indent:\n%s", compact, got[1:], want.String())
		}
	}
}
