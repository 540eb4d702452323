package cli

import (
	"strings"
	"testing"
)

// TestExplainWithNoCandidates: an explanation with no candidate lists none
// as an empty array, as SPEC.md section 7 writes it, never as null.
func TestExplainWithNoCandidates(t *testing.T) {
	log := `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"contoso","account":"alice","partner":"100011"}
{"type":"resource.created","time":"2026-01-05T00:00:00Z","tenant":"contoso","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}
{"type":"account.deleted","time":"2026-01-06T00:00:00Z","tenant":"contoso","account":"alice"}`
	for _, at := range []string{"2026-01-07", "2025-12-01"} {
		code, stdout, stderr := run(t, log, "explain", "--log", "-", "--tenant", "contoso", "--resource", "app1", "--at", at, "--format", "json")
		if code != 0 || !strings.Contains(stdout, `"candidates": []`) {
			t.Errorf("explain at %s: exit %d, %s\n%s", at, code, stderr, stdout)
		}
	}
}
