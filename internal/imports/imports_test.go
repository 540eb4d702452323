package imports_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/imports"
)

var update = flag.Bool("update", false, "rewrite the golden outputs under testdata/imports")

// TestFixtures imports each fixture, written in the real export's shape
// with its untidy cases, and compares the events and the problems with
// the golden file beside it (read by hand; -update rewrites it).
func TestFixtures(t *testing.T) {
	checkFixtures(t, []fixture{
		{"azure-roles", "azure-roles/day1.json", "contoso-tenant-id", "", "", ""},
		{"azure-roles", "azure-roles/truncated.json", "contoso-tenant-id", "", "", ""},
		// A changelog against the log that holds alice's assignment.
		{"azure-roles", "azure-roles/changelogs.json", "contoso-tenant-id", "", "", "azure-roles/known.ndjson"},
		{"azure-costs", "azure-costs/ea.csv", "contoso", "", "", ""},
		{"azure-costs", "azure-costs/mca.csv", "contoso", "", "", ""},
		{"azure-costs", "azure-costs/focus.csv", "contoso", "", "", ""},
		// Saved by a spreadsheet in a locale of decimal commas: Excel's
		// sep= line, semicolons, a header repeated where two were pasted.
		{"azure-costs", "azure-costs/excel-semicolon.csv", "contoso", "", "", ""},
		// An export compressed with gzip, as Cost Management may write it.
		{"azure-costs", "azure-costs/mca-gzip.csv.gz", "contoso", "", "", ""},
		{"management-groups", "management-groups/tree.json", "contoso-tenant-id", "", "", ""},
		// The entities list says no time: the observation is given.
		{"management-groups", "management-groups/entities.json", "contoso-tenant-id", "2026-01-10T00:00:00Z", "", ""},
		{"links", "links/managementpartner.json", "", "", "", ""},
		{"links", "links/get-azmanagementpartner.json", "", "", "", ""},
		{"groups", "groups/cloud-operations.json", "contoso-tenant-id", "2026-01-10T00:00:00Z", "9a8b7c6d-0000-4000-8000-00000000000c", ""},
		{"powerapps", "powerapps/cmdlets.json", "contoso-tenant-id", "", "", ""},
		{"users", "users/users.json", "contoso-tenant-id", "", "", ""},
		{"lighthouse", "lighthouse/assignments.json", "contoso-tenant-id", "2026-01-10T00:00:00Z", "", ""},
		{"azure-pim", "azure-pim/instances.json", "contoso-tenant-id", "", "", ""},
		// The audit speaks user principal names: the log names the accounts.
		{"audit", "audit/purview.csv", "", "", "", "audit/known.ndjson"},
		{"audit", "audit/search-unifiedauditlog.csv", "", "", "", ""},
		// The shapes the REST API and Windows PowerShell write, in their
		// encodings: two REST pages concatenated (CRLF), one resource
		// alone (a byte-order mark), ConvertTo-Json in UTF-16 with its
		// \/Date(…)\/ dates, JSON Lines with a line cut short, and
		// management groups naming their tenant themselves.
		{"azure-roles", "azure-roles/rest-pages.json", "contoso-tenant-id", "", "", ""},
		{"azure-roles", "azure-roles/get-azroleassignment.json", "contoso-tenant-id", "2026-01-08T00:00:00Z", "", ""},
		{"links", "links/rest.json", "", "", "", ""},
		{"links", "links/powershell51.json", "", "", "", ""},
		{"users", "users/get-mguser.json", "contoso-tenant-id", "", "", ""},
		{"users", "users/graph.jsonl", "contoso-tenant-id", "", "", ""},
		{"management-groups", "management-groups/rest-tree.json", "", "", "", ""},
		{"management-groups", "management-groups/rest-entities.json", "", "2026-01-10T00:00:00Z", "", ""},
	})
}

// fixture is an export under testdata/imports, imported with a tenant,
// an observation instant, a group and a log so far (a file beside it)
// where given.
type fixture struct{ format, file, tenant, observed, group, known string }

// checkFixtures imports each fixture and compares the events and the
// problems with the golden file beside it.
func checkFixtures(t *testing.T, fixtures []fixture) {
	t.Helper()
	for _, c := range fixtures {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("../../testdata/imports", c.file)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			o := imports.Options{Tenant: c.tenant, Group: c.group}
			if c.known != "" {
				o.Known = imports.Known(foldFile(t, filepath.Join("../../testdata/imports", c.known)))
			}
			if c.observed != "" {
				o.ObservedAt, _ = time.Parse(time.RFC3339, c.observed)
			}
			res, err := imports.Run(c.format, []imports.File{{Name: filepath.Base(path), R: f}}, o)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			w := event.NewWriter(&got)
			for _, ev := range res.Events {
				w.Write(ev)
			}
			w.Flush()
			for _, p := range res.Problems {
				fmt.Fprintf(&got, "! %s\n", p)
			}
			golden := strings.TrimSuffix(path, filepath.Ext(path)) + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Errorf("import of %s differs from %s (go test ./internal/imports -update rewrites it):\n%s", c.file, golden, got.String())
			}
			// Every event is a valid line of the log.
			for _, ev := range res.Events {
				if _, rf := event.Decode(ev.AppendJSON(nil), 0); rf != nil {
					t.Errorf("event %s is refused by the log's line checks: %v", ev.AppendJSON(nil), rf)
				}
			}
		})
	}
}

// foldFile folds a log file, and lines after it.
func foldFile(t *testing.T, path string, more ...string) *attribution.Engine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return foldLog(t, string(data)+strings.Join(more, "\n"))
}

