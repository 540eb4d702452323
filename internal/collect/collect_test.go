package collect

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/collect/collecttest"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/imports"
)

// The test world (collecttest.FirstDay).
const (
	contoso  = collecttest.Contoso
	fabrikam = collecttest.Fabrikam
	sub1     = collecttest.Sub1
	sub2     = collecttest.Sub2
	cloudOps = collecttest.CloudOps
	fabOps   = collecttest.FabOps
	platform = "/providers/Microsoft.Management/managementGroups/contoso-platform"

	entitiesPath = collecttest.EntitiesPath
	sub1Path     = collecttest.Sub1Path
	sub2Path     = collecttest.Sub2Path
	assignments  = collecttest.Assignments
	definitions  = collecttest.Definitions
	eligibility  = collecttest.Eligibility
	instances    = collecttest.Instances
	requests     = collecttest.Requests
	delegations  = collecttest.Delegations
)

func membersPath(group string) string { return collecttest.MembersPath(group) }

// day1 is when the first run observes the world.
var day1 = time.Date(2026, 1, 10, 6, 0, 0, 0, time.UTC)

// seed is the log before any run: the partner's organisation.
const seed = `{"type":"partner.registered","time":"2025-01-01T00:00:00Z","org":"1000001","name":"Fabrikam Consulting","locations":["1000011","1000012"]}` + "\n"

