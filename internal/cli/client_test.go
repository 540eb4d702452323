package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store/sqlite"
)

// TestAgainstAService drives a real service through the command line, as
// a partner, an administrator and the operator would, and replays the
// service's log export with the command line to get the same answers.
func TestAgainstAService(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "pal.db")
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(ctx, server.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
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

	issue := func(args ...string) string {
		code, out, errOut := run(t, "", append([]string{"token", "issue", "--db", db}, args...)...)
		if code != 0 {
			t.Fatalf("pal token issue %v: exit %d %s", args, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	operator := issue("--role", "operator")
	if code, _, errOut := run(t, "", "token", "issue", "--db", db, "--role", "account", "--tenant", "contoso"); code != ExitUsage || !strings.Contains(errOut, "--account") {
		t.Errorf("an account token without --account: exit %d %q", code, errOut)
	}

	_, log, _ := run(t, "", "demo")
	code, out, errOut := run(t, log, "events", "push", "-", "--server", hs.URL, "--token", operator)
	if code != 0 || !strings.HasPrefix(out, "accepted 9039, duplicates 0, refused 0") {
		t.Fatalf("pal events push: exit %d %q %q", code, out, errOut)
	}
	admin := issue("--role", "tenant-admin", "--tenant", "contoso")
	code, out, _ = run(t, `{"type":"account.created","time":"2026-04-01T00:00:00Z","tenant":"contoso","account":"zoe","kind":"guest"}
{"type":"pal.linked","time":"2026-04-01T00:00:00Z","tenant":"contoso","account":"zoe","partner":"1000011"}`,
		"events", "push", "--server", hs.URL, "--token", admin, "--strict", "-")
	if code != ExitRefused || !strings.Contains(out, "accepted 1, duplicates 0, refused 1") || !strings.Contains(out, "forbidden") {
		t.Errorf("administrator's push of a link: exit %d %q", code, out)
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
	} {
		_, local, _ := run(t, export, append(cmd, "--log", "-")...)
		code, remote, errOut := run(t, "", append(cmd, "--server", hs.URL, "--token", operator)...)
		if code != 0 || local != remote {
			t.Errorf("pal %s: the replayed export and the service differ (exit %d %s):\n%s\nand\n%s", strings.Join(cmd, " "), code, errOut, local, remote)
		}
	}
	if code, _, errOut := run(t, "", "attribution", "--server", hs.URL); code != ExitUsage || !strings.Contains(errOut, "--token") {
		t.Errorf("--server without a token: exit %d %q", code, errOut)
	}
}
