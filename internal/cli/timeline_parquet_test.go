package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/usage"
)

// TestTimelineParquetHoldsAzureRecognition writes the Parquet timeline of a
// log with Power Platform and Azure resources under each Azure policy, and
// checks it against the JSON timeline: the Power Platform rows as they
// were, then, in row groups of their own, the Azure recognition intervals,
// whose credited spans joined are the JSON timeline's Azure rows.
func TestTimelineParquetHoldsAzureRecognition(t *testing.T) {
	dir := t.TempDir()
	pp, az := filepath.Join(dir, "pp"), filepath.Join(dir, "az")
	if code, _, errOut := run(t, "", "gen", "--seed", "3", "--tenants", "10", "--usage-events", "1000", "--months", "1", "--out", pp); code != 0 {
		t.Fatalf("pal gen: %s", errOut)
	}
	if code, _, errOut := run(t, "", "gen", "--azure", "--seed", "3", "--tenants", "8", "--resources", "120", "--months", "1", "--out", az); code != 0 {
		t.Fatalf("pal gen --azure: %s", errOut)
	}
	// One log of both: their tenants and organisations are apart.
	var log []byte
	for _, d := range []string{pp, az} {
		data, err := os.ReadFile(filepath.Join(d, "control.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, data...)
	}
	logPath, consumption := filepath.Join(dir, "log.ndjson"), filepath.Join(az, "consumption.parquet")
	if err := os.WriteFile(logPath, log, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, policy := range []string{"all", "latest", "split"} {
		flags := []string{"--log", logPath, "--consumption", consumption, "--azure-policy", policy}
		out := filepath.Join(dir, "timeline-"+policy+".parquet")
		if code, _, errOut := run(t, "", append([]string{"timeline", "--format", "parquet", "--out", out}, flags...)...); code != 0 {
			t.Fatalf("%s: pal timeline --format parquet: exit %d %s", policy, code, errOut)
		}
		_, js, _ := run(t, "", append([]string{"timeline", "--format", "json"}, flags...)...)
		var want struct{ Intervals []interval }
		if err := json.Unmarshal([]byte(js), &want); err != nil {
			t.Fatal(err)
		}
		groups := readTimelineGroups(t, out)
		var ppRows, azRows []usage.Interval
		for _, g := range groups {
			isAzure := g[0].Workload == azure.Workload
			for _, r := range g {
				if (r.Workload == azure.Workload) != isAzure {
					t.Fatalf("%s: a row group holds Azure and Power Platform rows", policy)
				}
				if (r.Subscription != nil) != isAzure || (r.Share != nil) != isAzure || (r.Active != nil) != isAzure {
					t.Fatalf("%s: row %+v: subscription, share and active are an Azure row's only", policy, r)
				}
			}
			if isAzure {
				azRows = append(azRows, g...)
			} else if len(azRows) > 0 {
				t.Fatalf("%s: Power Platform rows after Azure rows", policy)
			} else {
				ppRows = append(ppRows, g...)
			}
		}
		var wantPP, wantAz []interval
		for _, w := range want.Intervals {
			if w.Workload == azure.Workload {
				wantAz = append(wantAz, w)
			} else {
				wantPP = append(wantPP, w)
			}
		}
		if len(ppRows) != len(wantPP) || len(wantPP) == 0 || len(wantAz) == 0 {
			t.Fatalf("%s: %d Power Platform rows, want %d (and %d Azure intervals)", policy, len(ppRows), len(wantPP), len(wantAz))
		}
		for i, r := range ppRows {
			w := wantPP[i]
			if r.Tenant != w.Tenant || r.Resource != w.Resource || r.Partner != w.Partner || r.Start != w.Start.UnixMicro() || (r.End == nil) != (w.End == nil) {
				t.Fatalf("%s: Power Platform row %d: %+v, want %+v", policy, i, r, w)
			}
		}
		got := joinCredit(azRows)
		if len(got) != len(wantAz) {
			t.Fatalf("%s: the Azure rows give %d credit intervals, want %d", policy, len(got), len(wantAz))
		}
		shares := map[float64]int{}
		for i, w := range wantAz {
			g := got[i]
			if g.Tenant != w.Tenant || g.Resource != w.Resource || g.Partner != w.Partner || g.Org != w.Org ||
				g.Start != w.Start.UnixMicro() || !sameEnd(g.End, w.End) || *g.Share != *w.Share ||
				!strings.HasPrefix(g.Resource, "/subscriptions/"+*g.Subscription+"/") {
				t.Fatalf("%s: credit interval %d: %+v, want %+v", policy, i, g, w)
			}
		}
		for _, r := range azRows {
			shares[*r.Share]++
		}
		if policy == "latest" && shares[0] == 0 || policy == "split" && shares[0.5] == 0 {
			t.Errorf("%s: the shares of the Azure rows are %v", policy, shares)
		}
	}
	// --tenant keeps one tenant's rows, Azure ones too.
	out := filepath.Join(dir, "one.parquet")
	if code, _, errOut := run(t, "", "timeline", "--log", logPath, "--consumption", consumption, "--tenant", "customer-00002",
		"--format", "parquet", "--out", out); code != 0 {
		t.Fatalf("pal timeline --tenant: %s", errOut)
	}
	n := 0
	for _, g := range readTimelineGroups(t, out) {
		for _, r := range g {
			if r.Tenant != "customer-00002" {
				t.Fatalf("--tenant customer-00002 wrote a row of %s", r.Tenant)
			}
			n++
		}
	}
	if n == 0 {
		t.Error("--tenant customer-00002 wrote no row")
	}
}

// readTimelineGroups reads a Parquet timeline, row group by row group.
func readTimelineGroups(t *testing.T, path string) [][]usage.Interval {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var groups [][]usage.Interval
	for _, g := range f.RowGroups() {
		rows := make([]usage.Interval, g.NumRows())
		r := parquet.NewGenericRowGroupReader[usage.Interval](g)
		if n, err := r.Read(rows); n != len(rows) {
			t.Fatalf("row group: %d of %d rows: %v", n, len(rows), err)
		}
		r.Close()
		groups = append(groups, rows)
	}
	return groups
}

// joinCredit joins the credited spans of each location of each resource,
// as the JSON timeline lists them: by resource, then start, then location.
func joinCredit(rows []usage.Interval) []usage.Interval {
	var out []usage.Interval
	last := map[string]int{}
	for _, r := range rows {
		if *r.Share == 0 {
			continue
		}
		k := r.Tenant + " " + r.Resource + " " + r.Partner
		if i, ok := last[k]; ok && out[i].End != nil && *out[i].End == r.Start && out[i].Org == r.Org && *out[i].Share == *r.Share {
			out[i].End = r.End
			continue
		}
		last[k] = len(out)
		out = append(out, r)
	}
	// Rows come by resource, and by start within one; a joined interval
	// keeps its start, so the order holds but for equal starts.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Tenant == out[j-1].Tenant && out[j].Resource == out[j-1].Resource &&
			(out[j].Start < out[j-1].Start || out[j].Start == out[j-1].Start && out[j].Partner < out[j-1].Partner); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func sameEnd(got *int64, want *time.Time) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	return *got == want.UnixMicro()
}
