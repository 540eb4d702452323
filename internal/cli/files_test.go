package cli

import (
	"bytes"
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
