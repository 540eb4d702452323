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

// TestActiveAccountMadeOwner: on a ci_instance, an account already active
// that is made owner takes its association from that instant (SPEC.md
// section 3: "new owner's association starts now").
func TestActiveAccountMadeOwner(t *testing.T) {
	log := `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"200001","name":"Northwind","locations":["200011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"bob","kind":"guest"}
{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"contoso","account":"alice","partner":"100011"}
{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"contoso","account":"bob","partner":"200011"}
{"type":"resource.created","time":"2026-01-05T00:00:00Z","tenant":"contoso","environment":"prod","resource":"ci","kind":"ci_instance","owner":"alice"}
{"type":"resource.activity","time":"2026-01-06T00:00:00Z","tenant":"contoso","resource":"ci","account":"bob","action":"use"}
{"type":"resource.activity","time":"2026-01-07T00:00:00Z","tenant":"contoso","resource":"ci","account":"alice","action":"use"}
{"type":"resource.owner_changed","time":"2026-01-08T00:00:00Z","tenant":"contoso","resource":"ci","owner":"bob"}`
	for at, want := range map[string]string{
		"2026-01-07T12:00:00Z": `"partner": "100011"`,
		"2026-01-08T12:00:00Z": `"partner": "200011"`,
	} {
		code, stdout, stderr := run(t, log, "explain", "--log", "-", "--tenant", "contoso", "--resource", "ci", "--at", at, "--format", "json")
		_, winner, _ := strings.Cut(stdout, `"winner"`)
		winner, _, _ = strings.Cut(winner, "}")
		if code != 0 || !strings.Contains(winner, want) {
			t.Errorf("explain at %s: exit %d %s, want the winner %s\n%s", at, code, stderr, want, stdout)
		}
	}
}

// TestRemovingACoownerThatIsNoAccount: an event that names an account that
// does not exist, or was deleted, is refused as unknown_tenant_object (SPEC.md
// section 3), a co-owner's removal as any other.
func TestRemovingACoownerThatIsNoAccount(t *testing.T) {
	log := `{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"bob","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"carol","kind":"guest"}
{"type":"resource.created","time":"2026-01-05T00:00:00Z","tenant":"contoso","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}
{"type":"resource.coowner_added","time":"2026-01-06T00:00:00Z","tenant":"contoso","resource":"app1","account":"bob"}
{"type":"account.deleted","time":"2026-01-07T00:00:00Z","tenant":"contoso","account":"bob"}
{"type":"resource.coowner_removed","time":"2026-01-08T00:00:00Z","tenant":"contoso","resource":"app1","account":"bob"}
{"type":"resource.coowner_removed","time":"2026-01-08T00:00:00Z","tenant":"contoso","resource":"app1","account":"ghost"}
{"type":"resource.coowner_removed","time":"2026-01-08T00:00:00Z","tenant":"contoso","resource":"app1","account":"carol"}`
	_, stdout, _ := run(t, log, "check", "--log", "-", "--format", "json")
	for _, want := range []string{`"line": 8, "type": "resource.coowner_removed", "code": "unknown_tenant_object"`,
		`"line": 9, "type": "resource.coowner_removed", "code": "unknown_tenant_object"`,
		`"line": 10, "type": "resource.coowner_removed", "code": "not_coowner"`} {
		if !strings.Contains(strings.Join(strings.Fields(stdout), " "), want) {
			t.Errorf("pal check lacks %s:\n%s", want, stdout)
		}
	}
}

// TestSolutionListingAResourceTwice: a solution's resources are checked in
// order, so one listed again with another kind refuses the whole import.
func TestSolutionListingAResourceTwice(t *testing.T) {
	log := `{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"solution.imported","time":"2026-01-07T00:00:00Z","tenant":"contoso","environment":"prod","account":"alice","resources":[{"resource":"q","kind":"flow"},{"resource":"q","kind":"canvas_app"}]}
{"type":"solution.imported","time":"2026-01-08T00:00:00Z","tenant":"contoso","environment":"prod","account":"alice","resources":[{"resource":"r","kind":"flow"},{"resource":"r","kind":"flow"}]}`
	_, stdout, _ := run(t, log, "check", "--log", "-", "--format", "json")
	flat := strings.Join(strings.Fields(stdout), " ")
	if !strings.Contains(flat, `"line": 3, "type": "solution.imported", "code": "invalid_kind"`) || strings.Contains(flat, `"line": 4`) {
		t.Errorf("pal check:\n%s\nwant line 3 refused as invalid_kind, line 4 applied", stdout)
	}
}

// TestCSVTextIsText: a cell of text that a spreadsheet would run as a
// formula is written after a '; numbers, negative ones too, and the items
// of a list are left as they are.
func TestCSVTextIsText(t *testing.T) {
	type row struct {
		Name  string   `json:"name"`
		Cost  float64  `json:"cost"`
		Items []string `json:"items"`
	}
	var b strings.Builder
	if err := writeCSV(&b, []row{{Name: "=HYPERLINK(1)", Cost: -5, Items: []string{"x", "-y"}}}); err != nil {
		t.Fatal(err)
	}
	if want := "name,cost,items\n'=HYPERLINK(1),-5,x;-y\n"; b.String() != want {
		t.Errorf("CSV:\n%s\nwant\n%s", b.String(), want)
	}
}
