package collect

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/collect/collecttest"
	"github.com/palproject/pal/internal/imports"
)

// TestPowerPlatformAndAudit reads Contoso's Power Platform and audit
// through an API that answers a record a page, throttles the first list
// of each (a 429 with Retry-After) and fails an app's permissions once (a
// 500): every page is read, the waits are the ones asked for, and the log
// is the one pal import writes of the cmdlets' export and the Purview
// audit search of the same records.
func TestPowerPlatformAndAudit(t *testing.T) {
	st := collecttest.FirstDay(t, "testdata")
	// A second content blob in the last day, so that its list spans two
	// pages.
	st.Audit[contoso] = append(st.Audit[contoso], collecttest.AuditContent{Created: day1.Add(-time.Hour), Records: []json.RawMessage{json.RawMessage(
		`{"CreationTime": "2026-01-10T04:30:00", "Id": "6a1f0c52-0000-4000-8000-0000000000c9", "Operation": "LaunchPowerApp", "OrganizationId": "contoso-tenant-id", "RecordType": 256, "Workload": "PowerPlatform", "UserId": "carol@contoso.example", "PropertyCollection": [{"Name": "powerplatform.analytics.resource.power_app.id", "Value": "` + collecttest.HelpDesk + `"}, {"Name": "enduser.principal_name", "Value": "carol@contoso.example"}]}`)}})
	api := collecttest.New(t)
	st.Serve(api)
	api.PageSize = 1
	throttled := collecttest.Failure{Status: http.StatusTooManyRequests, Code: "TooManyRequests", Header: http.Header{"Retry-After": {"1"}}}
	api.Fail(collecttest.EnvironmentsPath, throttled)
	api.Fail(collecttest.AuditContentPath(contoso), collecttest.Failure{Status: http.StatusTooManyRequests, Code: "AF429", Header: http.Header{"Retry-After": {"1"}}})
	api.Fail(collecttest.PermissionsPath(collecttest.ProductionEnv, collecttest.Expenses), collecttest.Failure{Status: http.StatusInternalServerError, Code: "InternalServerError"})
	cfg := Config{Tenants: []Tenant{{Tenant: contoso, Sources: []string{"users", "powerapps", "audit"}}}}
	rep, sink := runDay1(t, api, &cfg)
	for _, f := range rep.Failed() {
		t.Errorf("failed: %v", f)
	}
	dir := t.TempDir()
	cmdlets, _ := json.Marshal(st.Cmdlets)
	apps := filepath.Join(dir, "apps.json")
	os.WriteFile(apps, cmdlets, 0o644)
	want := importChain(t, readLog(t, seed), day1, []step{
		{source: "users", tenant: contoso, files: []string{filepath.Join("testdata", "users-contoso.json")}},
		{source: "powerapps", tenant: contoso, files: []string{apps}},
		{source: "audit", tenant: contoso, files: []string{purviewExport(t, st, dir, day1)}},
	})
	if diff := cmp.Diff(lines(want), lines(sink.log)); diff != "" {
		t.Errorf("the collected log differs from pal import's (-import +collect):\n%s", diff)
	}
	if !strings.Contains(strings.Join(lines(sink.log), "\n"), `"time":"2026-01-10T04:30:00Z","id":"imp-audit-`) {
		t.Errorf("the audit's second page of content was not read")
	}
	byPath := map[string][]collecttest.Request{}
	for _, r := range api.Requests() {
		byPath[r.Path] = append(byPath[r.Path], r)
	}
	for _, path := range []string{collecttest.EnvironmentsPath, collecttest.AuditContentPath(contoso)} {
		rs := byPath[path]
		// The request throttled, tried again (the others go on meanwhile).
		again := slices.IndexFunc(rs[1:], func(r collecttest.Request) bool { return r.Query == rs[0].Query })
		if len(rs) < 3 || rs[0].Status != 429 || again < 0 || rs[1+again].Status != 200 || rs[1+again].At.Sub(rs[0].At) < time.Second {
			t.Errorf("%s: %d requests %+v; want a 429, then the same request at least the Retry-After's second later", path, len(rs), rs)
		}
	}
	// Three environments a page; two windows of content, the second of
	// two pages (NextPageUri).
	if n := len(byPath[collecttest.EnvironmentsPath]); n != 1+3 {
		t.Errorf("the environments were asked %d times, want a 429 and 3 pages", n)
	}
	if n := len(byPath[collecttest.AuditContentPath(contoso)]); n != 1+1+2 {
		t.Errorf("the available content was asked %d times, want a 429, a page for the first day and 2 for the second", n)
	}
	if rs := byPath[collecttest.PermissionsPath(collecttest.ProductionEnv, collecttest.Expenses)]; len(rs) < 2 || rs[0].Status != 500 {
		t.Errorf("the expenses app's permissions: %+v, want a 500 then the pages", rs)
	}
}

