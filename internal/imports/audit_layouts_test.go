package imports_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/imports"
)

// TestAuditLayouts holds the audit's other layouts to their golden files:
// the legacy Power Apps records (PowerAppsApp, AppName), the unified
// schema's app permission edits, and the cmdlets' app shares with groups.
func TestAuditLayouts(t *testing.T) {
	checkFixtures(t, []fixture{
		// Launches named by AppName, as a path or a GUID in any case, or
		// by AdditionalInfo; a legacy permission edit naming its target by
		// object ID in JsonPropertiesCollection.
		{"audit", "audit/legacy-powerapps.csv", "", "", "", "audit/known-apps.ndjson"},
		// PowerAppPermissionEdited and PowerAppPermissionDeleted, newest
		// first as exports list them: bob co-owner, viewer, co-owner
		// again, removed; the owner, a group, an unknown object, an
		// unknown app, a model-driven app and an unknown level reported
		// or passed over.
		{"audit", "audit/unified-permissions.json", "", "", "", "audit/known-apps.ndjson"},
		// A group with CanEdit is reported; a group that views, and the
		// whole tenant, are not.
		{"powerapps", "powerapps/group-shares.json", "contoso-tenant-id", "", "", ""},
	})
}

// use is what a usage event says of a launch.
type use struct {
	tenant, resource, user string
	at                     time.Time
}

// uses imports an audit export and returns its uses in order, failing on
// any problem.
func uses(t *testing.T, name, text string, o imports.Options) []use {
	t.Helper()
	res, err := imports.Run("audit", []imports.File{{Name: name, R: strings.NewReader(text)}}, o)
	if err != nil || len(res.Problems) > 0 {
		t.Fatalf("%s: %v %v", name, err, res.Problems)
	}
	var out []use
	for _, ev := range res.Events {
		if ev.Type != event.Usage {
			t.Fatalf("%s: %s is no usage", name, ev.AppendJSON(nil))
		}
		out = append(out, use{ev.Tenant, ev.Resource, ev.User, ev.Time})
	}
	slices.SortFunc(out, func(a, b use) int {
		return strings.Compare(fmt.Sprint(a.at.UnixNano(), a.resource, a.user), fmt.Sprint(b.at.UnixNano(), b.resource, b.user))
	})
	return out
}

// TestLegacyAndUnifiedLaunchesAgree writes the same random launches in
// the unified schema (JSON records, the app in PropertyCollection) and in
// the legacy one (a Purview CSV export, the app in AppName as a GUID or a
// path in any case, or only in AdditionalInfo): both give the same uses,
// with and without pseudonyms.
func TestLegacyAndUnifiedLaunchesAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 3))
	randCase := func(s string) string {
		b := []byte(s)
		for i := range b {
			if rng.IntN(2) == 0 {
				b[i] = strings.ToUpper(string(b[i]))[0]
			}
		}
		return string(b)
	}
	for round := 0; round < 20; round++ {
		var unified []string
		var legacy strings.Builder
		w := csv.NewWriter(&legacy)
		w.Write([]string{"RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData"})
		n := 1 + rng.IntN(60)
		for i := range n {
			app := fmt.Sprintf("a1b2c3d4-0000-4000-8000-%012x", rng.IntN(5))
			user := randCase(fmt.Sprintf("user%d@contoso.example", rng.IntN(12)))
			at := time.Date(2026, 1, 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), 0, 0, time.UTC).Format("2006-01-02T15:04:05")
			rec, _ := json.Marshal(map[string]any{"Id": fmt.Sprintf("u-%d", i), "CreationTime": at, "Operation": "LaunchPowerApp",
				"OrganizationId": "contoso-tenant-id", "RecordType": 256, "Workload": "PowerPlatform", "UserId": user,
				"PropertyCollection": []map[string]string{
					{"Name": "powerplatform.analytics.resource.power_app.id", "Value": app},
					{"Name": "enduser.principal_name", "Value": user},
				}})
			unified = append(unified, string(rec))
			data := map[string]any{"Id": fmt.Sprintf("l-%d", i), "CreationTime": at, "Operation": "LaunchPowerApp",
				"OrganizationId": "contoso-tenant-id", "RecordType": 45, "Workload": "PowerApps", "UserId": user, "UserKey": "10032001A2B3C4D5"}
			switch rng.IntN(3) {
			case 0:
				data["AppName"] = randCase(app)
			case 1:
				data["AppName"] = "/providers/Microsoft.PowerApps/apps/" + randCase(app)
			default:
				info, _ := json.Marshal(map[string]string{"environmentName": "3f1c9a2e-5b6d-4e7f-8a9b-0c1d2e3f4a5b", "appName": app})
				data["AdditionalInfo"] = string(info)
			}
			raw, _ := json.Marshal(data)
			w.Write([]string{fmt.Sprintf("l-%d", i), at + ".0000000Z", "PowerAppsApp", "LaunchPowerApp", user, string(raw)})
		}
		w.Flush()
		for _, key := range [][]byte{nil, []byte("0123456789abcdef0123456789abcdef")} {
			o := imports.Options{UserKey: key}
			u := uses(t, "unified.ndjson", strings.Join(unified, "\n"), o)
			l := uses(t, "legacy.csv", legacy.String(), o)
			if len(u) != n || !slices.Equal(u, l) {
				t.Fatalf("round %d: %d launches give %d unified uses and %d legacy ones:\n%v\n%v", round, n, len(u), len(l), u, l)
			}
		}
	}
}