// foldLog folds the lines of a log, every one of which must apply.
func foldLog(t *testing.T, text string) *attribution.Engine {
	t.Helper()
	var events []*event.Event
	r := event.NewReader(strings.NewReader(text))
	for {
		ev, rf, err := r.Next()
		if err != nil {
			break
		}
		if rf != nil {
			t.Fatal(rf)
		}
		events = append(events, ev)
	}
	ordered, _ := fold.Order(events)
	e := attribution.New(attribution.DefaultOptions())
	for _, ev := range ordered {
		if res := e.Apply(ev); res.Outcome == attribution.Refused {
			t.Fatalf("%s refused: %v", ev.AppendJSON(nil), res.Refusal)
		}
	}
	return e
}

// roleRow is a row of az role assignment list.
type roleRow struct {
	Name               string `json:"name"`
	PrincipalID        string `json:"principalId"`
	PrincipalType      string `json:"principalType"`
	RoleDefinitionName string `json:"roleDefinitionName"`
	Scope              string `json:"scope"`
	CreatedOn          string `json:"createdOn"`
}

// TestSevenDailySnapshots imports a week of daily snapshots, each against
// the log so far: the Power Apps cmdlets' (a co-owner added on day 3, the
// owner changed on day 5) and the role assignments' (bob's Contributor
// appears on day 3, alice's is gone on day 6). The history no export keeps
// is built: the timelines and explanations follow the days, and a
// snapshot imported twice adds nothing.
func TestSevenDailySnapshots(t *testing.T) {
	const tenant = "contoso"
	day := func(d, h int) time.Time { return time.Date(2026, 1, d, h, 0, 0, 0, time.UTC) }
	alice := roleRow{"a-1", "alice", "User", "Contributor", "/subscriptions/S1", day(1, 9).Format(time.RFC3339)}
	bob := roleRow{"b-1", "bob", "User", "Contributor", "/subscriptions/s1", day(3, 10).Format(time.RFC3339)}
	sp := roleRow{"c-1", "deploy", "ServicePrincipal", "Reader", "/subscriptions/s1", day(1, 8).Format(time.RFC3339)}
	snapshot := func(d int) []roleRow {
		rows := []roleRow{sp}
		if d < 6 {
			rows = append(rows, alice)
		}
		if d >= 3 {
			rows = append(rows, bob)
		}
		return rows
	}
	// The log before the imports: the partners and the links.
	log := `{"type":"partner.registered","time":"2025-12-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"partner.registered","time":"2025-12-01T00:00:00Z","org":"200001","name":"Northwind","locations":["200011"]}
`
	var events []*event.Event
	read := func(text string) {
		r := event.NewReader(strings.NewReader(text))
		for {
			ev, rf, err := r.Next()
			if err != nil {
				return
			}
			if rf != nil {
				t.Fatal(rf)
			}
			events = append(events, ev)
		}
	}
	read(log)
	replayed := func() *attribution.Engine {
		ordered, _ := fold.Order(events)
		e := attribution.New(attribution.DefaultOptions())
		for _, ev := range ordered {
			if res := e.Apply(ev); res.Outcome == attribution.Refused {
				t.Fatalf("%s refused: %v", ev.AppendJSON(nil), res.Refusal)
			}
		}
		return e
	}
	importDay := func(d int) []*event.Event {
		data, _ := json.Marshal(snapshot(d))
		res, err := imports.Run("azure-roles", []imports.File{{Name: fmt.Sprintf("day%d.json", d), R: bytes.NewReader(data)}},
			imports.Options{Tenant: tenant, ObservedAt: day(d, 23), Known: imports.Known(replayed())})
		if err != nil || len(res.Problems) > 0 {
			t.Fatalf("day %d: %v %v", d, err, res.Problems)
		}
		return res.Events
	}
	// The Power Apps of each day: alice's app, bob co-owner from day 3,
	// carol its owner from day 5.
	powerApps := func(d int) string {
		owner := "alice"
		if d >= 5 {
			owner = "carol"
		}
		roles := fmt.Sprintf(`{"AppName":"app1","EnvironmentName":"env1","PrincipalObjectId":%q,"PrincipalType":"User","RoleType":"Owner"}`, owner)
		if d >= 3 {
			roles += `,{"AppName":"app1","EnvironmentName":"env1","PrincipalObjectId":"bob","PrincipalType":"User","RoleType":"CanEdit"}`
		}
		return fmt.Sprintf(`[{"EnvironmentName":"env1","DisplayName":"Contoso (default)","EnvironmentType":"Production","CreatedTime":"2025-12-01T00:00:00Z"},
{"AppName":"app1","DisplayName":"Expenses","EnvironmentName":"env1","CreatedTime":"2026-01-01T10:00:00Z","Owner":{"id":%q,"displayName":"owner"}},%s]`, owner, roles)
	}
	importApps := func(d int) []*event.Event {
		res, err := imports.Run("powerapps", []imports.File{{Name: fmt.Sprintf("apps-day%d.json", d), R: strings.NewReader(powerApps(d))}},
			imports.Options{Tenant: tenant, ObservedAt: day(d, 22), Known: imports.Known(replayed())})
		if err != nil || len(res.Problems) > 0 {
			t.Fatalf("apps day %d: %v %v", d, err, res.Problems)
		}
		return res.Events
	}
	for d := 1; d <= 7; d++ {
		apps := importApps(d)
		var appKinds []string
		for _, ev := range apps {
			appKinds = append(appKinds, ev.Type+" "+ev.Resource+ev.Environment+" "+ev.Account+ev.Owner+" "+ev.Time.Format(time.RFC3339))
		}
		// A day's events against the days that import any ([] the others).
		expect := func(from string, got []string, days map[int]string) {
			if want := cmp.Or(days[d], "[]"); fmt.Sprint(got) != want {
				t.Errorf("day %d imports from %s %v, want %s", d, from, got, want)
			}
		}
		expect("the cmdlets", appKinds, map[int]string{
			1: "[environment.created env1  2025-12-01T00:00:00Z account.created  alice 2026-01-01T10:00:00Z resource.created app1env1 alice 2026-01-01T10:00:00Z]",
			3: "[account.created  bob 2026-01-03T22:00:00Z resource.coowner_added app1 bob 2026-01-03T22:00:00Z]",
			5: "[account.created  carol 2026-01-05T22:00:00Z resource.owner_changed app1 carol 2026-01-05T22:00:00Z]",
		})
		events = append(events, apps...)
		got := importDay(d)
		var kinds []string
		for _, ev := range got {
			kinds = append(kinds, ev.Type+" "+ev.Account+ev.Principal+ev.Assignment+" "+ev.Time.Format(time.RFC3339))
		}
		expect("the role assignments", kinds, map[int]string{
			1: "[account.created deploy 2026-01-01T08:00:00Z azure.role_assigned deployc-1 2026-01-01T08:00:00Z azure.role_assigned alicea-1 2026-01-01T10:00:00Z]",
			3: "[azure.role_assigned bobb-1 2026-01-03T22:00:00Z]",
			6: "[azure.role_removed a-1 2026-01-06T23:00:00Z]",
		})
		events = append(events, got...)
		if d == 1 {
			read(`{"type":"pal.linked","time":"2026-01-01T12:00:00Z","tenant":"contoso","account":"alice","partner":"100011"}
{"type":"azure.consumption","time":"2026-01-08T00:00:00Z","tenant":"contoso","resource":"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1","date":"2026-01-07","cost":10}
`)
		}
		if d == 3 {
			read(`{"type":"pal.linked","time":"2026-01-03T23:00:00Z","tenant":"contoso","account":"bob","partner":"200011"}` + "\n")
		}
	}
	// The same snapshots again: nothing new.
	if again := importDay(7); len(again) != 0 {
		t.Errorf("day 7's roles imported twice add %d events", len(again))
	}
	if again := importApps(7); len(again) != 0 {
		t.Errorf("day 7's apps imported twice add %d events", len(again))
	}
	e := replayed()
	// app1: alice's (Fabrikam) from her link, bob's (Northwind) from his
	// link after his co-ownership on day 3; carol, its owner from day 5,
	// holds no link, so bob keeps it.
	var app []string
	for _, iv := range e.History(tenant, "app1") {
		app = append(app, fmt.Sprintf("%s %s", iv.From.Format(time.RFC3339), cmp.Or(iv.Credit.Partner, iv.Credit.Reason)))
	}
	if want := "[2026-01-01T10:00:00Z no_eligible_account 2026-01-01T12:00:00Z 100011 2026-01-03T23:00:00Z 200011]"; fmt.Sprint(app) != want {
		t.Errorf("app1's timeline: %v, want %s", app, want)
	}
	// pal explain on day 4, as the command line folds the log up to it:
	// alice owns app1, bob co-owns it and wins; on day 7 carol owns it.
	upTo := func(at time.Time) *attribution.Engine {
		ordered, _ := fold.Order(events)
		e := attribution.New(attribution.DefaultOptions())
		for _, ev := range ordered {
			if !ev.Time.After(at) {
				e.Apply(ev)
			}
		}
		return e
	}
	if x := upTo(day(4, 0)).Explain(tenant, "app1", day(4, 0)); x.Winner == nil || x.Winner.Account != "bob" || len(x.Candidates) != 2 || x.Candidates[0].Account != "alice" {
		t.Errorf("app1 explained on day 4: %+v", x)
	}
	if x := upTo(day(7, 0)).Explain(tenant, "app1", day(7, 0)); x.Winner == nil || x.Winner.Account != "bob" || x.Candidates[0].Account != "carol" || x.Candidates[0].Role != attribution.RoleOwner {
		t.Errorf("app1 explained on day 7: %+v", x)
	}
	var spans []string
	e.Azure().Timeline(func(_, _ string, h []azure.Interval) bool {
		for _, iv := range h {
			end := "open"
			if !iv.To.IsZero() {
				end = iv.To.Format(time.RFC3339)
			}
			spans = append(spans, fmt.Sprintf("%s %s-%s", iv.Partner, iv.From.Format(time.RFC3339), end))
		}
		return true
	})
	if want := "[100011 2026-01-01T12:00:00Z-2026-01-06T23:00:00Z 200011 2026-01-03T23:00:00Z-open]"; fmt.Sprint(spans) != want {
		t.Errorf("the timeline built from the snapshots: %v, want %s", spans, want)
	}
	x, err := e.Azure().Explain(tenant, "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", day(4, 0))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, a := range x.Assignments {
		seen = append(seen, a.Assignment+" "+a.Role)
	}
	if fmt.Sprint(seen) != "[a-1 Contributor b-1 Contributor c-1 Reader]" || len(x.Credited) != 2 {
		t.Errorf("explain on day 4: %v, credited %v", seen, x.Credited)
	}
}

