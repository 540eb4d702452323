package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palproject/pal/internal/collect"
	"github.com/palproject/pal/internal/collect/collecttest"
)

// The test world is internal/collect's (collecttest.FirstDay), observed
// on the morning of 10 January 2026.
const (
	collectWorld = "../collect/testdata"
	collectAt    = "2026-01-10T06:00:00Z"
	collectSeed  = `{"type":"partner.registered","time":"2025-01-01T00:00:00Z","org":"1000001","name":"Fabrikam Consulting","locations":["1000011","1000012"]}` + "\n"
	// collectConfig reads every source of Contoso, and Fabrikam's
	// directory, delegated group and link.
	collectConfig = `{
  "tenants": [
    {"tenant": "contoso-tenant-id", "management_groups": ["contoso-platform"]},
    {"tenant": "fabrikam-tenant-id", "groups": ["f98d86a2-4cc4-4e9d-ad47-b3e80a1bcdfc"], "sources": ["users", "groups", "links"]}
  ],
  "retries": 1
}`
)

// fakeAzure serves the test world and returns a pal collect whose clients
// reach it, with test credentials.
func fakeAzure(t *testing.T) (*collecttest.API, collectCommand) {
	t.Helper()
	api := collecttest.New(t)
	collecttest.FirstDay(t, collectWorld).Serve(api)
	creds := &collecttest.Credentials{}
	return api, collectCommand{azure: func() collect.Options {
		return collect.Options{Credential: creds.For, Client: api.ClientOptions(), GraphEndpoint: api.GraphEndpoint(),
			PowerPlatformEndpoint: api.URL, OfficeEndpoint: api.URL, RetryDelay: 10 * time.Millisecond}
	}}
}

// runCollectWith runs pal collect as Run would, with its clients pointed
// at the fake API: its errors are one line on standard error, and exit 2;
// a run with sources failed exits 1.
func runCollectWith(ctx context.Context, cc collectCommand, stdout, stderr io.Writer, args ...string) int {
	env := &Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr}
	var ue *usageError
	switch err := cc.run(ctx, env, args[1:]); {
	case err == nil:
		return ExitOK
	case errors.Is(err, errRefused):
		return ExitRefused
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "pal collect: %s\n", ue.msg)
	default:
		fmt.Fprintf(stderr, "pal collect: %v\n", err)
	}
	return ExitUsage
}

// collectedImports are the imports of the same records exported, in the
// order pal collect reads its sources.
func collectedImports() [][]string {
	td := func(n string) string { return filepath.Join(collectWorld, n) }
	c, f := "--tenant=contoso-tenant-id", "--tenant=fabrikam-tenant-id"
	return [][]string{
		{"management-groups", td("entities.json")},
		{"users", td("users-contoso.json"), c},
		{"users", td("users-fabrikam.json"), f},
		{"azure-roles", td("roledefinitions.json"), td("roleassignments-0001.json"), td("roleassignments-0002.json"), c},
		{"azure-pim", td("pim-eligibility.json"), td("pim-instances.json"), td("pim-requests.json"), c},
		{"groups", td("members-contoso-cloudops.json"), c, "--group=9a8b7c6d-0000-4000-8000-00000000000c"},
		{"groups", td("members-fabrikam-ops.json"), f, "--group=f98d86a2-4cc4-4e9d-ad47-b3e80a1bcdfc"},
		{"lighthouse", td("delegations-0001.json"), c},
		{"links", td("link-contoso.json")},
		{"links", td("link-fabrikam.json")},
		{"azure-costs", td("costs-export.csv"), c},
	}
}

// sortedLines are a log's lines, sorted.
func sortedLines(log string) []string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	slices.Sort(lines)
	return lines
}