// TestAppPermissionsAcrossLayouts writes one sequence of app permission
// edits in three ways — the unified schema naming the target by object
// ID, or by user principal name, and the legacy JsonPropertiesCollection
// — and imports each against the log: the same dated co-owners, each
// applied by the log, and an app co-owned by bob from the 8th to the 9th
// and from the 10th to the 11th.
func TestAppPermissionsAcrossLayouts(t *testing.T) {
	const (
		app    = "a1b2c3d4-0000-4000-8000-000000000001"
		bob    = "9a8b7c6d-0000-4000-8000-000000000b0b"
		bobUPN = "BOB_northwind.example#EXT#@contoso.onmicrosoft.com"
	)
	type step struct {
		at, op, level string
	}
	steps := []step{
		{"2026-01-11T16:00:00", "PowerAppPermissionDeleted", ""},
		{"2026-01-08T09:00:00", "PowerAppPermissionEdited", "CanEdit"},
		{"2026-01-10T08:00:00", "PowerAppPermissionEdited", "canedit"},
		{"2026-01-09T10:00:00", "PowerAppPermissionEdited", "CanView"},
		{"2026-01-09T11:00:00", "PowerAppPermissionEdited", "CanViewWithShare"},
	}
	layouts := map[string]func(i int, s step) map[string]any{
		"unified by object ID": func(i int, s step) map[string]any {
			return unifiedEdit(i, s.at, s.op, "/providers/Microsoft.PowerApps/apps/"+strings.ToUpper(app), "targetuser.id", bob, s.level)
		},
		"unified by name": func(i int, s step) map[string]any {
			return unifiedEdit(i, s.at, s.op, app, "targetuser.principal_name", bobUPN, s.level)
		},
		"legacy": func(i int, s step) map[string]any {
			props, _ := json.Marshal(map[string]string{"powerplatform.analytics.resource.power_app.id": "/providers/Microsoft.PowerApps/apps/" + app,
				"targetuser.id": bob, "powerplatform.analytics.resource.permission_type": s.level})
			return map[string]any{"Id": fmt.Sprintf("l-%d", i), "CreationTime": s.at, "Operation": s.op, "OrganizationId": "contoso-tenant-id",
				"RecordType": 45, "Workload": "PowerApps", "UserId": "alice@fabrikam.example", "AppName": "/providers/Microsoft.PowerApps/apps/" + app,
				"JsonPropertiesCollection": string(props)}
		},
	}
	want := "[resource.coowner_added 2026-01-08T09:00:00Z resource.coowner_removed 2026-01-09T10:00:00Z resource.coowner_added 2026-01-10T08:00:00Z resource.coowner_removed 2026-01-11T16:00:00Z]"
	for name, layout := range layouts {
		var lines []string
		for i, s := range steps {
			line, _ := json.Marshal(layout(i, s))
			lines = append(lines, string(line))
		}
		known := foldFile(t, "../../testdata/imports/audit/known-apps.ndjson")
		res, err := imports.Run("audit", []imports.File{{Name: "edits.ndjson", R: strings.NewReader(strings.Join(lines, "\n"))}}, imports.Options{Known: imports.Known(known)})
		if err != nil || len(res.Problems) > 0 {
			t.Fatalf("%s: %v %v", name, err, res.Problems)
		}
		var got []string
		for _, ev := range res.Events {
			if ev.Resource != app || ev.Account != bob {
				t.Errorf("%s: %s names another app or account", name, ev.AppendJSON(nil))
			}
			got = append(got, ev.Type+" "+ev.Time.Format(time.RFC3339))
			if r := known.Apply(ev); r.Outcome == attribution.Refused {
				t.Errorf("%s: the log refuses %s: %v", name, ev.AppendJSON(nil), r.Refusal)
			}
		}
		if fmt.Sprint(got) != want {
			t.Errorf("%s: %v, want %s", name, got, want)
		}
		if _, res := known.Inventory("contoso-tenant-id"); len(res[app].Coowners) != 0 {
			t.Errorf("%s: co-owners left at the end: %v", name, res[app].Coowners)
		}
	}
}

