package cli

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var costRows = flag.Int("cost-rows", 100000, "the rows of BenchmarkImportCosts's export")

// BenchmarkImportCosts imports a Cost Management export (EA columns) of
// -cost-rows rows into a Parquet consumption file.
func BenchmarkImportCosts(b *testing.B) {
	dir := b.TempDir()
	export := filepath.Join(dir, "costs.csv")
	f, err := os.Create(export)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "SubscriptionId,ResourceGroup,Date,MeterCategory,MeterName,Quantity,EffectivePrice,CostInBillingCurrency,ResourceId,PublisherType,ChargeType,PricingModel,ResourceLocation")
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < *costRows; n++ {
		r, day := (n/2)%16000, 1+(n/32000)%31
		sub := fmt.Sprintf("7d1c2a4e-0000-4000-8000-%012d", r%20)
		fmt.Fprintf(w, "%s,rg-%d,01/%02d/2026,Virtual Machines,%s,24,0.096,%.6f,/subscriptions/%s/resourceGroups/rg-%d/providers/Microsoft.Compute/virtualMachines/vm-%d,Azure,Usage,OnDemand,westeurope\n",
			sub, r%40, day, []string{"Compute", "Disk"}[n%2], rng.Float64()*10, sub, r%40, r)
	}
	w.Flush()
	f.Close()
	out := filepath.Join(dir, "consumption.parquet")
	for b.Loop() {
		code, _, errOut := run(b, "", "import", "azure-costs", export, "--tenant", "contoso", "--out", out)
		if code != 0 {
			b.Fatal(errOut)
		}
	}
}

// TestImportPseudonymisedAudit imports an audit search with a key: no user
// name reaches the log, the same user keeps one pseudonym, and a key too
// short or an import without usage is refused with the way out.
func TestImportPseudonymisedAudit(t *testing.T) {
	dir := t.TempDir()
	audit := "../../testdata/imports/audit/purview.csv"
	key := filepath.Join(dir, "pal.key")
	os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	code, out, errOut := run(t, "", "import", "audit", audit, "--pseudonymise-users", key)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "@") {
		t.Errorf("a user name reached the log:\n%s", out)
	}
	users := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct{ Type, User string }
		json.Unmarshal([]byte(line), &ev)
		if ev.Type == "usage" {
			users[ev.User]++
		}
	}
	// carol four times (three launches, a report), dave once.
	if len(users) != 2 || fmt.Sprint(slices.Sorted(maps.Values(users))) != "[1 4]" {
		t.Errorf("pseudonymised users %v, want two users seen 4 and 1 times", users)
	}
	os.WriteFile(key, []byte("short\n"), 0o600)
	if code, _, errOut := run(t, "", "import", "audit", audit, "--pseudonymise-users", key); code != 2 || !strings.Contains(errOut, "head -c 32 /dev/urandom") {
		t.Errorf("a 6-byte key: exit %d, %s", code, errOut)
	}
	if code, _, errOut := run(t, "", "import", "users", "../../testdata/imports/users/users.json", "--tenant", "t", "--pseudonymise-users", key); code != 2 || !strings.Contains(errOut, "acts on the usage an audit import makes") {
		t.Errorf("a key with users: exit %d, %s", code, errOut)
	}
}

var auditRows = flag.Int("audit-rows", 100000, "the rows of BenchmarkImportAudit's export")