// TestPseudonymsKeepDistinctCounts imports random app launches, their
// users written in random case, with and without a key: the pseudonyms
// count as many users as the names do, in every resource, and no name
// is left in the events.
func TestPseudonymsKeepDistinctCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 13))
	for round := 0; round < 50; round++ {
		var lines []string
		names := map[string]map[string]bool{} // app → lower-case users
		for i := 0; i < 1+rng.IntN(200); i++ {
			app := fmt.Sprintf("app-%d", rng.IntN(3))
			user := []byte(fmt.Sprintf("user%d@contoso.example", rng.IntN(40)))
			for j := range user {
				if rng.IntN(3) == 0 {
					user[j] = byte(unicode.ToUpper(rune(user[j])))
				}
			}
			if names[app] == nil {
				names[app] = map[string]bool{}
			}
			names[app][strings.ToLower(string(user))] = true
			lines = append(lines, fmt.Sprintf(`{"Id":"r%d-%d","CreationTime":"2026-01-%02dT10:00:00","Operation":"LaunchPowerApp","OrganizationId":"contoso","UserId":%q,"PropertyCollection":[{"Name":"powerplatform.analytics.resource.power_app.id","Value":%q}]}`,
				round, i, 1+rng.IntN(28), user, app))
		}
		key := make([]byte, 32)
		for i := range key {
			key[i] = byte(rng.IntN(256))
		}
		res, err := imports.Run("audit", []imports.File{{Name: "audit.ndjson", R: strings.NewReader(strings.Join(lines, "\n"))}}, imports.Options{UserKey: key})
		if err != nil || len(res.Problems) > 0 {
			t.Fatal(err, res.Problems)
		}
		got := map[string]map[string]bool{}
		for _, ev := range res.Events {
			if strings.Contains(ev.User, "@") || strings.Contains(ev.ID, "user") {
				t.Fatalf("a user name is left in %s", ev.AppendJSON(nil))
			}
			if got[ev.Resource] == nil {
				got[ev.Resource] = map[string]bool{}
			}
			got[ev.Resource][ev.User] = true
		}
		for app, users := range names {
			if len(got[app]) != len(users) {
				t.Fatalf("round %d: %s has %d users and %d pseudonyms", round, app, len(users), len(got[app]))
			}
		}
	}
}

