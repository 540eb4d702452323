package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store/sqlite"
	"github.com/palproject/pal/internal/usage"
)

// newService opens a service on a fresh SQLite file, and returns the file,
// the service, and a way to issue its tokens with the command line.
func newService(t *testing.T) (db string, srv *server.Server, issue func(args ...string) string) {
	t.Helper()
	ctx := context.Background()
	db = filepath.Join(t.TempDir(), "pal.db")
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err = server.New(ctx, server.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	issue = func(args ...string) string {
		t.Helper()
		code, out, errOut := run(t, "", append([]string{"token", "issue", "--db", db}, args...)...)
		if code != 0 {
			t.Fatalf("pal token issue %v: exit %d %s", args, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	return db, srv, issue
}

// TestAgainstAService drives a real service through the command line, as
// a partner, an administrator and the operator would, and replays the
// service's log export with the command line to get the same answers, byte
// for byte, for every query the two share.
func TestAgainstAService(t *testing.T) {
	db, srv, issue := newService(t)
	// The service answers the attribution in pages of three rows, and the
	// monthly report in pages of one tenant: the command line reads them all.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limits := map[string]string{"/v1/attribution": "3", "/v1/reports/monthly": "1"}
		if q := r.URL.Query(); limits[r.URL.Path] != "" && q.Get("limit") == "" {
			q.Set("limit", limits[r.URL.Path])
			r.URL.RawQuery = q.Encode()
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	defer hs.Close()

	operator := issue("--role", "operator")
	if code, _, errOut := run(t, "", "token", "issue", "--db", db, "--role", "account", "--tenant", "contoso"); code != ExitUsage || !strings.Contains(errOut, "--account") {
		t.Errorf("an account token without --account: exit %d %q", code, errOut)
	}

	_, log, _ := run(t, "", "demo")
	code, out, errOut := run(t, log, "events", "push", "-", "--server", hs.URL, "--token", operator)
	if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("accepted %d, held 0, duplicates 0, refused 0", strings.Count(log, "\n"))) {
		t.Fatalf("pal events push: exit %d %q %q", code, out, errOut)
	}
	admin := issue("--role", "tenant-admin", "--tenant", "contoso")
	code, out, _ = run(t, `{"type":"account.created","time":"2026-04-01T00:00:00Z","tenant":"contoso","account":"zoe","kind":"guest"}
{"type":"pal.linked","time":"2026-04-01T00:00:00Z","tenant":"contoso","account":"zoe","partner":"1000011"}`,
		"events", "push", "--server", hs.URL, "--token", admin, "--strict", "-")
	if code != ExitRefused || !strings.Contains(out, "accepted 1, held 0, duplicates 0, refused 1") || !strings.Contains(out, "refused: line 2: forbidden") {
		t.Errorf("administrator's push of a link: exit %d %q", code, out)
	}
	// A use of an app the log does not know yet is held, and said so.
	code, out, _ = run(t, `{"type":"usage","time":"2026-04-02T00:00:00Z","tenant":"contoso","resource":"app-to-come","user":"u1"}`,
		"events", "push", "--server", hs.URL, "--token", admin, "-")
	if code != 0 || !strings.Contains(out, "accepted 0, held 1, duplicates 0, refused 0") || !strings.Contains(out, "held (applied once what it needs arrives): line 1: unknown_tenant_object") {
		t.Errorf("a push of a use held: exit %d %q", code, out)
	}

	zoe := issue("--role", "account", "--tenant", "contoso", "--account", "zoe")
	code, out, errOut = run(t, "", "link", "create", "--partner-id", "2000011", "--server", hs.URL, "--token", zoe)
	var l struct {
		Name       string `json:"name"`
		Properties struct {
			State   string `json:"state"`
			Version int    `json:"version"`
		} `json:"properties"`
	}
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || l.Name != "2000011" || l.Properties.State != "Active" {
		t.Fatalf("pal link create: exit %d %q %q", code, out, errOut)
	}
	code, _, errOut = run(t, "", "link", "create", "--partner-id", "2000001", "--server", hs.URL, "--token", zoe)
	if code != ExitUsage || !strings.Contains(errOut, "Conflict") {
		t.Errorf("a second pal link create: exit %d %q", code, errOut)
	}
	run(t, "", "link", "update", "--partner-id", "1000012", "--server", hs.URL, "--token", zoe)
	code, out, _ = run(t, "", "link", "show", "--server", hs.URL, "--token", zoe)
	if code != 0 || !strings.Contains(out, `"partnerId": "1000012"`) {
		t.Errorf("pal link show after update: exit %d %q", code, out)
	}
	code, out, _ = run(t, "", "link", "delete", "--partner-id", "1000012", "--server", hs.URL, "--token", zoe)
	if code != 0 || !strings.Contains(out, `"state": "Deleted"`) {
		t.Errorf("pal link delete: exit %d %q", code, out)
	}
	code, _, errOut = run(t, "", "link", "show", "--server", hs.URL, "--token", zoe)
	if code != ExitUsage || !strings.Contains(errOut, "NotFound") {
		t.Errorf("pal link show after delete: exit %d %q", code, errOut)
	}

	// Costs pushed as a Parquet file go to the service's columns, and come
	// back in its export.
	costs := filepath.Join(t.TempDir(), "costs.parquet")
	cf, err := os.Create(costs)
	if err != nil {
		t.Fatal(err)
	}
	cw := usage.NewConsumptionWriter(cf)
	for d := 1; d <= 28; d++ {
		cw.Write(usage.Consumption{Tenant: "fourthcoffee", Resource: "/subscriptions/7d1c2a4e-0000-4000-8000-000000000001/resourceGroups/rg9/providers/Microsoft.Compute/virtualMachines/pushed-vm",
			Date: fmt.Sprintf("2026-02-%02d", d), Cost: 12.5, Meter: "standard"})
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	cf.Close()
	code, out, errOut = run(t, "", "events", "push", costs, "--server", hs.URL, "--token", operator)
	if code != 0 || !strings.HasPrefix(out, "accepted 28, held 0, duplicates 0, refused 0") {
		t.Fatalf("pal events push of a consumption file: exit %d %q %q", code, out, errOut)
	}
	if _, out, _ := run(t, "", "report", "azure", "--month", "2026-02", "--server", hs.URL, "--token", operator); !strings.Contains(out, "pushed-vm") {
		t.Errorf("the report of February does not credit the pushed costs:\n%s", out)
	}

	// The export, replayed by the command line, gives the service's answers.
	req := httptest.NewRequest("GET", "/v1/log", nil)
	req.Header.Set("Authorization", "Bearer "+operator)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	export := rec.Body.String()
	for _, cmd := range [][]string{
		{"attribution", "--format", "json"},
		{"attribution", "--at", "2025-10-15", "--format", "json"},
		{"report", "monthly", "--month", "2026-03", "--format", "json"},
		{"report", "pcs", "--month", "2026-03", "--org", "1000001", "--format", "json"},
		{"explain", "--tenant", "adatum", "--resource", "onboarding", "--at", "2026-01-01", "--format", "json"},
		{"explain", "--tenant", "contoso", "--resource", "expenses"},
		{"attribution"},
		{"links", "--org", "2000001"},
		{"links", "--org", "1000001", "--tenant", "contoso", "--format", "json"},
		{"report", "monthly", "--month", "2026-03"},
		{"report", "azure", "--month", "2026-02"},
		{"report", "azure", "--month", "2026-02", "--format", "json"},
		{"diagnose", "--org", "1000001"},
		{"diagnose", "--org", "2000001", "--format", "json"},
		{"audit", "--tenant", "contoso"},
		{"audit", "--tenant", "fourthcoffee", "--format", "json"},
	} {
		_, local, _ := run(t, export, append(cmd, "--log", "-")...)
		code, remote, errOut := run(t, "", append(cmd, "--server", hs.URL, "--token", operator)...)
		if code != 0 || local == "" || local != remote {
			t.Errorf("pal %s: the replayed export and the service differ (exit %d %s):\n%s\nand\n%s", strings.Join(cmd, " "), code, errOut, local, remote)
		}
	}
	if code, _, errOut := run(t, "", "attribution", "--server", hs.URL); code != ExitUsage || !strings.Contains(errOut, "--token") {
		t.Errorf("--server without a token: exit %d %q", code, errOut)
	}
}

// TestLinkApply sets links in bulk from a CSV file against a real
// service, then runs again: the second run changes nothing.
func TestLinkApply(t *testing.T) {
	_, srv, issue := newService(t)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	operator := issue("--role", "operator")
	log := `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011","100012"]}
{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"200001","name":"Northwind","locations":["200011"]}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"bob","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"carol","kind":"service_principal"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"dan","kind":"guest"}
{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"contoso","account":"bob","partner":"100011"}
{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"contoso","account":"carol","partner":"100011"}`
	if code, out, errOut := run(t, log, "events", "push", "-", "--server", hs.URL, "--token", operator); code != 0 {
		t.Fatalf("push: %d %s %s", code, out, errOut)
	}
	alice := issue("--role", "account", "--tenant", "contoso", "--account", "alice")
	bob := issue("--role", "account", "--tenant", "contoso", "--account", "bob")
	dan := issue("--role", "account", "--tenant", "contoso", "--account", "dan")
	carolFile := filepath.Join(t.TempDir(), "carol.token")
	os.WriteFile(carolFile, []byte(issue("--role", "account", "--tenant", "contoso", "--account", "carol")+"\n"), 0o600)
	csvFile := filepath.Join(t.TempDir(), "links.csv")
	os.WriteFile(csvFile, []byte("\ufeffTenant,Token,Partner_ID\n"+
		"contoso,"+alice+",100011\n"+
		"contoso,"+bob+",200011\n"+
		"contoso,@"+carolFile+",100011\n"+
		"litware,"+alice+",100011\n"+
		"contoso,"+operator+",100011\n"+
		"contoso,"+dan+",100001\n"), 0o600)
	want := []string{
		"line 2, tenant contoso: account alice created its link to 100011",
		"line 3, tenant contoso: account bob changed its link from 100011 to 200011",
		"line 4, tenant contoso: account carol already links 100011: unchanged",
		"line 5, tenant litware: refused: the token is account alice's in tenant contoso, not in litware",
		"line 6, tenant contoso: refused: the token is a operator's, not an account's",
		"line 7, tenant contoso: refused: BadRequest: global_partner_id",
	}
	code, out, _ := run(t, "", "link", "apply", "--file", csvFile, "--server", hs.URL)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != ExitRefused || len(lines) != len(want) {
		t.Fatalf("pal link apply: exit %d\n%s", code, out)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d: %q, want it to begin %q", i, lines[i], want[i])
		}
	}
	_, again, _ := run(t, "", "link", "apply", "--file", csvFile, "--server", hs.URL)
	for i, line := range strings.Split(strings.TrimSpace(again), "\n")[:3] {
		if !strings.HasSuffix(line, "unchanged") {
			t.Errorf("the second run's row %d: %q, want unchanged", i+2, line)
		}
	}
	if code, _, errOut := run(t, "", "link", "apply", "--server", hs.URL); code != ExitUsage || !strings.Contains(errOut, "--file") {
		t.Errorf("link apply without --file: %d %q", code, errOut)
	}
}