// writeAuditExport writes a Purview audit export of n rows: app launches
// and report views by 50,000 users of 1,000 apps and 100 datasets.
func writeAuditExport(tb testing.TB, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	cw := csv.NewWriter(w)
	cw.Write([]string{"RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData", "AssociatedAdminUnits", "AssociatedAdminUnitsNames"})
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("6a1f0c52-0000-4000-8000-%012d", i)
		at := fmt.Sprintf("2026-01-%02dT%02d:%02d:00", 1+i%31, rng.IntN(24), rng.IntN(60))
		user := fmt.Sprintf("user%d@contoso.example", rng.IntN(50000))
		var data string
		op := "LaunchPowerApp"
		if i%5 == 4 {
			op = "ViewReport"
			data = fmt.Sprintf(`{"Id":%q,"RecordType":20,"CreationTime":%q,"Operation":"ViewReport","OrganizationId":"contoso","UserType":0,"Workload":"PowerBI","UserId":%q,"Activity":"ViewReport","ReportId":"r-%d","DatasetId":"ds-%d"}`,
				id, at, user, rng.IntN(300), rng.IntN(100))
		} else {
			data = fmt.Sprintf(`{"CreationTime":%q,"Id":%q,"Operation":"LaunchPowerApp","OrganizationId":"contoso","RecordType":256,"UserKey":%q,"UserType":0,"Workload":"PowerPlatform","UserId":%q,"PropertyCollection":[{"Name":"powerplatform.analytics.resource.power_app.id","Value":"app-%d"},{"Name":"powerplatform.analytics.resource.environment.id","Value":"env-1"},{"Name":"enduser.principal_name","Value":%q},{"Name":"powerplatform.analytics.resource.tenant.id","Value":"contoso"}]}`,
				at, id, user, user, rng.IntN(1000), user)
		}
		cw.Write([]string{id, at + ".0000000Z", "PowerPlatformAdministratorActivity", op, user, data, "", ""})
	}
	cw.Flush()
	w.Flush()
	f.Close()
}

// BenchmarkImportAudit imports a Purview audit export of -audit-rows rows
// with pseudonymised users.
func BenchmarkImportAudit(b *testing.B) {
	dir := b.TempDir()
	export := filepath.Join(dir, "audit.csv")
	writeAuditExport(b, export, *auditRows)
	key := filepath.Join(dir, "pal.key")
	os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	for b.Loop() {
		code, _, errOut := run(b, "", "import", "audit", export, "--pseudonymise-users", key)
		if code != 0 {
			b.Fatal(errOut)
		}
	}
}