// unifiedEdit is a PowerAppPermissionEdited or -Deleted record of the
// unified Power Platform schema.
func unifiedEdit(i int, at, op, app, targetProp, target, level string) map[string]any {
	props := []map[string]string{
		{"Name": "powerplatform.analytics.resource.power_app.id", "Value": app},
		{"Name": "powerplatform.analytics.activity.name", "Value": op},
		{"Name": "enduser.principal_name", "Value": "alice_fabrikam.example#EXT#@contoso.onmicrosoft.com"},
		{"Name": targetProp, "Value": target},
	}
	if level != "" {
		props = append(props, map[string]string{"Name": "powerplatform.analytics.resource.permission_type", "Value": level})
	}
	return map[string]any{"Id": fmt.Sprintf("u-%s-%d", targetProp, i), "CreationTime": at, "Operation": op, "OrganizationId": "contoso-tenant-id",
		"RecordType": 256, "Workload": "PowerPlatform", "UserId": "alice_fabrikam.example#EXT#@contoso.onmicrosoft.com", "PropertyCollection": props}
}

// TestUnifiedPermissionsFixtureApplies imports the unified permissions
// fixture against its log: every event it writes is one the log applies,
// and bob, co-owner of Expenses twice, is none at the end.
func TestUnifiedPermissionsFixtureApplies(t *testing.T) {
	known := foldFile(t, "../../testdata/imports/audit/known-apps.ndjson")
	f, err := os.Open("../../testdata/imports/audit/unified-permissions.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := imports.Run("audit", []imports.File{{Name: "unified-permissions.json", R: f}}, imports.Options{Known: imports.Known(known)})
	if err != nil {
		t.Fatal(err)
	}
	added := 0
	for _, ev := range res.Events {
		if ev.Type == event.ResourceCoownerAdd {
			added++
		}
		if r := known.Apply(ev); r.Outcome == attribution.Refused {
			t.Errorf("the log refuses %s: %v", ev.AppendJSON(nil), r.Refusal)
		}
	}
	if _, inv := known.Inventory("contoso-tenant-id"); added != 2 || len(inv["a1b2c3d4-0000-4000-8000-000000000001"].Coowners) != 0 {
		t.Errorf("%d co-owners added, %v left", added, inv["a1b2c3d4-0000-4000-8000-000000000001"].Coowners)
	}
}