// TestCollectToALogFile collects into a log file: the file ends as the
// same log pal import makes of the same records exported, a second run
// leaves it as it is, and the reports read it.
func TestCollectToALogFile(t *testing.T) {
	_, cc := fakeAzure(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "collect.json")
	os.WriteFile(config, []byte(collectConfig), 0o644)
	log := filepath.Join(dir, "log.ndjson")
	os.WriteFile(log, []byte(collectSeed), 0o644)
	var out, errOut bytes.Buffer
	if code := runCollectWith(context.Background(), cc, &out, &errOut, "collect", "--config", config, "--log", log, "--once", "--observed-at", collectAt); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if out.Len() != 0 {
		t.Errorf("pal collect --log wrote on standard output: %s", out.String())
	}
	for _, want := range []string{
		"pal collect: contoso-tenant-id azure-roles: 7 pages, 6 records, 6 new events\n",
		"pal collect: contoso-tenant-id groups: GET " + "https://127.0.0.1:",
		"member 9a8b7c6d-0000-4000-8000-0000000000e0 is a group",
		"pal collect: observed at 2026-01-10T06:00:00Z, wrote 32 new events from 11 sources in ",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("standard error has no %q:\n%s", want, errOut.String())
		}
	}
	got, _ := os.ReadFile(log)

	// pal import of the same records exported, each import appended.
	imported := filepath.Join(dir, "imported.ndjson")
	os.WriteFile(imported, []byte(collectSeed), 0o644)
	for _, args := range collectedImports() {
		code, events, errOut := run(t, "", append([]string{"import"}, append(args, "--log", imported, "--observed-at", collectAt)...)...)
		if code != 0 {
			t.Fatalf("pal import %v: exit %d %s", args, code, errOut)
		}
		f, _ := os.OpenFile(imported, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(events)
		f.Close()
	}
	want, _ := os.ReadFile(imported)
	if g, w := sortedLines(string(got)), slices.Compact(sortedLines(string(want))); !slices.Equal(g, w) {
		t.Errorf("pal collect wrote\n%s\npal import wrote\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}

	// Again: nothing new, the file as it was.
	errOut.Reset()
	if code := runCollectWith(context.Background(), cc, &out, &errOut, "collect", "--config", config, "--log", log, "--observed-at", "2026-01-10T07:00:00Z"); code != 0 {
		t.Fatalf("the second run: exit %d: %s", code, errOut.String())
	}
	again, _ := os.ReadFile(log)
	if !bytes.Equal(again, got) || !strings.Contains(errOut.String(), "wrote 0 new events from 11 sources") {
		t.Errorf("a second run changed the log (%d bytes to %d): %s", len(got), len(again), errOut.String())
	}

	// The reports read the collected log: the costs of the 8th and 9th of
	// the first subscription, but the marketplace's, are Fabrikam's,
	// through Alice's link and Contributor role (Ana's delegated group is
	// known from the observation on, after those days).
	code, report, errText := run(t, "", "report", "azure", "--log", log, "--month", "2026-01", "--format", "json")
	if code != 0 {
		t.Fatalf("pal report azure: exit %d %s", code, errText)
	}
	var rep struct {
		Orgs []struct {
			Org string      `json:"org"`
			ACR json.Number `json:"acr"`
		} `json:"orgs"`
	}
	if err := json.Unmarshal([]byte(report), &rep); err != nil || len(rep.Orgs) != 1 || rep.Orgs[0].Org != "1000001" || rep.Orgs[0].ACR != "16.74" {
		t.Errorf("pal report azure on the collected log: %s (want Fabrikam's ACR of 2.304 + 11.635806 + 0.5 + 2.304 = 16.74)", report)
	}
}

// TestCollectPushesToAService collects into a running pal serve: the
// service's log so far is what the run diffs against, the events are
// those a log file gets, and a second run pushes nothing.
func TestCollectPushesToAService(t *testing.T) {
	_, srv, issue := newService(t)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	operator := issue("--role", "operator")
	if code, out, errOut := run(t, collectSeed, "events", "push", "-", "--server", hs.URL, "--token", operator); code != 0 {
		t.Fatalf("pal events push: exit %d %s %s", code, out, errOut)
	}
	_, cc := fakeAzure(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "collect.json")
	os.WriteFile(config, []byte(collectConfig), 0o644)
	var out, errOut bytes.Buffer
	args := []string{"collect", "--config", config, "--push", "--server", hs.URL, "--token", operator, "--observed-at", collectAt}
	if code := runCollectWith(context.Background(), cc, &out, &errOut, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "pal collect: contoso-tenant-id azure-roles: 7 pages, 6 records, 6 new events; the service accepted 6, held 0, duplicates 0, refused 0") {
		t.Errorf("standard error does not say what the service did with the roles:\n%s", errOut.String())
	}
	logOf := func() string {
		req, _ := http.NewRequest("GET", hs.URL+"/v1/log", nil)
		req.Header.Set("Authorization", "Bearer "+operator)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	pushed := logOf()
	// The same events as a log file gets.
	log := filepath.Join(dir, "log.ndjson")
	os.WriteFile(log, []byte(collectSeed), 0o644)
	var discard bytes.Buffer
	if code := runCollectWith(context.Background(), cc, &discard, &discard, "collect", "--config", config, "--log", log, "--observed-at", collectAt); code != 0 {
		t.Fatalf("into a file: exit %d %s", code, discard.String())
	}
	file, _ := os.ReadFile(log)
	if got, want := canonical(t, pushed), canonical(t, string(file)); !slices.Equal(got, want) {
		t.Errorf("the service's log\n%s\nthe file's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	errOut.Reset()
	args[len(args)-1] = "2026-01-10T07:00:00Z"
	if code := runCollectWith(context.Background(), cc, &out, &errOut, args...); code != 0 {
		t.Fatalf("the second run: exit %d: %s", code, errOut.String())
	}
	if strings.Contains(errOut.String(), "the service accepted") || logOf() != pushed {
		t.Errorf("a second run pushed again:\n%s", errOut.String())
	}
}

// canonical reads a log's events as the lines pal writes, sorted: the
// service's export and a file compare alike.
func canonical(t *testing.T, log string) []string {
	t.Helper()
	evs, err := readEvents("log", strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		ev.Imported = false
		out = append(out, string(ev.AppendJSON(nil)))
	}
	slices.Sort(out)
	return out
}

// TestCollectFailuresAndDryRun: a subscription refused is said on its
// source's line on standard error, naming the request and what the API
// said, and the run exits 1 with the rest written; --dry-run prints and
// writes nothing.
func TestCollectFailuresAndDryRun(t *testing.T) {
	api, cc := fakeAzure(t)
	api.Fail(collecttest.Sub1Path+"/providers/Microsoft.CostManagement/query", collecttest.Failure{Status: 403, Code: "RBACAccessDenied", Times: -1})
	dir := t.TempDir()
	config := filepath.Join(dir, "collect.json")
	os.WriteFile(config, []byte(collectConfig), 0o644)
	log := filepath.Join(dir, "log.ndjson")
	var out, errOut bytes.Buffer
	code := runCollectWith(context.Background(), cc, &out, &errOut, "collect", "--config", config, "--log", log, "--dry-run", "--observed-at", collectAt)
	if code != ExitRefused {
		t.Errorf("a run with a source failed exits %d, want %d", code, ExitRefused)
	}
	wantErr := "; subscriptions/" + collecttest.Sub1 + " not read, what the log holds of it kept: POST " + api.URL + collecttest.Sub1Path +
		"/providers/Microsoft.CostManagement/query: 403 Forbidden, RBACAccessDenied: the test answers 403"
	if !strings.Contains(errOut.String(), wantErr) || !strings.Contains(errOut.String(), "azure-costs needs Cost Management Reader") ||
		!strings.Contains(errOut.String(), "would write 27 new events from 11 sources") ||
		!strings.Contains(errOut.String(), "1 written without the scopes they could not read (contoso-tenant-id azure-costs without 1)") {
		t.Errorf("standard error:\n%s\nwant it to say %q", errOut.String(), wantErr)
	}
	if n := strings.Count(out.String(), "\n"); n != 27 || strings.Contains(out.String(), collecttest.Sub1Path+"/") || !strings.Contains(out.String(), collecttest.Sub2Path+"/") {
		t.Errorf("--dry-run printed %d events, want the 27 of what could be read, costs of the second subscription alone:\n%s", n, out.String())
	}
	if _, err := os.Stat(log); err == nil {
		t.Errorf("--dry-run wrote %s", log)
	}
}

// TestCollectWithNoCredential: a run in which every source failed, here for
// want of a credential, exits 2 with a line that says what to set, where
// a run that did part of its work exits 1.
func TestCollectWithNoCredential(t *testing.T) {
	api := collecttest.New(t)
	collecttest.FirstDay(t, collectWorld).Serve(api)
	none := errors.New("DefaultAzureCredential: failed to acquire a token")
	creds := &collecttest.Credentials{Set: map[string]*collecttest.Credential{
		"contoso-tenant-id": {Tenant: "contoso-tenant-id", Err: none}, "fabrikam-tenant-id": {Tenant: "fabrikam-tenant-id", Err: none}}}
	cc := collectCommand{azure: func() collect.Options {
		return collect.Options{Credential: creds.For, Client: api.ClientOptions(), GraphEndpoint: api.GraphEndpoint(),
			PowerPlatformEndpoint: api.URL, OfficeEndpoint: api.URL, RetryDelay: 10 * time.Millisecond}
	}}
	dir := t.TempDir()
	config := filepath.Join(dir, "collect.json")
	os.WriteFile(config, []byte(collectConfig), 0o644)
	var out, errOut bytes.Buffer
	code := runCollectWith(context.Background(), cc, &out, &errOut, "collect", "--config", config, "--log", filepath.Join(dir, "log.ndjson"), "--once", "--observed-at", collectAt)
	if code != ExitUsage || !strings.Contains(errOut.String(), "every source that asked an API failed") || !strings.Contains(errOut.String(), "AZURE_*") {
		t.Errorf("a run with no credential: exit %d, standard error:\n%s", code, errOut.String())
	}
}

func TestCollectUsage(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "collect.json")
	os.WriteFile(config, []byte(collectConfig), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"tenants": [{"tenant": "t", "sources": ["powerapps"]}], "cloud": "china"}`), 0o644)
	shortKey := filepath.Join(dir, "short.key")
	os.WriteFile(shortKey, []byte("0123456789"), 0o600)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--log", "x"}, "--config is required"},
		{[]string{"--config", config}, "say where the events go"},
		{[]string{"--config", config, "--log", "x", "--once", "--every", "24h"}, "--once and --every do not go together"},
		{[]string{"--config", config, "--log", "x", "--every", "10s"}, "--every 10s is more often than the APIs change"},
		{[]string{"--config", config, "--log", "x", "--metrics", ":9464"}, "--metrics goes with --every"},
		{[]string{"--config", config, "--log", "x", "--push", "--server", "http://127.0.0.1:1", "--token", "t"}, "--log and --push do not go together"},
		{[]string{"--config", config, "--push"}, "--push and --server go together"},
		{[]string{"--config", config, "--log", "x", "--every", "24h", "--observed-at", collectAt}, "--observed-at goes with --once"},
		{[]string{"--config", bad, "--log", "x"}, "pal reads powerapps in the public cloud only"},
		{[]string{"--config", config, "--log", "x", "--pseudonymise-users", shortKey}, "--pseudonymise-users acts on the usage the audit source makes, and no tenant of"},
		{[]string{"--config", filepath.Join(dir, "none.json"), "--log", "x"}, "no such file"},
	}
	for _, tt := range tests {
		// Through Run itself: each mistake is found before any request.
		code, _, errOut := run(t, "", append([]string{"collect"}, tt.args...)...)
		if code != ExitUsage || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("pal collect %v: exit %d %q, want exit 2 and one line saying %q", tt.args, code, errOut, tt.want)
		}
	}
}

// TestCollectPowerPlatformAndAudit collects Contoso's Power Platform and
// audit with --pseudonymise-users: the usage's users are their keyed
// hashes, as pal import audit --pseudonymise-users writes them, and no
// user name of the audit enters the log; a key too short is refused.
func TestCollectPowerPlatformAndAudit(t *testing.T) {
	_, cc := fakeAzure(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "collect.json")
	os.WriteFile(config, []byte(`{"tenants": [{"tenant": "contoso-tenant-id", "sources": ["users", "powerapps", "audit"]}]}`), 0o644)
	key := filepath.Join(dir, "pal.key")
	os.WriteFile(key, bytes.Repeat([]byte{7}, 32), 0o600)
	log := filepath.Join(dir, "log.ndjson")
	var out, errOut bytes.Buffer
	code := runCollectWith(context.Background(), cc, &out, &errOut, "collect", "--config", config, "--log", log, "--observed-at", collectAt, "--pseudonymise-users", key)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"pal collect: contoso-tenant-id powerapps: ",
		"pal collect: contoso-tenant-id audit: 2 pages, 5 records, 3 new events, 1 record not imported",
		"ViewReport of 3a4b5c6d-0000-4000-8000-000000000006, which the log does not know",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("standard error has no %q:\n%s", want, errOut.String())
		}
	}
	data, _ := os.ReadFile(log)
	users := regexp.MustCompile(`"type":"usage".*"user":"([^"]*)"`).FindAllStringSubmatch(string(data), -1)
	if len(users) != 2 {
		t.Fatalf("the log holds %d uses, want 2:\n%s", len(users), data)
	}
	for _, u := range users {
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(u[1]) {
			t.Errorf("a usage user %q is not a pseudonym", u[1])
		}
	}
	// The same records imported with the same key, against the log less
	// its uses, give the same uses.
	var rest, uses []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.Contains(l, `"type":"usage"`) {
			uses = append(uses, l)
		} else {
			rest = append(rest, l)
		}
	}
	without := filepath.Join(dir, "without-uses.ndjson")
	os.WriteFile(without, []byte(strings.Join(rest, "\n")+"\n"), 0o644)
	audit := filepath.Join(dir, "audit.ndjson")
	var recs []string
	for _, c := range collecttest.FirstDay(t, collectWorld).Audit["contoso-tenant-id"][1:] {
		for _, r := range c.Records {
			recs = append(recs, string(r))
		}
	}
	os.WriteFile(audit, []byte(strings.Join(recs, "\n")), 0o644)
	_, imported, errText := run(t, "", "import", "audit", audit, "--log", without, "--pseudonymise-users", key)
	var importedUses []string
	for _, l := range strings.Split(strings.TrimSpace(imported), "\n") {
		if strings.Contains(l, `"type":"usage"`) {
			importedUses = append(importedUses, l)
		}
	}
	if g, w := sortedLines(strings.Join(uses, "\n")), sortedLines(strings.Join(importedUses, "\n")); !slices.Equal(g, w) {
		t.Errorf("pal collect wrote the uses\n%s\npal import audit\n%s\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"), errText)
	}
}