// exports writes a day's state as an operator exports it, in dir: the
// REST bodies az rest writes, and the costs of the days the cost query
// asks for as a Cost Management export (EA columns); and returns the
// imports of them, in the order pal collect reads its sources.
func exports(t *testing.T, st *collecttest.World, dir string, at time.Time) []step {
	t.Helper()
	n := 0
	file := func(recs ...[]json.RawMessage) string {
		n++
		name := filepath.Join(dir, fmt.Sprintf("export-%d.json", n))
		body, _ := json.MarshalIndent(map[string]any{"value": nonNil(slices.Concat(recs...))}, "", " ")
		if err := os.WriteFile(name, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	one := func(rec json.RawMessage) string {
		n++
		name := filepath.Join(dir, fmt.Sprintf("export-%d.json", n))
		os.WriteFile(name, rec, 0o644)
		return name
	}
	csvName := filepath.Join(dir, "costs.csv")
	var b strings.Builder
	b.WriteString("SubscriptionId,Date,CostInBillingCurrency,BillingCurrencyCode,ResourceId,PublisherType,ChargeType,PricingModel\n")
	from := at.Truncate(24*time.Hour).AddDate(0, 0, -7)
	for _, sub := range []string{sub1, sub2} {
		for _, r := range st.Costs[sub] {
			day, _ := time.Parse(time.DateOnly, r.Date)
			if day.Before(from) || day.After(at) {
				continue
			}
			fmt.Fprintf(&b, "%s,%s,%s,EUR,%s,%s,Usage,%s\n", sub, day.Format("01/02/2006"), r.Cost, r.ResourceID, r.PublisherType, r.PricingModel)
		}
	}
	os.WriteFile(csvName, []byte(b.String()), 0o644)
	l := st.Lists
	steps := []step{
		{source: "management-groups", tenant: contoso, files: []string{file(l[entitiesPath])}},
		{source: "users", tenant: contoso, files: []string{file(st.Users[contoso])}},
		{source: "users", tenant: fabrikam, files: []string{file(st.Users[fabrikam])}},
		{source: "azure-roles", tenant: contoso, files: []string{file(l[sub1Path+definitions]), file(l[sub1Path+assignments], l[sub2Path+assignments])}},
		{source: "azure-pim", tenant: contoso, files: []string{file(l[sub1Path+eligibility], l[sub1Path+instances], l[sub1Path+requests])}},
		{source: "groups", tenant: contoso, group: cloudOps, files: []string{file(l[membersPath(cloudOps)])}},
		{source: "groups", tenant: fabrikam, group: fabOps, files: []string{file(l[membersPath(fabOps)])}},
		{source: "lighthouse", tenant: contoso, files: []string{file(l[sub1Path+delegations])}},
	}
	for _, tenant := range []string{contoso, fabrikam} {
		if st.Links[tenant] != nil {
			steps = append(steps, step{source: "links", tenant: tenant, files: []string{one(st.Links[tenant])}})
		}
	}
	steps = append(steps, step{source: "azure-costs", tenant: contoso, files: []string{csvName}})
	cmdlets, _ := json.MarshalIndent(nonNil(st.Cmdlets), "", " ")
	n++
	apps := filepath.Join(dir, fmt.Sprintf("export-%d.json", n))
	os.WriteFile(apps, cmdlets, 0o644)
	return append(steps,
		step{source: "powerapps", tenant: contoso, files: []string{apps}},
		step{source: "audit", tenant: contoso, files: []string{purviewExport(t, st, dir, at)}})
}

// purviewExport writes, as a Microsoft Purview audit search exports them,
// the audit records of Contoso that the Management Activity API makes
// available in the days the collection reads (audit_days, 2, before at):
// one a row, its AuditData the record.
func purviewExport(t *testing.T, st *collecttest.World, dir string, at time.Time) string {
	t.Helper()
	name := filepath.Join(dir, "audit.csv")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData", "AssociatedAdminUnits", "AssociatedAdminUnitsNames"})
	for _, c := range st.Audit[contoso] {
		if c.Created.Before(at.Add(-2*24*time.Hour)) || !c.Created.Before(at) {
			continue
		}
		for _, rec := range c.Records {
			var r struct {
				ID, CreationTime, Operation, UserID string
				RecordType                          int
			}
			json.Unmarshal(rec, &r)
			w.Write([]string{r.ID, r.CreationTime + ".0000000Z", fmt.Sprint(r.RecordType), r.Operation, r.UserID, string(rec), "", ""})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return name
}

func nonNil(s []json.RawMessage) []json.RawMessage {
	if s == nil {
		return []json.RawMessage{}
	}
	return s
}

// world serves the test world's first day.
func world(t *testing.T) *collecttest.API {
	t.Helper()
	api := collecttest.New(t)
	collecttest.FirstDay(t, "testdata").Serve(api)
	return api
}

// worldConfig reads every source of Contoso (its subscriptions listed,
// its platform management group named, its Power Platform and audit) and
// Fabrikam's directory, group and link.
func worldConfig() Config {
	c := Config{Tenants: []Tenant{
		{Tenant: contoso, ManagementGroups: []string{"contoso-platform"}, Sources: slices.Clone(Sources)},
		{Tenant: fabrikam, Groups: []string{fabOps}, Sources: []string{"users", "groups", "links"}},
	}}
	if err := c.check(); err != nil {
		panic(err)
	}
	return c
}

// newCollector makes a collector of the test world, its clients pointed
// at the API, with test credentials.
func newCollector(t *testing.T, api *collecttest.API, cfg Config, creds *collecttest.Credentials) *Collector {
	t.Helper()
	c, err := New(cfg, Options{Credential: creds.For, Client: api.ClientOptions(), GraphEndpoint: api.GraphEndpoint(),
		PowerPlatformEndpoint: api.URL, OfficeEndpoint: api.URL, RetryDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// memory is a sink that keeps the log in memory.
type memory struct {
	mu     sync.Mutex
	log    []*event.Event
	writes int
	fail   error
}

func (m *memory) Write(_ context.Context, evs []*event.Event) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return "", m.fail
	}
	m.writes++
	m.log = append(m.log, evs...)
	return "", nil
}

func readLog(t *testing.T, ndjson string) []*event.Event {
	t.Helper()
	var out []*event.Event
	rd := event.NewReader(strings.NewReader(ndjson))
	for {
		ev, rf, err := rd.Next()
		if err != nil {
			break
		}
		if rf != nil {
			t.Fatalf("line %d refused: %v", rf.Line, rf)
		}
		out = append(out, ev)
	}
	return out
}

// lines writes events as the log's lines, sorted, so that two logs of the
// same events in another order compare equal.
func lines(evs []*event.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.AppendJSON(nil))
	}
	slices.Sort(out)
	return out
}

// step is one pal import of exported files.
type step struct {
	source, tenant, group string
	files                 []string
}

// importChain is what pal import writes, one import after another, each
// against the log so far (folded afresh, as pal import --log does), of
// the files an operator would have exported: the reference a collection
// must equal. An event whose id the log holds is not appended again.
func importChain(t *testing.T, log []*event.Event, at time.Time, steps []step) []*event.Event {
	t.Helper()
	ids := map[string]bool{}
	for _, ev := range log {
		ids[ev.ID] = true
	}
	for _, s := range steps {
		var files []imports.File
		for _, name := range s.files {
			f, err := os.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			files = append(files, imports.File{Name: name, R: f})
		}
		res, err := imports.Run(s.source, files, imports.Options{Tenant: s.tenant, ObservedAt: at, Known: imports.Known(fold.Events(attribution.DefaultOptions(), log)), Group: s.group})
		if err != nil {
			t.Fatalf("pal import %s %v: %v", s.source, s.files, err)
		}
		for _, ev := range res.Events {
			if !ids[ev.ID] {
				ids[ev.ID] = true
				log = append(log, ev)
			}
		}
	}
	return log
}

// exported are the first day's exports of the world, in the order pal
// collect reads its sources: the REST bodies az rest writes (the same
// records the API serves in pages), and the costs as a Cost Management
// export.
func exported() []step {
	td := func(names ...string) []string {
		for i, n := range names {
			names[i] = filepath.Join("testdata", n)
		}
		return names
	}
	return []step{
		{source: "management-groups", tenant: contoso, files: td("entities.json")},
		{source: "users", tenant: contoso, files: td("users-contoso.json")},
		{source: "users", tenant: fabrikam, files: td("users-fabrikam.json")},
		{source: "azure-roles", tenant: contoso, files: td("roledefinitions.json", "roleassignments-0001.json", "roleassignments-0002.json")},
		{source: "azure-pim", tenant: contoso, files: td("pim-eligibility.json", "pim-instances.json", "pim-requests.json")},
		{source: "groups", tenant: contoso, group: cloudOps, files: td("members-contoso-cloudops.json")},
		{source: "groups", tenant: fabrikam, group: fabOps, files: td("members-fabrikam-ops.json")},
		{source: "lighthouse", tenant: contoso, files: td("delegations-0001.json")},
		{source: "links", tenant: contoso, files: td("link-contoso.json")},
		{source: "links", tenant: fabrikam, files: td("link-fabrikam.json")},
		{source: "azure-costs", tenant: contoso, files: td("costs-export.csv")},
		{source: "powerapps", tenant: contoso, files: td("powerapps-cmdlets.json")},
	}
}

// TestCollectWritesWhatImportWrites runs a collection against the API
// and compares its log with pal import's of the same records exported:
// the same events, the same ids. The second run adds nothing.
func TestCollectWritesWhatImportWrites(t *testing.T) {
	api := world(t)
	creds := &collecttest.Credentials{}
	c := newCollector(t, api, worldConfig(), creds)
	sink := &memory{log: readLog(t, seed)}
	rep, err := c.Run(context.Background(), day1, sink.log, sink)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Failed() {
		t.Errorf("failed: %v", f)
	}
	audit := step{source: "audit", tenant: contoso, files: []string{purviewExport(t, collecttest.FirstDay(t, "testdata"), t.TempDir(), day1)}}
	want := importChain(t, readLog(t, seed), day1, append(exported(), audit))
	if diff := cmp.Diff(lines(want), lines(sink.log)); diff != "" {
		t.Errorf("the collected log differs from pal import's (-import +collect):\n%s", diff)
	}
	// The world's features are all there: a custom role named from its
	// definition, the root group's assignment at /, the Lighthouse
	// delegation's principal tenant, an activation, a marketplace cost.
	text := strings.Join(lines(sink.log), "\n")
	for _, s := range []string{
		`"role":"Contoso Deployment Operator"`,
		`"scope":"/","pim":"active"`,
		`"principal_tenant":"fabrikam-tenant-id"`,
		`"type":"azure.role_activated"`,
		`"meter":"marketplace"`,
		`"account":"f0000000-0000-4000-8000-0000000000a1","partner":"1000012"`,
		// Power Platform: the environments, an app with its co-owner, a
		// flow; the audit's uses (the unified schema's and the legacy),
		// and a flow shared with its co-owner.
		`"type":"environment.created","time":"2025-08-15T12:00:00Z","id":"imp-powerapps-`,
		`"type":"resource.coowner_added","time":"2026-01-10T06:00:00Z","id":"imp-powerapps-`,
		`"resource":"f0e1d2c3-0000-4000-8000-000000000005","kind":"flow","owner":"9a8b7c6d-0000-4000-8000-00000000ca01"`,
		`"type":"usage","time":"2026-01-08T09:00:00Z"`,
		`"resource":"a1b2c3d4-0000-4000-8000-000000000002","user":"bob_northwind.example#ext#@contoso.onmicrosoft.com"`,
		`"type":"resource.coowner_added","time":"2026-01-09T13:30:00Z"`,
	} {
		if !strings.Contains(text, s) {
			t.Errorf("the collected log has no %s", s)
		}
	}
	// The audit's content of before the days read is not read.
	if strings.Contains(text, `"time":"2026-01-07T09:00:00Z"`) {
		t.Errorf("the audit of before audit_days was read")
	}
	for _, r := range rep.Results {
		switch {
		case r.Source == "powerapps" && (r.Records != 3+3+2+6 || r.Pages < 8):
			t.Errorf("powerapps read %d records in %d pages, want 14 (3 environments, 3 apps, 2 flows, 6 permissions) in at least 8", r.Records, r.Pages)
		case r.Source == "audit" && (r.Records != 5 || r.Pages != 2):
			t.Errorf("audit read %d records in %d pages, want 5 in 2 content blobs", r.Records, r.Pages)
		case r.Source == "audit" && (len(r.Problems) != 1 || !strings.Contains(r.Problems[0].Reason, "ViewReport of 3a4b5c6d")):
			t.Errorf("audit reported %v, want the one use of a dataset the log does not know", r.Problems)
		}
	}
	// Paging: the role assignments of the first subscription (three)
	// came in two pages, and the cost query's answer in several.
	for _, r := range rep.Results {
		if r.Tenant == contoso && r.Source == "azure-roles" && (r.Records != 6 || r.Pages < 5) {
			t.Errorf("azure-roles read %d records in %d pages, want 6 (a definition, five assignments) in at least 5", r.Records, r.Pages)
		}
	}
	// A second run of the same world adds nothing.
	before := len(sink.log)
	rep, err = c.Run(context.Background(), day1.Add(time.Hour), sink.log, sink)
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Events(); n != 0 || len(sink.log) != before {
		t.Errorf("a second run wrote %d events:\n%s", n, strings.Join(lines(sink.log[before:]), "\n"))
	}
	if len(rep.Failed()) > 0 {
		t.Errorf("the second run failed: %v", rep.Failed())
	}
}

// set returns a record with some of its fields changed: path is a
// dot-separated path of object keys; a nil value deletes the field.
func set(t *testing.T, rec json.RawMessage, changes map[string]any) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec, &m); err != nil {
		t.Fatal(err)
	}
	for path, v := range changes {
		keys := strings.Split(path, ".")
		obj := m
		for _, k := range keys[:len(keys)-1] {
			obj = obj[k].(map[string]any)
		}
		if v == nil {
			delete(obj, keys[len(keys)-1])
		} else {
			obj[keys[len(keys)-1]] = v
		}
	}
	out, _ := json.Marshal(m)
	return out
}

// dropWhere returns records but those whose field is value.
func dropWhere(recs []json.RawMessage, field, value string) []json.RawMessage {
	return slices.DeleteFunc(slices.Clone(recs), func(r json.RawMessage) bool {
		var m map[string]any
		json.Unmarshal(r, &m)
		return m[field] == value
	})
}

// without returns records but those whose "id" (or "name") ends in id.
func without(recs []json.RawMessage, id string) []json.RawMessage {
	return slices.DeleteFunc(slices.Clone(recs), func(r json.RawMessage) bool {
		var x struct{ ID, Name string }
		json.Unmarshal(r, &x)
		return strings.HasSuffix(x.ID, id) || x.Name == id
	})
}

// TestSevenDays collects on seven days in which the APIs' state changes,
// and imports each day's exports of the same state: the two logs are the
// same, day after day, and each day's run writes only that day's changes.
func TestSevenDays(t *testing.T) {
	st := collecttest.FirstDay(t, "testdata")
	api := collecttest.New(t)
	c := newCollector(t, api, worldConfig(), &collecttest.Credentials{})
	collected := readLog(t, seed)
	imported := readLog(t, seed)
	sink := &memory{log: collected}
	member := func(kind, id, upn string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"@odata.type": "#microsoft.graph.%s", "id": %q, "userPrincipalName": %q, "displayName": "x"}`, kind, id, upn))
	}
	changes := []func(at time.Time){
		nil,
		// Alice's Contributor is removed; a new day's cost.
		func(at time.Time) {
			st.Lists[sub1Path+assignments] = without(st.Lists[sub1Path+assignments], "0b7a1f44-2d9c-4f5e-9a1b-3c4d5e6f7a80")
			st.Costs[sub1] = append(st.Costs[sub1], collecttest.CostRow{Date: "2026-01-10", ResourceID: sub1Path + "/resourceGroups/web/providers/Microsoft.Compute/virtualMachines/vm-web", PricingModel: "OnDemand", PublisherType: "Azure", Cost: "2.304"})
		},
		// Carol joins the group that holds Contributor at the root; the
		// service principal leaves it. Bob may no longer edit the
		// expenses app; carol launches the timesheets app.
		func(at time.Time) {
			path := collecttest.PermissionsPath(collecttest.ProductionEnv, collecttest.Expenses)
			st.Lists[path] = without(st.Lists[path], "9a8b7c6d-0000-4000-8000-00000000b0b0")
			st.Cmdlets = dropWhere(st.Cmdlets, "RoleName", "9a8b7c6d-0000-4000-8000-00000000b0b0")
			st.Audit[contoso] = append(st.Audit[contoso], collecttest.AuditContent{Created: at.Add(-3 * time.Hour), Records: []json.RawMessage{json.RawMessage(
				`{"CreationTime": "2026-01-12T02:00:00", "Id": "6a1f0c52-0000-4000-8000-0000000000d1", "Operation": "LaunchPowerApp", "OrganizationId": "contoso-tenant-id", "RecordType": 256, "Workload": "PowerPlatform", "UserId": "carol@contoso.example", "PropertyCollection": [{"Name": "powerplatform.analytics.resource.power_app.id", "Value": "` + collecttest.Timesheets + `"}, {"Name": "enduser.principal_name", "Value": "carol@contoso.example"}]}`)}})
			st.Lists[membersPath(cloudOps)] = []json.RawMessage{
				member("user", "9a8b7c6d-0000-4000-8000-00000000a11c", "alice_fabrikam.example#EXT#@contoso.onmicrosoft.com"),
				member("user", "9a8b7c6d-0000-4000-8000-00000000ca01", "carol@contoso.example"),
			}
		},
		// The sandbox subscription moves to the platform group; the cost
		// of the 10th is revised.
		func(at time.Time) {
			for i, e := range st.Lists[entitiesPath] {
				if strings.Contains(string(e), `"name": "`+sub2+`"`) || strings.Contains(string(e), `"name":"`+sub2+`"`) {
					st.Lists[entitiesPath][i] = set(t, e, map[string]any{"properties.parent": map[string]any{"id": platform}})
				}
			}
			st.Costs[sub1][len(st.Costs[sub1])-1].Cost = "2.5"
		},
		// Bob activates his eligibility again (the instance and the
		// request), and a new user arrives in Contoso's directory.
		func(at time.Time) {
			inst := st.Lists[sub1Path+instances][0]
			st.Lists[sub1Path+instances] = append(st.Lists[sub1Path+instances], set(t, inst, map[string]any{
				"name": "a2000000-0000-4000-8000-0000000000a2", "properties.startDateTime": "2026-01-13T10:00:00Z", "properties.endDateTime": "2026-01-13T12:00:00Z"}))
			req := st.Lists[sub1Path+requests][0]
			st.Lists[sub1Path+requests] = append(st.Lists[sub1Path+requests], set(t, req, map[string]any{
				"name": "b2000000-0000-4000-8000-0000000000b2", "properties.createdOn": "2026-01-13T10:00:00Z",
				"properties.scheduleInfo": map[string]any{"startDateTime": "2026-01-13T10:00:00Z", "expiration": map[string]any{"type": "AfterDuration", "duration": "PT2H"}}}))
			st.Users[contoso] = append(slices.Clone(st.Users[contoso]), json.RawMessage(`{"id": "9a8b7c6d-0000-4000-8000-00000000da7e", "userPrincipalName": "dave@contoso.example", "userType": "Member", "createdDateTime": "2026-01-13T16:00:00Z", "displayName": "Dave"}`))
		},
		// Fabrikam's delegation changes: its eligible authorization is
		// gone from the definition, changed at noon the day before. Carol
		// becomes the owner of the expenses app.
		func(at time.Time) {
			carol := map[string]any{"id": "9a8b7c6d-0000-4000-8000-00000000ca01", "displayName": "Carol", "email": "carol@contoso.example", "type": "User", "tenantId": contoso}
			apps := st.Lists[collecttest.AppsPath(collecttest.ProductionEnv)]
			apps[0] = set(t, apps[0], map[string]any{"properties.owner": carol})
			for i, c := range st.Cmdlets {
				if strings.Contains(string(c), `"AppName": "`+collecttest.Expenses+`", "DisplayName"`) {
					st.Cmdlets[i] = set(t, c, map[string]any{"Owner": carol})
				}
			}
			d := st.Lists[sub1Path+delegations][0]
			st.Lists[sub1Path+delegations] = []json.RawMessage{set(t, d, map[string]any{
				"properties.registrationDefinition.properties.eligibleAuthorizations": []any{},
				"properties.registrationDefinition.systemData.lastModifiedAt":         "2026-01-14T12:00:00Z",
			})}
		},
		// Alice's link moves to Fabrikam's other location; Dave is given
		// the custom role on the sandbox; the help desk app is deleted.
		func(at time.Time) {
			st.Lists[collecttest.AppsPath(collecttest.DefaultEnv)] = nil
			delete(st.Lists, collecttest.PermissionsPath(collecttest.DefaultEnv, collecttest.HelpDesk))
			st.Cmdlets = dropWhere(st.Cmdlets, "AppName", collecttest.HelpDesk)
			st.Links[contoso] = set(t, st.Links[contoso], map[string]any{"properties.partnerId": "1000012", "name": "1000012", "properties.updatedTime": "2026-01-16T09:00:00Z"})
			ra := st.Lists[sub1Path+assignments][0]
			st.Lists[sub2Path+assignments] = append(st.Lists[sub2Path+assignments], set(t, ra, map[string]any{
				"name": "5ace6299-72e1-4ea3-af60-819cadbecfd5", "id": sub2Path + assignments + "/5ace6299-72e1-4ea3-af60-819cadbecfd5",
				"properties.principalId": "9a8b7c6d-0000-4000-8000-00000000da7e", "properties.scope": sub2Path,
				"properties.createdOn": "2026-01-16T10:00:00Z", "properties.updatedOn": "2026-01-16T10:00:00Z"}))
		},
	}
	for day, change := range changes {
		at := day1.AddDate(0, 0, day)
		if change != nil {
			change(at)
		}
		st.Serve(api)
		before := len(sink.log)
		rep, err := c.Run(context.Background(), at, sink.log, sink)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Failed() {
			t.Errorf("day %d: %v", day+1, f)
		}
		imported = importChain(t, imported, at, exports(t, st, t.TempDir(), at))
		if diff := cmp.Diff(lines(imported), lines(sink.log)); diff != "" {
			t.Fatalf("day %d: the collected log differs from pal import's (-import +collect):\n%s", day+1, diff)
		}
		if day > 0 && len(sink.log) == before {
			t.Errorf("day %d: the run wrote nothing, and the state changed", day+1)
		}
	}
	// What the week comes to, in the log: alice's Contributor removed on
	// the second day, the sandbox moved on the fourth, the delegation's
	// eligible authorization ended at the definition's change, a second
	// activation, and the revised cost replacing the first.
	text := strings.Join(lines(sink.log), "\n")
	for _, s := range []string{
		`"type":"azure.role_removed","time":"2026-01-11T06:00:00Z"`,
		`"type":"azure.subscription_placed","time":"2026-01-13T06:00:00Z"`,
		`"type":"azure.role_removed","time":"2026-01-14T12:00:00Z"`,
		`"type":"azure.role_activated","time":"2026-01-13T10:00:00Z"`,
		`"date":"2026-01-10","cost":2.5`,
		`"type":"group.member_removed"`,
		`"type":"resource.coowner_removed","time":"2026-01-12T06:00:00Z"`,
		`"type":"usage","time":"2026-01-12T02:00:00Z"`,
		`"type":"resource.owner_changed","time":"2026-01-15T06:00:00Z"`,
		`"type":"resource.deleted"`,
	} {
		if !strings.Contains(text, s) {
			t.Errorf("the week's log has no %s", s)
		}
	}
}

// TestFailures answers some requests with errors: a source whose request
// fails is reported with its tenant, request and the API's words, and
// nothing of it is written, not even the pages that came; a subscription
// refused (403) leaves the others of its source written, and is reported
// with what the source needs there; a 429 with Retry-After is waited out
// and a 500 retried; a throttling that lasts is reported; every other
// source runs. Tokens last a second,
// so that the later requests need new ones. The run after, the failures
// gone, writes what was missing.
func TestFailures(t *testing.T) {
	api := world(t)
	api.Fail(sub2Path+assignments, collecttest.Failure{Status: 403, Code: "AuthorizationFailed", Times: -1})
	api.Fail(membersPath(fabOps), collecttest.Failure{Status: 429, Code: "TooManyRequests", Header: http.Header{"Retry-After": {"1"}}})
	api.Fail(sub1Path+"/providers/Microsoft.CostManagement/query", collecttest.Failure{Status: 500, Code: "InternalServerError"})
	api.Fail(entitiesPath, collecttest.Failure{Status: 429, Code: "TooManyRequests", Header: http.Header{"Retry-After-Ms": {"20"}}, Times: -1})
	creds := &collecttest.Credentials{Set: map[string]*collecttest.Credential{
		contoso: {Tenant: contoso, Lifetime: time.Second}, fabrikam: {Tenant: fabrikam, Lifetime: time.Second}}}
	cfg := worldConfig()
	cfg.Retries = 2
	c := newCollector(t, api, cfg, creds)
	sink := &memory{log: readLog(t, seed)}
	rep, err := c.Run(context.Background(), day1, sink.log, sink)
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]string{}
	for _, r := range rep.Results {
		t.Log(r)
	}
	for _, r := range slices.Concat(rep.Failed(), rep.Partial()) {
		failed[r.Tenant+" "+r.Source] = r.String()
	}
	wantFailed := map[string][]string{
		contoso + " azure-roles": {"5 new events; subscriptions/" + collecttest.Sub2 + " not read, what the log holds of it kept: GET " + api.URL + sub2Path + assignments +
			": 403 Forbidden, AuthorizationFailed: the test answers 403", "azure-roles needs Reader"},
		contoso + " management-groups": {"failed, nothing written", "POST " + api.URL + entitiesPath + ": 429 Too Many Requests, TooManyRequests", "the API asked to wait 20ms more"},
	}
	for k, words := range wantFailed {
		for _, w := range words {
			if !strings.Contains(failed[k], w) {
				t.Errorf("%s: the report says %q, want it to say %q", k, failed[k], w)
			}
		}
	}
	if len(failed) != len(wantFailed) {
		t.Errorf("failed: %v, want only %v", slices.Sorted(maps.Keys(failed)), slices.Sorted(maps.Keys(wantFailed)))
	}
	text := strings.Join(lines(sink.log), "\n")
	if strings.Contains(text, "azure.group_placed") || strings.Contains(text, `"scope":"`+sub2Path+`"`) {
		t.Errorf("a failed source, or a subscription refused, was written in part:\n%s", text)
	}
	for _, s := range []string{`"name":"carol@contoso.example"`, `"meter":"standard"`, `"pim":"eligible"`, `"assignment":"0b7a1f44-2d9c-4f5e-9a1b-3c4d5e6f7a80"`} {
		if !strings.Contains(text, s) {
			t.Errorf("the sources that did not fail should be written: no %s in\n%s", s, text)
		}
	}
	reqs := api.Requests()
	var members []collecttest.Request
	for _, r := range reqs {
		if r.Status == http.StatusUnauthorized {
			t.Errorf("%s %s was refused its token: an expired token was not renewed", r.Method, r.Path)
		}
		if r.Path == membersPath(fabOps) {
			members = append(members, r)
		}
	}
	if len(members) != 2 || members[0].Status != 429 || members[1].Status != 200 || members[1].At.Sub(members[0].At) < time.Second {
		t.Errorf("the group's members: %+v; want a 429, then a 200 at least the second of its Retry-After later", members)
	}
	if n := creds.Set[fabrikam].Issued(); n < 3 {
		t.Errorf("Fabrikam's credential issued %d tokens, each lasting a second, over a run of more than a second", n)
	}
	// The next run, the API well again, writes what failed.
	api.Clear()
	rep, err = c.Run(context.Background(), day1.Add(time.Hour), sink.log, sink)
	if err != nil || len(rep.Failed()) > 0 {
		t.Fatalf("the second run: %v %v", err, rep.Failed())
	}
	text = strings.Join(lines(sink.log), "\n")
	if !strings.Contains(text, `"scope":"`+sub2Path+`"`) || !strings.Contains(text, "azure.group_placed") {
		t.Errorf("the second run did not write what the first could not:\n%s", text)
	}
}

// TestLighthouseOnly collects as a partner whose only credential is its
// own tenant's: the customer's subscription delegated to it is read in the
// customer's tenant, for what Resource Manager answers, and the snapshot
// of role assignments covers that subscription alone — an assignment the
// log holds on another of the customer's subscriptions is not taken as
// removed, one gone from the delegated subscription is.
func TestLighthouseOnly(t *testing.T) {
	st, api, log := firstDayImported(t)
	st.Lists[sub1Path+assignments] = without(st.Lists[sub1Path+assignments], "0b7a1f44-2d9c-4f5e-9a1b-3c4d5e6f7a80")
	st.Lists[sub2Path+assignments] = nil
	st.Serve(api)
	api.Requests()
	cfg := Config{Tenants: []Tenant{{Tenant: fabrikam, Lighthouse: true}}}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, api, cfg, &collecttest.Credentials{})
	sink := &memory{log: log}
	at := day1.AddDate(0, 0, 1)
	rep, err := c.Run(context.Background(), at, log, sink)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Failed() {
		t.Errorf("failed: %v", f)
	}
	var sources []string
	for _, r := range rep.Results {
		if r.Tenant == contoso {
			sources = append(sources, r.Source)
		}
	}
	if want := []string{"azure-roles", "azure-pim", "lighthouse", "azure-costs"}; !slices.Equal(sources, want) {
		t.Errorf("Contoso was read for %v, want %v: what Resource Manager answers for a delegated subscription", sources, want)
	}
	got := lines(sink.log[len(log):])
	want := []string{`{"type":"azure.role_removed","time":"2026-01-11T06:00:00Z","id":"imp-azure-roles-` + removedID(t, sink.log[len(log):]) + `","tenant":"contoso-tenant-id","assignment":"0b7a1f44-2d9c-4f5e-9a1b-3c4d5e6f7a80"}`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the partner's run wrote (-want +got):\n%s", diff)
	}
	for _, r := range api.Requests() {
		if strings.Contains(r.Path, sub2) {
			t.Errorf("%s %s: a subscription not delegated was read", r.Method, r.Path)
		}
		if strings.Contains(r.Path, sub1) && r.Tenant != fabrikam {
			t.Errorf("%s %s with a token of %s: the delegated subscription is read with the partner's", r.Method, r.Path, r.Tenant)
		}
	}
}

// TestRefusedSubscriptionKeepsItsAssignments: a subscription on which the
// credential lost its role answers 403; the tenant's other subscriptions
// are read, an assignment gone from them is removed, and the assignments
// the log holds on the refused one are kept, since the snapshot did not
// read it. The run says which subscription it could not read.
func TestRefusedSubscriptionKeepsItsAssignments(t *testing.T) {
	st, api, log := firstDayImported(t)
	st.Lists[sub1Path+assignments] = without(st.Lists[sub1Path+assignments], "0b7a1f44-2d9c-4f5e-9a1b-3c4d5e6f7a80")
	st.Serve(api)
	api.Fail(sub2Path+assignments, collecttest.Failure{Status: 403, Code: "AuthorizationFailed", Times: -1})
	cfg := Config{Tenants: []Tenant{{Tenant: contoso, Sources: []string{"azure-roles"}}}}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, api, cfg, &collecttest.Credentials{})
	sink := &memory{log: log}
	rep, err := c.Run(context.Background(), day1.AddDate(0, 0, 1), log, sink)
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failed(); len(f) > 0 {
		t.Errorf("failed: %v, want the other subscription read", f)
	}
	if p := rep.Partial(); len(p) != 1 || len(p[0].Missed) != 1 || p[0].Missed[0].Scope != "subscriptions/"+collecttest.Sub2 {
		t.Errorf("written in part: %v, want azure-roles without %s", p, sub2Path)
	}
	got := lines(sink.log[len(log):])
	want := []string{`{"type":"azure.role_removed","time":"2026-01-11T06:00:00Z","id":"imp-azure-roles-` + removedID(t, sink.log[len(log):]) + `","tenant":"contoso-tenant-id","assignment":"0b7a1f44-2d9c-4f5e-9a1b-3c4d5e6f7a80"}`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the run wrote (-want +got):\n%s", diff)
	}
}

// firstDayImported serves the first day of the test world, and returns it
// with the log its exports, imported, make.
func firstDayImported(t *testing.T) (*collecttest.World, *collecttest.API, []*event.Event) {
	t.Helper()
	st := collecttest.FirstDay(t, "testdata")
	api := collecttest.New(t)
	st.Serve(api)
	return st, api, importChain(t, readLog(t, seed), day1, exports(t, st, t.TempDir(), day1))
}

// removedID is the id suffix of the one removal among events.
func removedID(t *testing.T, evs []*event.Event) string {
	for _, ev := range evs {
		if ev.Type == event.AzureRoleRemoved {
			return strings.TrimPrefix(ev.ID, "imp-azure-roles-")
		}
	}
	return ""
}

// TestSinkFailureEndsTheRun: when the log cannot be written, the run
// stops, saying so, and nothing after is read.
func TestSinkFailureEndsTheRun(t *testing.T) {
	api := world(t)
	c := newCollector(t, api, worldConfig(), &collecttest.Credentials{})
	sink := &memory{log: readLog(t, seed), fail: errors.New("disk full")}
	rep, err := c.Run(context.Background(), day1, sink.log, sink)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("the run's error is %v, want the sink's", err)
	}
	if n := len(rep.Results); n != 1 || rep.Results[0].Source != "management-groups" || rep.Results[0].Err == nil {
		t.Errorf("the report holds %v: want the first source, failed, alone", rep.Results)
	}
}

func TestReadConfig(t *testing.T) {
	tests := []struct {
		config, err string
	}{
		{`{"tenants": [{"tenant": "t1"}]}`, ""},
		{`{"tenants": []}`, "no tenants"},
		{`{"tenants": [{"tenant": "t1", "subscription": ["s"]}]}`, `line 1: json: unknown field "subscription"`},
		{"{\"tenants\": [{\"tenant\": \"t1\"},\n {\"tenant\": \"T1\"}]}", "tenant T1 is named twice"},
		{`{"tenants": [{"tenant": "t1", "sources": ["azure-rbac"]}]}`, `unknown source "azure-rbac": pal collects management-groups, users`},
		{`{"tenants": [{"tenant": "t1", "sources": ["audit", "powerapps"]}]}`, ""},
		{`{"tenants": [{"tenant": "t1", "sources": ["audit"]}], "cloud": "usgovernment"}`, "pal reads audit in the public cloud only"},
		{`{"tenants": [{"tenant": "t1"}], "audit_days": 7}`, "audit_days 7: the Management Activity API keeps its content 7 days"},
		{`{"tenants": [{"tenant": "t1", "cost_exports": [{"container": "https://acct.blob.core.windows.net/costs?sv=2024&sig=x"}]}]}`, "carries a query (a SAS token?)"},
		{`{"tenants": [{"tenant": "t1", "cost_exports": [{"container": "acct/costs"}]}]}`, `container "acct/costs" is not a container's URL`},
		{`{"tenants": [{"tenant": "t1", "cost_exports": [{"container": "https://acct.blob.core.windows.net/costs", "prefix": "daily"}, {"container": "https://acct.blob.core.windows.net/costs", "prefix": "daily/pal"}]}]}`, "overlap"},
		{`{"tenants": [{"tenant": "t1", "sources": ["users"], "cost_exports": [{"container": "https://acct.blob.core.windows.net/costs"}]}]}`, "cost_exports are read by the azure-costs source"},
		{`{"tenants": [{"tenant": "t1", "sign_in_tenant": "p1", "sources": ["users"]}]}`, "signs in to tenant p1"},
		{`{"tenants": [{"tenant": "t1", "subscriptions": ["a/b"]}]}`, `"a/b" is not a subscription ID`},
		{`{"tenants": [{"tenant": "t1"}], "request_timeout": "soon"}`, `"soon" is not a positive duration`},
		{`{"tenants": [{"tenant": "t1"}], "cloud": "mars"}`, `cloud "mars"`},
		{`{"tenants": [{"tenant": "t1"}], "cost_days": 400}`, "cost_days 400"},
	}
	for _, tt := range tests {
		_, err := ReadConfig(strings.NewReader(tt.config))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.config, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: got error %v, want one saying %q", tt.config, err, tt.err)
		}
	}
	c, err := ReadConfig(strings.NewReader(`{"tenants": [{"tenant": "t1"}, {"tenant": "t2", "sign_in_tenant": "p"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Tenants[0].Sources, defaultSources) || slices.Contains(c.Tenants[0].Sources, "audit") || !slices.Equal(c.Tenants[1].Sources, armSources) ||
		c.CostDays != 7 || c.Concurrency != 4 || c.Retries != 4 || c.RequestTimeout != Duration(time.Minute) || c.AuditDays != 2 {
		t.Errorf("the defaults: %+v", c)
	}
}

// TestConcurrencyPerTenant: a tenant's requests go at most as many at a
// time as the configuration says, and that many do go at once.
func TestConcurrencyPerTenant(t *testing.T) {
	for _, n := range []int{1, 3} {
		api := world(t)
		api.Latency = 20 * time.Millisecond
		cfg := worldConfig()
		cfg.Concurrency = n
		c := newCollector(t, api, cfg, &collecttest.Credentials{})
		sink := &memory{log: readLog(t, seed)}
		if _, err := c.Run(context.Background(), day1, sink.log, sink); err != nil {
			t.Fatal(err)
		}
		if got := api.MaxInFlight(contoso); got != n {
			t.Errorf("concurrency %d: Contoso had %d requests in flight at most", n, got)
		}
	}
}
