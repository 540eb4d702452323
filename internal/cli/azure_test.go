package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/usage"
)

var azureResources = flag.Int("azure-resources", 10000, "the Azure resources of BenchmarkReportAzure's data set")

// BenchmarkReportAzure runs pal report azure on a data set of pal gen
// --azure: two months of daily costs of -azure-resources resources.
func BenchmarkReportAzure(b *testing.B) {
	dir := b.TempDir()
	var out, errs bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errs}
	args := []string{"gen", "--azure", "--tenants", "200", "--resources", strconv.Itoa(*azureResources), "--months", "2", "--out", dir}
	if code := Run(context.Background(), env, args); code != 0 {
		b.Fatalf("pal gen: %s", errs.String())
	}
	report := []string{"report", "azure", "--log", filepath.Join(dir, "control.ndjson"),
		"--consumption", filepath.Join(dir, "consumption.parquet"), "--month", "2026-01", "--format", "json"}
	for b.Loop() {
		out.Reset()
		if code := Run(context.Background(), env, report); code != 0 {
			b.Fatalf("pal report azure: %s", errs.String())
		}
	}
	var rep struct{ Orgs []json.RawMessage }
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Orgs) == 0 {
		b.Fatalf("the report credits no one: %v", err)
	}
}

// TestConsumptionFileIsTheLogsRecords: the records of a consumption file,
// Parquet or NDJSON, give the report the same records in the log give, and
// a bad record is refused with its row, the rest read.
func TestConsumptionFileIsTheLogsRecords(t *testing.T) {
	dir := t.TempDir()
	control := `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"500001","name":"Fabrikam","locations":["500011"]}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","partner":"500011"}
{"type":"azure.role_assigned","time":"2026-01-01T00:00:00Z","tenant":"contoso","assignment":"a1","principal":"alice","role":"Contributor","scope":"/subscriptions/s1"}
{"type":"azure.role_removed","time":"2026-01-10T06:00:00Z","tenant":"contoso","assignment":"a1"}
`
	vm := "/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
	records := []usage.Consumption{
		{Tenant: "contoso", Resource: vm, Date: "2026-01-09", Cost: 10.5},
		{Tenant: "contoso", Resource: vm, Date: "2026-01-10", Cost: 8, Meter: "standard"},
		{Tenant: "contoso", Resource: vm, Date: "2026-01-09", Cost: 12.25},
		{Tenant: "contoso", Resource: vm, Date: "2026-01-10", Cost: 4, Meter: "reservation"},
		// The month's last day, under a2: a report of January keeps it,
		// one of February does not.
		{Tenant: "contoso", Resource: vm, Date: "2026-01-31", Cost: 1},
		// Costs a billionth cannot hold, exact all the same.
		{Tenant: "contoso", Resource: vm, Date: "2026-02-01", Cost: 2500000.125},
		{Tenant: "contoso", Resource: vm, Date: "2026-02-02", Cost: 0.1234567891},
	}
	var inLog, ndjson strings.Builder
	inLog.WriteString(control)
	inLog.WriteString(`{"type":"azure.role_assigned","time":"2026-01-31T00:00:00Z","tenant":"contoso","assignment":"a2","principal":"alice","role":"Owner","scope":"/subscriptions/s1"}` + "\n")
	for _, r := range records {
		line := fmt.Sprintf(`"tenant":%q,"resource":%q,"date":%q,"cost":%s,"meter":%q}`, r.Tenant, r.Resource, r.Date, strconv.FormatFloat(r.Cost, 'f', -1, 64), r.Meter)
		inLog.WriteString(`{"type":"azure.consumption","time":"2026-01-31T00:00:00Z",` + line + "\n")
		ndjson.WriteString("{" + line + "\n")
	}
	ndjson.WriteString(`{"tenant":"contoso","resource":"/subscriptions/s1","date":"2026-01-09","cost":1}` + "\n")
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	control += `{"type":"azure.role_assigned","time":"2026-01-31T00:00:00Z","tenant":"contoso","assignment":"a2","principal":"alice","role":"Owner","scope":"/subscriptions/s1"}` + "\n"
	logOnly, controlOnly := write("all.ndjson", inLog.String()), write("control.ndjson", control)
	ndjsonFile := write("consumption.ndjson", ndjson.String())
	parquetFile := filepath.Join(dir, "consumption.parquet")
	f, err := os.Create(parquetFile)
	if err != nil {
		t.Fatal(err)
	}
	w := usage.NewConsumptionWriter(f)
	bad := []usage.Consumption{
		{Tenant: "contoso", Resource: "/subscriptions/s1", Date: "2026-01-09", Cost: 1},
		{Tenant: "contoso", Resource: vm, Date: "2026-01-32", Cost: 1},
		{Tenant: "contoso", Resource: vm, Date: "2026-01-09", Cost: -1},
		{Tenant: "contoso", Resource: vm, Date: "2026-01-09", Cost: 1, Meter: "free"},
		{Tenant: "", Resource: vm, Date: "2026-01-09", Cost: 1},
	}
	for _, r := range append(slices.Clone(records), bad...) {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The 9th: 12.25 replaced 10.5, all day. The 10th: a quarter of the
	// day, 2 + 1; the reservation is not PEC-eligible, nor is a part day.
	// The 31st: 1.
	want := `"acr": 16.25,`
	code, fromLog, _ := run(t, "", "report", "azure", "--log", logOnly, "--month", "2026-01", "--format", "json")
	if code != 0 || !strings.Contains(fromLog, want) {
		t.Fatalf("pal report azure on the log: exit %d, want %s in\n%s", code, want, fromLog)
	}
	code, fromParquet, stderr := run(t, "", "report", "azure", "--log", controlOnly, "--consumption", parquetFile, "--month", "2026-01", "--format", "json")
	if code != 0 || fromParquet != fromLog {
		t.Fatalf("with --consumption Parquet: exit %d, stderr %q, output\n%s\nwant\n%s", code, stderr, fromParquet, fromLog)
	}
	var checked tally
	_, out, _ := run(t, "", "check", "--log", controlOnly, "--consumption", parquetFile, "--format", "json")
	json.Unmarshal([]byte(out), &checked)
	var codes []string
	for _, rf := range checked.Refused {
		codes = append(codes, fmt.Sprintf("%d %s", rf.Line, rf.Code))
	}
	if want := "[8 invalid_value 9 invalid_value 10 invalid_value 11 invalid_value 12 missing_field]"; fmt.Sprint(codes) != want {
		t.Errorf("the Parquet file's bad rows: %v, want %s", codes, want)
	}
	// 2,500,000.125 + 0.1234567891, exactly, printed rounded.
	_, febLog, _ := run(t, "", "report", "azure", "--log", logOnly, "--month", "2026-02", "--format", "json")
	_, febParquet, _ := run(t, "", "report", "azure", "--log", controlOnly, "--consumption", parquetFile, "--month", "2026-02", "--format", "json")
	if febLog != febParquet || !strings.Contains(febLog, `"acr": 2500000.25,`) {
		t.Errorf("February from the log:\n%s\nfrom Parquet:\n%s", febLog, febParquet)
	}
	code, fromNDJSON, stderr := run(t, "", "report", "azure", "--log", controlOnly, "--consumption", ndjsonFile, "--month", "2026-01", "--format", "json")
	if code != 0 || fromNDJSON != fromLog {
		t.Fatalf("with --consumption NDJSON: exit %d, output\n%s\nwant\n%s", code, fromNDJSON, fromLog)
	}
	if !strings.Contains(stderr, "line 8: invalid_value") || !strings.Contains(stderr, "consumption.ndjson") {
		t.Fatalf("the bad record is not refused with its line and file: %q", stderr)
	}
	code, _, stderr = run(t, "", "report", "azure", "--server", "http://127.0.0.1:1", "--consumption", ndjsonFile, "--month", "2026-01")
	if code != 2 || !strings.Contains(stderr, "--consumption") {
		t.Fatalf("--consumption with --server: exit %d, %q", code, stderr)
	}
}

// TestAzureRolesAndRateAreConfiguration: a table of roles that makes Reader
// eligible credits a Reader, and --pec-rate sets the credit; a bad table
// is a one-line error.
func TestAzureRolesAndRateAreConfiguration(t *testing.T) {
	dir := t.TempDir()
	log := `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"600001","name":"Northwind","locations":["600011"]}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"bob","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"bob","partner":"600011"}
{"type":"azure.role_assigned","time":"2026-01-01T00:00:00Z","tenant":"contoso","assignment":"a2","principal":"bob","role":"Reader","scope":"/subscriptions/sub1"}
{"type":"azure.consumption","time":"2026-01-11T03:00:00Z","tenant":"contoso","resource":"/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1","date":"2026-01-10","cost":100}
`
	roles := filepath.Join(dir, "roles.json")
	if err := os.WriteFile(roles, []byte(`{"names": ["Reader"], "suffixes": [" Contributor"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, log, "report", "azure", "--log", "-", "--month", "2026-01", "--format", "json")
	if code != 0 || !strings.Contains(out, `"orgs": []`) {
		t.Fatalf("Reader under the default table: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, log, "report", "azure", "--log", "-", "--month", "2026-01", "--format", "json", "--azure-roles", roles, "--pec-rate", "0.2")
	if code != 0 || !strings.Contains(out, `"acr": 100.00`) || !strings.Contains(out, `"pec_credit": 20.00`) {
		t.Fatalf("Reader made eligible, a rate of 20%%: exit %d\n%s", code, out)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`["Owner"]`), 0o644)
	for _, args := range [][]string{{"--azure-roles", bad}, {"--pec-rate", "15%"}, {"--azure-policy", "most"}} {
		code, _, errOut := run(t, log, append([]string{"report", "azure", "--log", "-", "--month", "2026-01"}, args...)...)
		if code != ExitUsage || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, args[0]) && !strings.Contains(errOut, "policy") {
			t.Errorf("%v: exit %d %q", args, code, errOut)
		}
	}
}
