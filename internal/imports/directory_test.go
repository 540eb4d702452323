package imports_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/imports"
)

// importLines imports one file and lists its events as log lines, without
// their ids and sorted, and its problems.
func importLines(t *testing.T, format, file string, o imports.Options) (events []string, problems []string) {
	t.Helper()
	res, err := imports.Run(format, []imports.File{{Name: "export.json", R: strings.NewReader(file)}}, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range res.Events {
		ev.ID = "" // a hash of what the line says, tested with the fixtures
		events = append(events, string(ev.AppendJSON(nil)))
	}
	slices.Sort(events)
	for _, p := range res.Problems {
		problems = append(problems, p.String())
	}
	return events, problems
}

// TestUsersOfADeltaAndTheirState: Graph's users, as a delta writes them,
// say who was disabled or enabled since the log (accountEnabled), and the
// removed ones (@removed) are reported, never created.
func TestUsersOfADeltaAndTheirState(t *testing.T) {
	known := foldLog(t, `{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"u-dis","kind":"user"}
{"type":"account.disabled","time":"2026-01-02T00:00:00Z","tenant":"contoso","account":"u-dis"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"u-on","kind":"user"}`)
	delta := `{"value": [
 {"id": "u-new", "userPrincipalName": "new@contoso.example", "accountEnabled": false, "createdDateTime": "2026-01-05T00:00:00Z"},
 {"id": "u-dis", "userPrincipalName": "dis@contoso.example", "accountEnabled": true},
 {"id": "u-on", "userPrincipalName": "on@contoso.example", "accountEnabled": false},
 {"id": "u-gone", "@removed": {"reason": "changed"}},
 {"id": "u-quiet", "userPrincipalName": "quiet@contoso.example"}
]}`
	observed := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	got, problems := importLines(t, "users", delta, imports.Options{Tenant: "contoso", ObservedAt: observed, Known: imports.Known(known)})
	want := []string{
		`{"type":"account.created","time":"2026-01-05T00:00:00Z","tenant":"contoso","account":"u-new","kind":"user","name":"new@contoso.example"}`,
		`{"type":"account.created","time":"2026-01-10T00:00:00Z","tenant":"contoso","account":"u-quiet","kind":"user","name":"quiet@contoso.example"}`,
		`{"type":"account.disabled","time":"2026-01-10T00:00:00Z","tenant":"contoso","account":"u-new"}`,
		`{"type":"account.disabled","time":"2026-01-10T00:00:00Z","tenant":"contoso","account":"u-on"}`,
		`{"type":"account.enabled","time":"2026-01-10T00:00:00Z","tenant":"contoso","account":"u-dis"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "u-gone is removed from the directory") {
		t.Errorf("problems %q, want the removed user reported", problems)
	}
}

// TestGraphPowerShellMembers: Get-MgGroupMember | ConvertTo-Json holds a
// member's @odata.type and user principal name under AdditionalProperties:
// a nested group is reported, a service principal is one.
func TestGraphPowerShellMembers(t *testing.T) {
	members := `[
 {"Id": "u1", "DeletedDateTime": null, "AdditionalProperties": {"@odata.type": "#microsoft.graph.user", "userPrincipalName": "alice@contoso.example"}},
 {"Id": "sp1", "DeletedDateTime": null, "AdditionalProperties": {"@odata.type": "#microsoft.graph.servicePrincipal", "displayName": "deployer"}},
 {"Id": "g2", "DeletedDateTime": null, "AdditionalProperties": {"@odata.type": "#microsoft.graph.group", "displayName": "nested"}}
]`
	got, problems := importLines(t, "groups", members, imports.Options{Tenant: "contoso", Group: "g1", ObservedAt: time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)})
	joined := strings.Join(got, "\n")
	for _, want := range []string{`"account":"u1","kind":"user","name":"alice@contoso.example"`, `"account":"sp1","kind":"service_principal","name":"deployer"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("events lack %s:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, `"g2"`) || len(problems) != 1 || !strings.Contains(problems[0], "g2 is a group") {
		t.Errorf("the nested group: events\n%s\nproblems %q; want it reported only", joined, problems)
	}
}