// TestChangelogThenSnapshot imports a changelog, then the snapshot that
// lists what it granted under the assignment's own name: the two are the
// same assignment, so the snapshot adds and removes nothing.
func TestChangelogThenSnapshot(t *testing.T) {
	const tenant = "contoso-tenant-id"
	known := foldFile(t, "../../testdata/imports/azure-roles/known.ndjson")
	f, err := os.Open("../../testdata/imports/azure-roles/changelogs.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	changes, err := imports.Run("azure-roles", []imports.File{{Name: "changelogs.json", R: f}}, imports.Options{Tenant: tenant, Known: imports.Known(known)})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range changes.Events {
		if res := known.Apply(ev); res.Outcome == attribution.Refused {
			t.Fatalf("%s refused: %v", ev.AppendJSON(nil), res.Refusal)
		}
	}
	// The snapshot a day later: bob's AcrPull under its own name.
	snapshot := `[{"name":"5d6e7f80-0000-4000-8000-0000000000ac","principalId":"9a8b7c6d-0000-4000-8000-000000000b0b","principalType":"User",
"roleDefinitionId":"/subscriptions/7d1c2a4e-0000-4000-8000-000000000001/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d",
"roleDefinitionName":"AcrPull","scope":"/subscriptions/7d1c2a4e-0000-4000-8000-000000000001/resourceGroups/build/providers/Microsoft.ContainerRegistry/registries/contosoacr",
"createdOn":"2026-01-07T10:00:00Z"}]`
	res, err := imports.Run("azure-roles", []imports.File{{Name: "day10.json", R: strings.NewReader(snapshot)}},
		imports.Options{Tenant: tenant, Known: imports.Known(known), ObservedAt: time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)})
	if err != nil || len(res.Problems) > 0 {
		t.Fatal(err, res.Problems)
	}
	for _, ev := range res.Events {
		t.Errorf("the snapshot after the changelog adds %s", ev.AppendJSON(nil))
	}
	// alice's Contributor, revoked on the 9th: a snapshot of the 6th,
	// imported late, lists it and not bob's AcrPull of the 7th, and adds
	// nothing; one of the 10th that still lists it contradicts the log
	// (and, without bob's AcrPull, removes it).
	alice := `[{"name":"0b7a1f44-2d9c-4f5e-9a1b-3c4d5e6f7a80","principalId":"9a8b7c6d-0000-4000-8000-00000000a11c","principalType":"User",
"roleDefinitionName":"Contributor","scope":"/subscriptions/7d1c2a4e-0000-4000-8000-000000000001","createdOn":"2026-01-05T09:12:44Z"}]`
	for _, c := range []struct{ day, events, problems int }{{6, 0, 0}, {10, 1, 1}} {
		res, err := imports.Run("azure-roles", []imports.File{{Name: "alice.json", R: strings.NewReader(alice)}},
			imports.Options{Tenant: tenant, Known: imports.Known(known), ObservedAt: time.Date(2026, 1, c.day, 0, 0, 0, 0, time.UTC)})
		if err != nil || len(res.Events) != c.events || len(res.Problems) != c.problems {
			t.Errorf("a snapshot of day %d after the changelog: %v, events %d, problems %v", c.day, err, len(res.Events), res.Problems)
		}
	}
}

// TestBuiltinRolesCoverTheNamedEligibleRoles checks the table of built-in
// roles: GUIDs as Azure writes them, and every eligible role SPEC §9.3
// names known by its GUID, so that a row without a role name still earns.
func TestBuiltinRolesCoverTheNamedEligibleRoles(t *testing.T) {
	named := map[string]bool{}
	for guid, name := range imports.BuiltinRoles() {
		if len(guid) != 36 || strings.ToLower(guid) != guid || strings.Count(guid, "-") != 4 {
			t.Errorf("%s: %q is not a lower-case GUID", name, guid)
		}
		if named[name] {
			t.Errorf("%s has two GUIDs", name)
		}
		named[name] = true
	}
	for _, r := range []string{"Owner", "Contributor", "User Access Administrator", "Support Request Contributor", "Security Admin",
		"AcrPull", "AcrPush", "Virtual Machine Administrator Login", "Virtual Machine User Login", "Reader and Data Access"} {
		if !named[r] {
			t.Errorf("the eligible role %s has no GUID", r)
		}
		if !azure.DefaultRoles().Eligible(r) {
			t.Errorf("%s is not eligible by default", r)
		}
	}
}