// TestCollectEvery runs pal collect as a daemon: it collects at once,
// serves its metrics, and stops when told to.
func TestCollectEvery(t *testing.T) {
	_, cc := fakeAzure(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "collect.json")
	os.WriteFile(config, []byte(collectConfig), 0o644)
	log := filepath.Join(dir, "log.ndjson")
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan int)
	go func() {
		done <- runCollectWith(ctx, cc, io.Discard, stderr, "collect", "--config", config, "--log", log, "--every", "24h", "--metrics", "127.0.0.1:0")
	}()
	addr := regexp.MustCompile(`metrics on (http://\S+/metrics)`)
	var metricsURL string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stderr.String()); m != nil && strings.Contains(stderr.String(), "pal collect: observed at") {
			metricsURL = m[1]
			break
		}
	}
	if metricsURL == "" {
		cancel()
		t.Fatalf("no first run and metrics address in:\n%s", stderr.String())
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`pal_collect_events_total{source="azure-roles",tenant="contoso-tenant-id"} 6`,
		`pal_collect_last_success_timestamp_seconds{source="links",tenant="fabrikam-tenant-id"}`,
		`pal_collect_runs_total 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the metrics have no %s:\n%s", want, body)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("stopped, pal collect exits %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pal collect --every did not stop with its context")
	}
	if data, _ := os.ReadFile(log); strings.Count(string(data), "\n") != 26 {
		t.Errorf("the daemon's first run wrote %d events, want 26 (the costs of January are older than a week now):\n%s", strings.Count(string(data), "\n"), data)
	}
}

// syncBuffer is a buffer written by one goroutine and read by another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