// TestImportPushDiffsAgainstTheService pushes daily snapshots of a
// tenant's Power Apps to a real service as its administrator: each push
// reads the service's log first, so that only what changed is sent, and
// a snapshot pushed twice sends nothing.
func TestImportPushDiffsAgainstTheService(t *testing.T) {
	_, srv, issue := newService(t)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	admin := issue("--role", "tenant-admin", "--tenant", "contoso")
	dir := t.TempDir()
	snapshot := func(day int, coowner bool) string {
		// The app's role assignments: its owner's, and bob's while he
		// co-owns it.
		roles := `,{"AppName":"app1","EnvironmentName":"env1","PrincipalObjectId":"alice","PrincipalType":"User","RoleType":"Owner"}`
		if coowner {
			roles += `,{"AppName":"app1","EnvironmentName":"env1","PrincipalObjectId":"bob","PrincipalType":"User","RoleType":"CanEdit"}`
		}
		path := filepath.Join(dir, fmt.Sprintf("day%d.json", day))
		os.WriteFile(path, []byte(`[{"EnvironmentName":"env1","EnvironmentType":"Production","CreatedTime":"2026-01-01T00:00:00Z"},
{"AppName":"app1","EnvironmentName":"env1","CreatedTime":"2026-01-01T10:00:00Z","Owner":{"id":"alice"}}`+roles+`]`), 0o644)
		return path
	}
	push := func(path, observed string) string {
		t.Helper()
		code, out, errOut := run(t, "", "import", "powerapps", path, "--tenant", "contoso", "--observed-at", observed, "--push", "--server", hs.URL, "--token", admin)
		if code != 0 {
			t.Fatalf("push %s: exit %d %s", path, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	for _, c := range []struct{ path, observed, want string }{
		// env1, alice, app1, bob and his co-ownership.
		{snapshot(1, true), "2026-01-01T12:00:00Z", "pushed 5 events: accepted 5, held 0, duplicates 0, refused 0"},
		// bob's co-ownership is gone.
		{snapshot(2, false), "2026-01-02T12:00:00Z", "pushed 1 event: accepted 1, held 0, duplicates 0, refused 0"},
		{snapshot(2, false), "2026-01-02T12:00:00Z", "pushed 0 events: accepted 0, held 0, duplicates 0, refused 0"},
	} {
		if got := push(c.path, c.observed); got != c.want {
			t.Errorf("%s: %q, want %q", filepath.Base(c.path), got, c.want)
		}
	}
}

// TestFlagsAndFilesInAnyOrder gives the same command with its files
// before, between and after its flags: one parser reads them alike, and
// "--" makes what follows a file even when it looks like a flag.
func TestFlagsAndFilesInAnyOrder(t *testing.T) {
	users := "../../testdata/imports/users/users.json"
	var want string
	for i, args := range [][]string{
		{"import", "users", users, "--tenant", "contoso-tenant-id", "--observed-at", "2026-01-10T00:00:00Z"},
		{"import", "users", "--tenant", "contoso-tenant-id", users, "--observed-at", "2026-01-10T00:00:00Z"},
		{"import", "users", "--tenant=contoso-tenant-id", "--observed-at", "2026-01-10T00:00:00Z", users},
		{"import", "users", "--tenant", "contoso-tenant-id", "--observed-at", "2026-01-10T00:00:00Z", "--", users},
	} {
		code, out, errOut := run(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if i == 0 {
			want = out
			if !strings.Contains(out, `"account.created"`) {
				t.Fatalf("%v: no accounts imported:\n%s", args, out)
			}
		} else if out != want {
			t.Errorf("%v gives other events than the files first:\n%s", args, out)
		}
	}
	// A flag after "--" is a file, which does not exist.
	if code, _, errOut := run(t, "", "import", "users", "--tenant", "t", "--", "--observed-at"); code != 2 || !strings.Contains(errOut, "--observed-at") {
		t.Errorf("a file named --observed-at after --: exit %d, %q", code, errOut)
	}
	// Every command reads its flags after its arguments: check too.
	log := filepath.Join(t.TempDir(), "log.ndjson")
	os.WriteFile(log, []byte(`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`+"\n"), 0o644)
	if code, out, errOut := run(t, "", "check", "--log", log, "--format", "json"); code != 0 || !strings.Contains(out, `"events": 1`) {
		t.Errorf("check: exit %d, %s %s", code, out, errOut)
	}
	if code, _, errOut := run(t, "", "check", "stray", "--log", log); code != 2 || !strings.Contains(errOut, `unexpected argument "stray"`) {
		t.Errorf("check with a stray argument: exit %d, %q", code, errOut)
	}
}

// TestImportTalliesTheRowsLeftOut: the tally of an import counts the rows
// it did not import, each said on its line, and not what it says of a
// whole file: a file of dates in both orders is read with the month
// first, and said so without a line.
func TestImportTalliesTheRowsLeftOut(t *testing.T) {
	costs := filepath.Join(t.TempDir(), "costs.csv")
	os.WriteFile(costs, []byte("Date,ResourceId,CostInBillingCurrency,PricingModel\n"+
		"13/01/2026,/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1,1.5,OnDemand\n"+
		"01/14/2026,/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1,2,OnDemand\n"+
		"01/15/2026,/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1,-3,OnDemand\n"), 0o644)
	code, out, errOut := run(t, "", "import", "azure-costs", costs, "--tenant", "contoso")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"azure.consumption"`) {
		t.Fatalf("nothing imported:\n%s", out)
	}
	for _, want := range []string{
		costs + ": its dates put the day first on some rows and the month first on others",
		costs + ` line 2: the date "13/01/2026" is not a date`,
		costs + " line 4: the cost -3 of",
		"2 rows not imported, each said above",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("standard error lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "line 0") {
		t.Errorf("a problem of no line is said with line 0:\n%s", errOut)
	}
}