// TestAuditResolvesOnlyUnambiguousNames resolves a permission's recipient
// through the names the log gives its accounts: a name two accounts share
// (in any case) names neither, and a deleted account is no one.
func TestAuditResolvesOnlyUnambiguousNames(t *testing.T) {
	known := foldFile(t, "../../testdata/imports/audit/known.ndjson",
		`{"type":"account.created","time":"2025-12-01T00:00:00Z","tenant":"contoso-tenant-id","account":"dave-1","kind":"user","name":"dave@contoso.example"}`,
		`{"type":"account.created","time":"2025-12-01T00:00:00Z","tenant":"contoso-tenant-id","account":"dave-2","kind":"user","name":"Dave@Contoso.example"}`,
		`{"type":"account.created","time":"2025-12-01T00:00:00Z","tenant":"contoso-tenant-id","account":"erin-1","kind":"user","name":"erin@contoso.example"}`,
		`{"type":"account.deleted","time":"2025-12-02T00:00:00Z","tenant":"contoso-tenant-id","account":"erin-1"}`)
	edit := func(upn string) string {
		return fmt.Sprintf(`{"Id":"p-%s","CreationTime":"2026-01-08T12:00:00","Operation":"PutPermissions","OrganizationId":"contoso-tenant-id","Workload":"MicrosoftFlow","FlowDetailsUrl":"https://make.powerautomate.com/environments/e/flows/f0e1d2c3-0000-4000-8000-000000000002/details","RecipientUPN":%q,"SharingPermission":3}`, upn, upn)
	}
	// And carol on a flow the log does not know.
	unknownFlow := strings.ReplaceAll(edit("carol@contoso.example"), "f0e1d2c3-0000-4000-8000-000000000002", "f0e1d2c3-0000-4000-8000-000000000099")
	res, err := imports.Run("audit", []imports.File{{Name: "audit.ndjson", R: strings.NewReader(edit("DAVE@contoso.example") + "\n" + edit("erin@contoso.example") + "\n" + edit("CAROL@contoso.example") + "\n" + unknownFlow)}},
		imports.Options{Known: imports.Known(known)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || res.Events[0].Account != "9a8b7c6d-0000-4000-8000-00000000ca01" || len(res.Problems) != 3 || !strings.Contains(res.Problems[2].Reason, "which the log does not know") {
		t.Errorf("events %d (%v), problems %v: want carol made co-owner, dave and erin unresolved, the unknown flow reported", len(res.Events), res.Events, res.Problems)
	}
}

// TestAuditInAnyOrder imports the audit fixture's rows shuffled: an
// export's order is the search's, not time's, and the same records give
// the same events.
func TestAuditInAnyOrder(t *testing.T) {
	data, err := os.ReadFile("../../testdata/imports/audit/purview.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\r\n"), "\r\n")
	importRows := func(rows []string) []string {
		known := foldFile(t, "../../testdata/imports/audit/known.ndjson")
		text := lines[0] + "\r\n" + strings.Join(rows, "\r\n") + "\r\n"
		res, err := imports.Run("audit", []imports.File{{Name: "purview.csv", R: strings.NewReader(text)}}, imports.Options{Known: imports.Known(known)})
		if err != nil {
			t.Fatal(err)
		}
		out := importedLines(res)
		slices.Sort(out)
		return out
	}
	want := importRows(lines[1:])
	rng := rand.New(rand.NewPCG(5, 8))
	for round := 0; round < 30; round++ {
		rows := slices.Clone(lines[1:])
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		if got := importRows(rows); !slices.Equal(got, want) {
			t.Fatalf("shuffled rows import\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestAFileOfAnotherShapeIsOneError gives each source the fixture of
// another: one error, naming the source the file looks like, instead of a
// problem on every row.
func TestAFileOfAnotherShapeIsOneError(t *testing.T) {
	for _, c := range []struct{ format, file, like string }{
		{"azure-roles", "azure-costs/ea.csv", "it looks like azure-costs: pal import azure-costs ea.csv"},
		{"audit", "powerapps/cmdlets.json", "it looks like powerapps"},
		{"groups", "audit/purview.csv", "it looks like audit"},
		{"links", "users/users.json", "it looks like groups or users"},
		// REST bodies say their type: a PIM list has a role assignment's
		// fields, and is still no role assignment list.
		{"azure-roles", "azure-pim/instances.json", "which pal import azure-pim reads"},
		{"links", "azure-roles/rest-pages.json", "Microsoft.Authorization/roleAssignments, which pal import azure-roles reads"},
		// A REST object no source reads is said so, not taken for the
		// several its id and properties look like.
		{"azure-roles", "other/rest-resourcegroups.json", "its records are Microsoft.Resources/resourceGroups objects, which pal import does not read"},
	} {
		f, err := os.Open(filepath.Join("../../testdata/imports", c.file))
		if err != nil {
			t.Fatal(err)
		}
		res, err := imports.Run(c.format, []imports.File{{Name: filepath.Base(c.file), R: f}}, imports.Options{Tenant: "t", Group: "g"})
		f.Close()
		if err == nil || !strings.Contains(err.Error(), "is no "+c.format+" export") || !strings.Contains(err.Error(), c.like) || len(res.Problems) > 0 {
			t.Errorf("%s as %s: %v, %d problems", c.file, c.format, err, len(res.Problems))
		}
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestAuditStreams: an audit's uses are handed on as they are read, not
// held to the end, and an error handing one on ends the import there —
// a broken pipe does not read on through a large export.
func TestAuditStreams(t *testing.T) {
	var csv strings.Builder
	csv.WriteString("RecordId,CreationDate,Operation,UserId,AuditData\n")
	for i := range 40000 {
		data := fmt.Sprintf(`{"Id":"r-%d","CreationTime":"2026-01-05T09:00:00","Operation":"LaunchPowerApp","OrganizationId":"contoso","UserId":"user%d@contoso.example","PropertyCollection":[{"Name":"powerplatform.analytics.resource.power_app.id","Value":"app-%d"}]}`, i, i%500, i%30)
		fmt.Fprintf(&csv, "r-%d,2026-01-05T09:00:00Z,LaunchPowerApp,user%d@contoso.example,\"%s\"\n", i, i%500, strings.ReplaceAll(data, `"`, `""`))
	}
	text := csv.String()
	in := &countingReader{r: strings.NewReader(text)}
	stop := errors.New("the reader went away")
	emitted := 0
	_, err := imports.RunTo("audit", []imports.File{{Name: "audit.csv", R: in}}, imports.Options{}, func(*event.Event) error {
		emitted++
		return stop
	})
	if !errors.Is(err, stop) || emitted != 1 {
		t.Fatalf("RunTo: %v after %d events, want the emit's error after the first", err, emitted)
	}
	if in.n > len(text)/4 {
		t.Errorf("read %d of %d bytes before stopping: the uses were held, not handed on", in.n, len(text))
	}
	// Handed on to the end, every row is a use.
	all := 0
	if _, err := imports.RunTo("audit", []imports.File{{Name: "audit.csv", R: strings.NewReader(text)}}, imports.Options{}, func(*event.Event) error { all++; return nil }); err != nil || all != 40000 {
		t.Errorf("the whole export: %d uses, %v", all, err)
	}
}

// TestSnapshotOfAnAssignmentEndedByItsPrincipal: an assignment ends when
// its principal is deleted. A snapshot observed before the deletion that
// lists it adds nothing; one observed after contradicts the log.
func TestSnapshotOfAnAssignmentEndedByItsPrincipal(t *testing.T) {
	known := foldLog(t, `{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"user"}
{"type":"azure.role_assigned","time":"2026-01-01T00:00:00Z","tenant":"contoso","assignment":"a-1","principal":"alice","role":"Contributor","scope":"/subscriptions/s1"}
{"type":"account.deleted","time":"2026-01-05T00:00:00Z","tenant":"contoso","account":"alice"}`)
	row := `[{"name":"a-1","principalId":"alice","principalType":"User","roleDefinitionName":"Contributor","scope":"/subscriptions/s1","createdOn":"2026-01-01T00:00:00Z"}]`
	for _, c := range []struct{ day, problems int }{{3, 0}, {6, 1}} {
		res, err := imports.Run("azure-roles", []imports.File{{Name: "roles.json", R: strings.NewReader(row)}},
			imports.Options{Tenant: "contoso", Known: imports.Known(known), ObservedAt: time.Date(2026, 1, c.day, 0, 0, 0, 0, time.UTC)})
		if err != nil || len(res.Events) != 0 || len(res.Problems) != c.problems {
			t.Errorf("observed on day %d: %v, events %v, problems %v", c.day, err, len(res.Events), res.Problems)
		}
	}
}

// TestProgress: a long import tells a terminal how it goes, and ends on
// the count of every row read and reported.
func TestProgress(t *testing.T) {
	var text strings.Builder
	text.WriteString("Date,ResourceId,CostInBillingCurrency\n")
	for i := range 10000 {
		fmt.Fprintf(&text, "2026-01-05,/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-%d,1.5\n", i)
	}
	text.WriteString("2026-01-05,,3\n2026-01-05,vm-x,3\n")
	var progress bytes.Buffer
	if _, err := imports.Run("azure-costs", []imports.File{{Name: "costs.csv", R: strings.NewReader(text.String())}},
		imports.Options{Tenant: "contoso", Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	last := progress.String()[strings.LastIndexByte(strings.TrimSuffix(progress.String(), "\n"), '\r')+1:]
	if !strings.HasPrefix(last, "pal import azure-costs: 10002 rows read, ") || !strings.HasSuffix(last, " rows/s, 2 reported\n") {
		t.Errorf("the last progress line is %q", last)
	}
}

// TestATenantTheExportContradicts: where an export names its tenant, a
// --tenant naming another is one error naming both, whatever the source;
// one that agrees (in any case) is the tenant, as --tenant spells it.
func TestATenantTheExportContradicts(t *testing.T) {
	for _, c := range []struct{ format, file, said string }{
		{"links", "links/rest.json", "contoso-tenant-id"},
		{"management-groups", "management-groups/rest-tree.json", "contoso-tenant-id"},
		// GET managementGroups/{id}/subscriptions names it properties.tenant.
		{"management-groups", "management-groups/rest-group-subscriptions.json", "contoso-tenant-id"},
		{"audit", "audit/search-unifiedauditlog.csv", "contoso-tenant-id"},
	} {
		open := func() []imports.File {
			f, err := os.Open(filepath.Join("../../testdata/imports", c.file))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return []imports.File{{Name: filepath.Base(c.file), R: f}}
		}
		_, err := imports.Run(c.format, open(), imports.Options{Tenant: "fabrikam-tenant-id"})
		if err == nil || !strings.Contains(err.Error(), c.said) || !strings.Contains(err.Error(), "fabrikam-tenant-id") {
			t.Errorf("%s with another --tenant: %v", c.file, err)
		}
		res, err := imports.Run(c.format, open(), imports.Options{Tenant: strings.ToUpper(c.said)})
		if err != nil || len(res.Events) == 0 {
			t.Fatalf("%s with its own --tenant: %v", c.file, err)
		}
		for _, ev := range res.Events {
			if ev.Tenant != strings.ToUpper(c.said) {
				t.Errorf("%s: %s", c.file, ev.AppendJSON(nil))
			}
		}
	}
}

// TestTeamsEnvironmentsLeftOut: a Dataverse for Teams environment (its
// EnvironmentType, from the API's environmentSku, "Teams") has no type in
// the log: it is left out with its apps, in one line that says why, and
// the snapshot's other environments and apps are imported.
func TestTeamsEnvironmentsLeftOut(t *testing.T) {
	envs := `[{"EnvironmentName": "Default-t1", "DisplayName": "Contoso (default)", "IsDefault": true, "CreatedTime": "2024-02-15T08:02:36Z", "EnvironmentType": "Default"},
{"EnvironmentName": "teams-env", "DisplayName": "Sales team", "IsDefault": false, "CreatedTime": "2025-04-10T13:44:02Z", "EnvironmentType": "Teams"}]`
	apps := `[{"AppName": "a1", "DisplayName": "Visits", "EnvironmentName": "teams-env", "CreatedTime": "2025-04-11T09:00:00Z", "Owner": {"id": "u1"}},
{"AppName": "a2", "DisplayName": "Leave", "EnvironmentName": "teams-env", "CreatedTime": "2025-04-11T09:00:00Z", "Owner": {"id": "u1"}},
{"AppName": "a3", "DisplayName": "Expenses", "EnvironmentName": "Default-t1", "CreatedTime": "2025-04-11T09:00:00Z", "Owner": {"id": "u1"}}]`
	res, err := imports.Run("powerapps", []imports.File{{Name: "envs.json", R: strings.NewReader(envs)}, {Name: "apps.json", R: strings.NewReader(apps)}}, imports.Options{Tenant: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for _, ev := range res.Events {
		made = append(made, ev.Type+" "+ev.Environment+ev.Resource)
	}
	want := []string{"environment.created Default-t1", "account.created ", "resource.created Default-t1a3"}
	if !slices.Equal(made, want) || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].String(), "teams-env (Sales team) is a Dataverse for Teams environment: left out, with 2 apps and flows") {
		t.Errorf("a snapshot with a Teams environment: %q, problems %v; want %q and one line saying why", made, res.Problems, want)
	}
}

// TestPowerShellCSVs: Windows PowerShell 5.1's Export-Csv writes a nested
// object as "@{id=…; displayName=…}", and PowerShell 7's writes dates in
// the machine's locale (02/05/2025 is the 2nd of May in en-GB, which its
// 20/05/2025 says): the owners are read from the text, and each file's
// dates the way they go.
func TestPowerShellCSVs(t *testing.T) {
	envs := `"EnvironmentName","DisplayName","IsDefault","CreatedTime","CreatedBy","EnvironmentType"
"e1","Contoso Production","False","02/05/2025 09:15:27","@{id=u1; displayName=Megan Bowen; type=User}","Production"
"e2","Contoso Sandbox","False","20/05/2025 16:02:11","@{id=u1; displayName=Megan Bowen; type=User}","Sandbox"
`
	apps := `#TYPE System.Management.Automation.PSCustomObject
"AppName","DisplayName","CreatedTime","Owner","EnvironmentName","Internal"
"a1","Expenses","2025-09-20T04:05:03.1234567Z","@{id=u1; displayName=Megan Bowen; email=meganb@contoso.example; type=User}","e1","@{name=a1; id=/providers/Microsoft.PowerApps/apps/a1; properties=@{displayName=Expenses; owner=@{id=u1}}}"
`
	flows := `#TYPE System.Management.Automation.PSCustomObject
"FlowName","Enabled","DisplayName","CreatedTime","CreatedBy","EnvironmentName"
"f1","True","Invoice approvals","2025-03-04T10:12:45Z","@{tenantId=t1; objectId=u2; userId=u2; userType=ActiveDirectory}","e1"
`
	res, err := imports.Run("powerapps", []imports.File{{Name: "envs.csv", R: strings.NewReader(envs)}, {Name: "apps.csv", R: strings.NewReader(apps)},
		{Name: "flows.csv", R: strings.NewReader(flows)}}, imports.Options{Tenant: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for _, ev := range res.Events {
		made = append(made, ev.Time.Format("2006-01-02")+" "+ev.Type+" "+ev.Environment+ev.Resource+" "+ev.Owner)
	}
	slices.Sort(made)
	want := []string{"2025-03-04 account.created  ", "2025-03-04 resource.created e1f1 u2", "2025-05-02 environment.created e1 ", "2025-05-20 environment.created e2 ",
		"2025-09-20 account.created  ", "2025-09-20 resource.created e1a1 u1"}
	if !slices.Equal(made, want) || len(res.Problems) > 0 {
		t.Errorf("PowerShell's CSVs: %q, problems %v; want %q", made, res.Problems, want)
	}
}

// TestFlowOwnerRoles: Get-AdminFlowOwnerRole lists a flow's owner and its
// co-owners (CanEdit): with the flow of Get-AdminFlow, each co-owner the
// log lacks is added and each it holds that the listing lacks removed; a
// group's share is said; a listing of a flow the snapshot lacks is said.
func TestFlowOwnerRoles(t *testing.T) {
	envs := `[{"EnvironmentName": "e1", "CreatedTime": "2024-02-15T08:02:36Z", "EnvironmentType": "Production"}]`
	flows := `[{"FlowName": "f1", "DisplayName": "Invoice approvals", "EnvironmentName": "e1", "CreatedTime": "2025-03-04T10:12:45Z", "CreatedBy": {"objectId": "u1"}}]`
	roles := `[{"RoleId": "/providers/Microsoft.ProcessSimple/environments/e1/flows/f1/permissions/u1", "RoleName": "u1", "PrincipalObjectId": "u1", "PrincipalType": "User", "RoleType": "Owner", "FlowName": "f1", "EnvironmentName": "e1"},
{"RoleId": "…/permissions/u2", "RoleName": "u2", "PrincipalObjectId": "u2", "PrincipalType": "User", "RoleType": "CanEdit", "FlowName": "f1", "EnvironmentName": "e1"},
{"RoleId": "…/permissions/g1", "RoleName": "g1", "PrincipalObjectId": "g1", "PrincipalType": "Group", "RoleType": "CanEdit", "FlowName": "f1", "EnvironmentName": "e1"},
{"RoleId": "…/permissions/u3", "RoleName": "u3", "PrincipalObjectId": "u3", "PrincipalType": "User", "RoleType": "CanEdit", "FlowName": "f9", "EnvironmentName": "e1"}]`
	res, err := imports.Run("powerapps", []imports.File{{Name: "envs.json", R: strings.NewReader(envs)}, {Name: "flows.json", R: strings.NewReader(flows)},
		{Name: "roles.json", R: strings.NewReader(roles)}}, imports.Options{Tenant: "t1", ObservedAt: time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for _, ev := range res.Events {
		made = append(made, ev.Type+" "+ev.Resource+" "+ev.Account+ev.Owner)
	}
	var said []string
	for _, p := range res.Problems {
		said = append(said, p.Reason)
	}
	want := []string{"environment.created  ", "account.created  u1", "resource.created f1 u1", "account.created  u2", "resource.coowner_added f1 u2"}
	if !slices.Equal(made, want) || len(said) != 2 || !strings.Contains(said[0], `flow f1 is shared as CanEdit with a group (PrincipalObjectId g1)`) ||
		!strings.Contains(said[1], "role assignment on flow f9, which the snapshot does not list: import Get-AdminFlow too") {
		t.Errorf("a flow's owner roles: %q, problems %q; want %q and the group's share and f9 said", made, said, want)
	}
}

// TestPowerPlatformAPIListsAreTheCmdlets: the admin API's lists, saved as
// they come (pages concatenated), import as the cmdlets' export of the
// same state does: the same events, with the same ids.
func TestPowerPlatformAPIListsAreTheCmdlets(t *testing.T) {
	dir := "../collect/testdata"
	run := func(paths ...string) []string {
		var files []imports.File
		for _, n := range paths {
			data, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, imports.File{Name: n, R: bytes.NewReader(data)})
		}
		res, err := imports.Run("powerapps", files, imports.Options{Tenant: "contoso-tenant-id", ObservedAt: time.Date(2026, 1, 10, 6, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		return importedLines(res)
	}
	// Two lists in one file, as a script following nextLink appends them.
	flows, err := os.ReadFile(filepath.Join(dir, "pp-flows-production.json"))
	if err != nil {
		t.Fatal(err)
	}
	apps, _ := os.ReadFile(filepath.Join(dir, "pp-apps-production.json"))
	joined := filepath.Join(t.TempDir(), "apps-and-flows.json")
	// An environment of no apps answers a page of none.
	os.WriteFile(joined, slices.Concat([]byte(`{"value": []}`+"\n"), apps, []byte("\n"), flows), 0o644)
	in := func(n string) string { return filepath.Join(dir, n) }
	got := run(in("pp-environments.json"), joined, in("pp-apps-default.json"),
		in("pp-permissions-expenses.json"), in("pp-permissions-timesheets.json"), in("pp-permissions-helpdesk.json"))
	want := run(in("powerapps-cmdlets.json"))
	if len(want) == 0 {
		t.Fatal("the cmdlets' export imports nothing")
	}
	if !slices.Equal(got, want) {
		t.Errorf("the API's lists import as\n%s\nthe cmdlets' export as\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// importedLines lists an import's events as their log lines, then its
// problems' reasons, each after "! ".
func importedLines(res imports.Import) []string {
	var out []string
	for _, ev := range res.Events {
		out = append(out, string(ev.AppendJSON(nil)))
	}
	for _, p := range res.Problems {
		out = append(out, "! "+p.Reason)
	}
	return out
}

// TestNothingBeforeItsAccount: an event an export dates before the log
// knows its account is dated when the log does, and an account this
// snapshot makes is created with the earliest resource it owns: every
// event imported applies.
func TestNothingBeforeItsAccount(t *testing.T) {
	known := foldLog(t, `{"type":"account.created","time":"2023-11-14T00:00:00Z","tenant":"t1","account":"old","kind":"user"}`)
	snapshot := `[{"EnvironmentName": "env-1", "EnvironmentType": "Production", "CreatedTime": "2020-01-01T00:00:00Z"},
{"AppName": "a2", "EnvironmentName": "env-1", "CreatedTime": "2025-03-01T00:00:00Z", "Owner": {"id": "new"}},
{"FlowName": "a1", "EnvironmentName": "env-1", "CreatedTime": "2025-06-01T00:00:00Z", "CreatedBy": {"objectId": "new"}},
{"AppName": "a3", "EnvironmentName": "env-1", "CreatedTime": "2022-03-01T00:00:00Z", "Owner": {"id": "old"}}]`
	links := `[{"objectId": "old", "tenantId": "t1", "partnerId": "1234567", "state": "Active", "updatedTime": "2020-01-01T00:00:00Z"}]`
	var lines []string
	for _, c := range []struct{ format, file string }{{"powerapps", snapshot}, {"links", links}} {
		res, err := imports.Run(c.format, []imports.File{{Name: c.format + ".json", R: strings.NewReader(c.file)}}, imports.Options{Tenant: "t1", Known: imports.Known(known)})
		if err != nil || len(res.Problems) > 0 {
			t.Fatalf("%s: %v %v", c.format, err, res.Problems)
		}
		lines = append(lines, importedLines(res)...)
	}
	e := foldLog(t, `{"type":"partner.registered","time":"2019-01-01T00:00:00Z","org":"1234560","locations":["1234567"]}
{"type":"account.created","time":"2023-11-14T00:00:00Z","tenant":"t1","account":"old","kind":"user"}
`+strings.Join(lines, "\n"))
	if at, _ := e.AccountCreated("t1", "new"); !at.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the account new is created at %s, want with its earliest app", at)
	}
}