// TestPowerPlatformAndAuditRefused: a 403 from the Power Platform admin
// API fails the source whole, naming the privilege it needs; a tenant
// whose audit subscription was never started is told how to start it;
// the other sources are written.
func TestPowerPlatformAndAuditRefused(t *testing.T) {
	api := world(t)
	api.Fail(collecttest.PermissionsPath(collecttest.ProductionEnv, collecttest.Timesheets), collecttest.Failure{Status: 403, Code: "Forbidden", Times: -1})
	cfg := Config{Tenants: []Tenant{
		{Tenant: contoso, Sources: []string{"users", "powerapps", "audit"}},
		{Tenant: fabrikam, Sources: []string{"users", "audit"}},
	}}
	rep, sink := runDay1(t, api, &cfg)
	failed := map[string]string{}
	for _, r := range rep.Failed() {
		failed[r.Tenant+" "+r.Source] = r.String()
	}
	want := map[string][]string{
		contoso + " powerapps": {"failed, nothing written", "GET " + api.URL + collecttest.PermissionsPath(collecttest.ProductionEnv, collecttest.Timesheets) + ": 403 Forbidden",
			"powerapps needs the Power Platform administrator role, or for a service principal its registration as a Power Platform management application"},
		fabrikam + " audit": {"400 Bad Request, AF20022: No subscription found", "POST https://manage.office.com/api/v1.0/fabrikam-tenant-id/activity/feed/subscriptions/start?contentType=Audit.General"},
	}
	for k, words := range want {
		for _, w := range words {
			if !strings.Contains(failed[k], w) {
				t.Errorf("%s: the report says %q, want it to say %q", k, failed[k], w)
			}
		}
	}
	if len(failed) != len(want) {
		t.Errorf("failed: %v, want %d", failed, len(want))
	}
	text := strings.Join(lines(sink.log), "\n")
	if strings.Contains(text, "imp-powerapps-") {
		t.Errorf("the failed powerapps source was written in part:\n%s", text)
	}
	// Contoso's audit ran against a log without the apps: it reports
	// their uses, and writes none of them.
	if !strings.Contains(text, `"name":"carol@contoso.example"`) || strings.Contains(text, `"type":"usage"`) {
		t.Errorf("the users should be written, and no use of an app the log does not know:\n%s", text)
	}
}

// exportCSV is a Cost Management export (EA columns) of rows of Contoso's
// first subscription: day (MM/DD/YYYY), resource group and name, cost.
func exportCSV(rows ...[3]string) []byte {
	var b bytes.Buffer
	b.WriteString("SubscriptionId,ResourceGroup,Date,MeterCategory,CostInBillingCurrency,BillingCurrencyCode,ResourceId,PublisherType,ChargeType,PricingModel\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%s,web,%s,Compute,%s,EUR,%s/resourceGroups/web/providers/Microsoft.Compute/virtualMachines/%s,Azure,Usage,OnDemand\n", sub1, r[0], r[2], sub1Path, r[1])
	}
	return b.Bytes()
}

