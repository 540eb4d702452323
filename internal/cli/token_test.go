package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTokens issues tokens with the command line, lists them without the
// tokens themselves, and revokes one.
func TestTokens(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pal.db")
	code, token, stderr := run(t, "", "token", "issue", "--db", db, "--role", "partner-reader", "--org", "100001", "--ttl", "48h")
	if code != 0 || !strings.HasPrefix(token, "pal_") || !strings.Contains(stderr, "expires") {
		t.Fatalf("token issue: %d %q %q", code, token, stderr)
	}
	if code, _, _ := run(t, "", "token", "issue", "--db", db, "--role", "operator"); code != 0 {
		t.Fatalf("token issue of an operator: %d", code)
	}
	if code, _, stderr := run(t, "", "token", "issue", "--db", db, "--role", "operator", "--ttl", "-1h"); code != 2 || !strings.Contains(stderr, "--ttl") {
		t.Errorf("a negative --ttl: %d %q, want 2 and a word on --ttl", code, stderr)
	}
	list := func() []tokenRow {
		t.Helper()
		code, out, stderr := run(t, "", "token", "list", "--db", db, "--format", "json")
		if code != 0 {
			t.Fatalf("token list: %d %s", code, stderr)
		}
		if strings.Contains(out, strings.TrimSpace(token)) || strings.Contains(out, "pal_") {
			t.Fatalf("token list shows a token: %s", out)
		}
		var rows []tokenRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	rows := list()
	if len(rows) != 2 || rows[0].Role != "partner-reader" || rows[0].Org != "100001" || rows[0].State != "active" || !strings.HasPrefix(rows[0].ID, "tok_") {
		t.Fatalf("token list: %+v", rows)
	}
	if life := rows[0].Expires.Sub(rows[0].Created); life != 48*time.Hour {
		t.Errorf("the token lasts %s, want 48h", life)
	}
	if life := rows[1].Expires.Sub(rows[1].Created); life != 90*24*time.Hour {
		t.Errorf("a token lasts %s by default, want 90 days", life)
	}
	if code, out, _ := run(t, "", "token", "revoke", "--db", db, rows[0].ID); code != 0 || !strings.Contains(out, rows[0].ID) {
		t.Errorf("token revoke: %d %q", code, out)
	}
	if rows := list(); rows[0].State != "revoked" || rows[1].State != "active" {
		t.Errorf("after revoke: %+v", rows)
	}
	if code, _, stderr := run(t, "", "token", "revoke", "--db", db, "tok_nope"); code != 2 || !strings.Contains(stderr, "no token tok_nope") {
		t.Errorf("revoking an unknown token: %d %q", code, stderr)
	}
	if code, out, _ := run(t, "", "token", "list", "--db", db); code != 0 || !strings.Contains(out, "partner-reader  100001") || !strings.Contains(out, "revoked") {
		t.Errorf("token list as a table: %d\n%s", code, out)
	}
}