func gzipped(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write(data)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCostExports reads a container that two exports' layouts share: of
// each period the cost window reaches, the newest run only (a run folder
// with its manifest, not one still being written; a file of the older
// layout), gzipped or not, over several pages of the listing, a download
// throttled once. It writes what pal import azure-costs writes of the
// same files. A Parquet file and a file outside any period's folder are
// named in the report; a period before the window is not read.
func TestCostExports(t *testing.T) {
	api := collecttest.New(t)
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	const p = "exports/pal-daily/"
	jan := exportCSV([3]string{"01/05/2026", "vm-web", "2.304"}, [3]string{"01/06/2026", "vm-web", "2.5"}, [3]string{"01/06/2026", "vm-db", "7.25"})
	decPart1 := exportCSV([3]string{"12/30/2025", "vm-web", "1.5"}, [3]string{"12/31/2025", "vm-web", "1.5"})
	decPart2 := exportCSV([3]string{"12/31/2025", "vm-db", "4"})
	blobs := []collecttest.Blob{
		// January, the layout before 2024: a file a run.
		{Name: p + "20260101-20260131/pal-daily_0b7c0c8e-aaaa-4000-8000-000000000001.csv", Body: exportCSV([3]string{"01/05/2026", "vm-web", "2.0"}), Modified: at("2026-01-08T02:00:00Z")},
		{Name: p + "20260101-20260131/pal-daily_0b7c0c8e-bbbb-4000-8000-000000000002.csv", Body: jan, Modified: at("2026-01-10T02:00:00Z")},
		// December, a folder a run: parts gzipped, and the manifest; a
		// later run still being written.
		{Name: p + "20251201-20251231/3c1d0a2b-0000-4000-8000-000000000001/part_0_0001.csv.gz", Body: gzipped(t, decPart1), Modified: at("2026-01-01T03:00:00Z")},
		{Name: p + "20251201-20251231/3c1d0a2b-0000-4000-8000-000000000001/part_0_0002.csv.gz", Body: gzipped(t, decPart2), Modified: at("2026-01-01T03:00:01Z")},
		{Name: p + "20251201-20251231/3c1d0a2b-0000-4000-8000-000000000001/manifest.json", Body: []byte(`{"manifestVersion": "2024-04-01", "blobCount": 2}`), Modified: at("2026-01-01T03:00:02Z")},
		{Name: p + "20251201-20251231/3c1d0a2b-0000-4000-8000-000000000002/part_0_0001.csv.gz", Body: gzipped(t, exportCSV([3]string{"12/31/2025", "vm-web", "99"})), Modified: at("2026-01-10T05:59:00Z")},
		// November: before the window.
		{Name: p + "20251101-20251130/pal-daily_0b7c0c8e-cccc-4000-8000-000000000003.csv", Body: exportCSV([3]string{"11/30/2025", "vm-web", "5"}), Modified: at("2025-12-01T02:00:00Z")},
		// What the reader leaves alone.
		{Name: p + "20260101-20260131/part_0_0001.parquet", Body: []byte("PAR1"), Modified: at("2026-01-10T02:00:00Z")},
		{Name: p + "readme.csv", Body: []byte("a,b\n1,2\n"), Modified: at("2026-01-02T02:00:00Z")},
	}
	api.SetBlobs("costs", blobs)
	blobPath := "/storage/costs/" + p + "20260101-20260131/pal-daily_0b7c0c8e-bbbb-4000-8000-000000000002.csv"
	api.Fail(blobPath, collecttest.Failure{Status: http.StatusTooManyRequests, Code: "ServerBusy", Header: http.Header{"Retry-After": {"1"}}})
	cfg := Config{CostDays: 14, Tenants: []Tenant{{Tenant: contoso, Sources: []string{"azure-costs"},
		CostExports: []CostExport{{Container: api.ContainerURL("costs"), Prefix: p}}}}}
	rep, sink := runDay1(t, api, &cfg)
	if len(rep.Results) != 1 || rep.Results[0].Err != nil {
		t.Fatalf("the run: %v", rep.Results)
	}
	res := rep.Results[0]
	dir := t.TempDir()
	var files []string
	for i, body := range [][]byte{blobs[2].Body, blobs[3].Body, jan} {
		name := filepath.Join(dir, fmt.Sprintf("export-%d.csv", i))
		os.WriteFile(name, body, 0o644)
		files = append(files, name)
	}
	want := importChain(t, readLog(t, seed), day1, []step{{source: "azure-costs", tenant: contoso, files: files}})
	if diff := cmp.Diff(lines(want), lines(sink.log)); diff != "" {
		t.Errorf("the collected log differs from pal import's (-import +collect):\n%s", diff)
	}
	if res.Pages != 3 || res.Records != 6 {
		t.Errorf("read %d files of %d rows, want 3 of 6", res.Pages, res.Records)
	}
	for _, w := range []string{"1 Parquet file left alone", "1 CSV file in no period's folder"} {
		if !strings.Contains(res.Note, w) {
			t.Errorf("the report says %q, want it to say %q", res.Note, w)
		}
	}
	var listed, got []collecttest.Request
	for _, r := range api.Requests() {
		switch {
		case r.Path == "/storage/costs":
			listed = append(listed, r)
		case r.Path == blobPath:
			got = append(got, r)
		case strings.Contains(r.Path, "20251101-") || strings.Contains(r.Path, "-000000000002/part") || strings.Contains(r.Path, "aaaa"):
			t.Errorf("%s %s: read a file the collection leaves alone", r.Method, r.Path)
		}
	}
	if len(listed) != 5 {
		t.Errorf("the container was listed in %d pages, want 5 (9 blobs, 2 a page)", len(listed))
	}
	if len(got) != 2 || got[0].Status != 429 || got[1].At.Sub(got[0].At) < time.Second {
		t.Errorf("the throttled file: %+v, want a 429 then the file, a second later", got)
	}
	// A container that holds nothing under the prefix fails the source:
	// the prefix is misspelt.
	cfg.Tenants[0].CostExports[0].Prefix = "exports/pal-dialy/"
	c := newCollector(t, api, cfg, &collecttest.Credentials{})
	rep, err := c.Run(context.Background(), day1, sink.log, sink)
	if err != nil || len(rep.Failed()) != 1 || !strings.Contains(rep.Failed()[0].String(), `holds nothing under "exports/pal-dialy/": check cost_exports' container and prefix`) {
		t.Errorf("a misspelt prefix: %v %v", err, rep.Results)
	}
	// A credential without Storage Blob Data Reader is told so.
	api.Fail("/storage/costs", collecttest.Failure{Status: 403, Code: "AuthorizationPermissionMismatch", Times: -1})
	rep, _ = c.Run(context.Background(), day1, sink.log, sink)
	if f := rep.Failed(); len(f) != 1 || !strings.Contains(f[0].String(), "403 Forbidden, AuthorizationPermissionMismatch: the test answers 403") || !strings.Contains(f[0].String(), "Storage Blob Data Reader") {
		t.Errorf("a refused listing: %v", f)
	}
}

// TestChooseRuns chooses the files of an export's listing.
func TestChooseRuns(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	b := func(name string, modified time.Time) exportBlob {
		return exportBlob{name: name, modified: modified, size: 1}
	}
	tests := []struct {
		name  string
		blobs []exportBlob
		want  []string
		notes string
	}{
		{"the newest run of the old layout", []exportBlob{b("x/20260101-20260131/x_1.csv", day(3)), b("x/20260101-20260131/x_2.csv", day(4))}, []string{"x/20260101-20260131/x_2.csv"}, ""},
		{"a run folder whole", []exportBlob{b("x/20260101-20260131/r1/part_1.csv", day(3)), b("x/20260101-20260131/r1/part_2.csv", day(3)), b("x/20260101-20260131/r0/part_1.csv", day(2))},
			[]string{"x/20260101-20260131/r1/part_1.csv", "x/20260101-20260131/r1/part_2.csv"}, ""},
		{"a run without its manifest waits", []exportBlob{b("x/20260101-20260131/r1/part_1.csv.gz", day(3)), b("x/20260101-20260131/r1/manifest.json", day(3)), b("x/20260101-20260131/r2/part_1.csv.gz", day(5))},
			[]string{"x/20260101-20260131/r1/part_1.csv.gz"}, ""},
		{"two exports, each its newest", []exportBlob{b("a/20260101-20260131/a_1.csv", day(3)), b("b/20260101-20260131/b_1.csv", day(2)), b("b/20260101-20260131/b_2.csv", day(1))},
			[]string{"a/20260101-20260131/a_1.csv", "b/20260101-20260131/b_1.csv"}, ""},
		{"the parts of one run straight in the period's folder", []exportBlob{b("x/20260101-20260131/part_0_0001.csv.gz", day(3)), b("x/20260101-20260131/part_0_0002.csv.gz", day(3))},
			[]string{"x/20260101-20260131/part_0_0001.csv.gz", "x/20260101-20260131/part_0_0002.csv.gz"}, ""},
		{"a folder above the export named as a period", []exportBlob{b("q1/20260101-20260331/a/20260101-20260131/a_1.csv", day(3)), b("q1/20260101-20260331/b/20260101-20260131/b_1.csv", day(2))},
			[]string{"q1/20260101-20260331/a/20260101-20260131/a_1.csv", "q1/20260101-20260331/b/20260101-20260131/b_1.csv"}, ""},
		{"periods out of the window", []exportBlob{b("x/20251101-20251130/x.csv", day(1)), b("x/20260201-20260228/x.csv", day(1))}, nil, ""},
		{"what is not read", []exportBlob{b("x/x.csv", day(1)), b("x/20260101-20260131/p.parquet", day(1)), b("x/20260101-20260131/notes.txt", day(1))}, nil,
			"1 Parquet file left alone: pal reads exports in CSV (the export's format); 1 CSV file in no period's folder"},
	}
	for _, tt := range tests {
		got, notes := chooseRuns(tt.blobs, day(1), day(10))
		var names []string
		for _, g := range got {
			names = append(names, g.name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, names, tt.want)
		}
		if joined := strings.Join(notes, "; "); !strings.HasPrefix(joined, tt.notes) || tt.notes == "" && joined != "" {
			t.Errorf("%s: notes %q, want %q", tt.name, joined, tt.notes)
		}
	}
}

// TestCmdletObjects turns the admin API's pages into the cmdlets'
// objects: the collector's pages of the world's lists are, field for
// field, the cmdlets' export of the same state (testdata's
// powerapps-cmdlets.json), bar the REST object the cmdlets keep under
// Internal.
func TestCmdletObjects(t *testing.T) {
	st := collecttest.FirstDay(t, "testdata")
	var got []map[string]any
	for _, l := range []struct {
		path string
		list imports.PowerPlatformList
	}{
		{collecttest.EnvironmentsPath, imports.Environments},
		{collecttest.AppsPath(collecttest.ProductionEnv), imports.Apps},
		{collecttest.AppsPath(collecttest.DefaultEnv), imports.Apps},
		{collecttest.FlowsPath(collecttest.ProductionEnv), imports.Flows},
		{collecttest.PermissionsPath(collecttest.ProductionEnv, collecttest.Expenses), imports.AppPermissions},
		{collecttest.PermissionsPath(collecttest.ProductionEnv, collecttest.Timesheets), imports.AppPermissions},
		{collecttest.PermissionsPath(collecttest.DefaultEnv, collecttest.HelpDesk), imports.AppPermissions},
	} {
		body, _ := json.Marshal(map[string]any{"value": st.Lists[l.path], "nextLink": nil})
		pgs, _, err := cmdletPages([]page{{name: l.path, body: body}}, l.list)
		if err != nil {
			t.Fatal(err)
		}
		var objs []map[string]any
		if err := json.Unmarshal(pgs[0].body, &objs); err != nil {
			t.Fatalf("%s: %v\n%s", l.path, err, pgs[0].body)
		}
		for _, o := range objs {
			if o["Internal"] == nil {
				t.Errorf("%s: no Internal", l.path)
			}
			delete(o, "Internal")
			got = append(got, o)
		}
	}
	var want []map[string]any
	for _, c := range st.Cmdlets {
		var o map[string]any
		json.Unmarshal(c, &o)
		want = append(want, o)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the cmdlets' objects (-export +collect):\n%s", diff)
	}
	// A page that is not a list fails the source, saying what it got.
	if _, _, err := cmdletPages([]page{{name: "GET x", body: []byte(`[1]`)}}, imports.Apps); err == nil || !strings.Contains(err.Error(), "GET x: not a list of the Power Platform admin API") {
		t.Errorf("a page of another shape: %v", err)
	}
}

// runDay1 checks cfg (which fills in its defaults) and collects on day 1,
// on the log of seed, what it names of api: the run's report and what it
// wrote.
func runDay1(t *testing.T, api *collecttest.API, cfg *Config) (*Report, *memory) {
	t.Helper()
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	sink := &memory{log: readLog(t, seed)}
	rep, err := newCollector(t, api, *cfg, &collecttest.Credentials{}).Run(context.Background(), day1, sink.log, sink)
	if err != nil {
		t.Fatal(err)
	}
	return rep, sink
}

// TestNewFillsTheDefaults: a configuration made in code, never checked,
// gets the defaults one read from a file gets, and a run makes its
// requests instead of waiting for a request slot forever.
func TestNewFillsTheDefaults(t *testing.T) {
	api := world(t)
	cfg := Config{Tenants: []Tenant{{Tenant: contoso, Sources: []string{"users"}}}}
	sink := &memory{log: readLog(t, seed)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := newCollector(t, api, cfg, &collecttest.Credentials{}).Run(ctx, day1, sink.log, sink)
	if err != nil || ctx.Err() != nil || len(rep.Failed()) != 0 {
		t.Fatalf("an unchecked configuration: %v %v %v", err, ctx.Err(), rep)
	}
}
