package imports_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/imports"
)

// TestAzureDatingFixtures imports the Lighthouse and PIM fixtures that
// date what they show by the export's own times.
func TestAzureDatingFixtures(t *testing.T) {
	checkFixtures(t, []fixture{
		// The REST body says the customer's tenant: no --tenant.
		{"lighthouse", "lighthouse/rest-assignments.json", "", "2026-01-12T06:00:00Z", "", ""},
		// A later snapshot (az's shape) against the log that holds the
		// first: the definition of one delegation changed on 2 February (an
		// authorization gone, one granting another role); the delegation of
		// rg-sap-prod is not listed, and a snapshot does not say it looked.
		{"lighthouse", "lighthouse/updated.json", "", "2026-02-05T00:00:00Z", "", "lighthouse/known.ndjson"},
		// PIM requests against the log that holds bob's and carol's
		// eligibilities: what took effect, and nothing of what did not.
		{"azure-pim", "azure-pim/requests.json", pimTenant, "", "", "azure-pim/known.ndjson"},
	})
}

const (
	pimTenant = "1c4e8f0a-5b2d-4e7f-9a31-6d8c2b7e4f15"
	pimSub    = "/subscriptions/a1f3c6e2-9b84-4d27-8e15-3c7a0b5d9f21"
	bobsPIM   = "b1477448-2cc6-4ceb-93b4-54a202a89413"
)

// runFiles imports named texts, or fixture files (a name with no text).
func runFiles(t *testing.T, format string, o imports.Options, files ...string) (imports.Import, error) {
	t.Helper()
	var in []imports.File
	for _, f := range files {
		name, text, inline := strings.Cut(f, "\n")
		if !inline {
			data, err := os.ReadFile("../../testdata/imports/" + f)
			if err != nil {
				t.Fatal(err)
			}
			text = string(data)
		}
		in = append(in, imports.File{Name: name, R: strings.NewReader(text)})
	}
	return imports.Run(format, in, o)
}

// lines writes events as log lines.
func lines(events []*event.Event) []string {
	var out []string
	for _, ev := range events {
		out = append(out, string(ev.AppendJSON(nil)))
	}
	return out
}

// pimRequest is a role assignment schedule request of bob's eligibility,
// in the REST list's shape.
func pimRequest(name, typ, status, created, sched string) string {
	return fmt.Sprintf(`{"name":%q,"type":"Microsoft.Authorization/RoleAssignmentScheduleRequests","properties":{"scope":%q,
"roleDefinitionId":"%s/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
"principalId":"a3bb8764-cb92-4276-9d2a-ca1e895e55ea","principalType":"User","requestType":%q,"status":%q,"createdOn":%q,
"linkedRoleEligibilityScheduleId":"%s/providers/Microsoft.Authorization/roleEligibilitySchedules/%s","scheduleInfo":%s}}`,
		name, pimSub, pimSub, typ, status, created, pimSub, bobsPIM, sched)
}

func afterDuration(start, d string) string {
	return fmt.Sprintf(`{"startDateTime":%q,"expiration":{"type":"AfterDuration","endDateTime":null,"duration":%q}}`, start, d)
}

// TestPIMRequestAndInstanceAreOneActivation imports the request of bob's
// activation and the activation instance it made, apart and together:
// both say the same event, so that importing both adds nothing twice.
func TestPIMRequestAndInstanceAreOneActivation(t *testing.T) {
	request := "request.json\n" + `{"value":[` + pimRequest("fea7a502-9a96-4806-a26f-eee560e52045", "SelfActivate", "Provisioned",
		"2026-01-14T08:02:11.37Z", afterDuration("2026-01-14T08:02:11.37Z", "PT8H")) + `]}`
	instance := "instance.json\n" + `{"value":[{"name":"ed9b8180-cef7-4c77-a63c-b8566ecfc412","type":"Microsoft.Authorization/RoleAssignmentScheduleInstances","properties":{
"linkedRoleEligibilityScheduleId":"` + pimSub + `/providers/Microsoft.Authorization/roleEligibilitySchedules/` + bobsPIM + `",
"assignmentType":"Activated","memberType":"Direct","scope":"` + pimSub + `","principalId":"a3bb8764-cb92-4276-9d2a-ca1e895e55ea",
"status":"Provisioned","startDateTime":"2026-01-14T08:02:11.3700000Z","endDateTime":"2026-01-14T16:02:11.37Z","createdOn":"2026-01-14T08:02:12.9Z"}}]}`
	o := imports.Options{Tenant: pimTenant, Known: imports.Known(foldFile(t, "../../testdata/imports/azure-pim/known.ndjson"))}
	var got [][]string
	for _, files := range [][]string{{request}, {instance}, {request, instance}, {instance, request}} {
		res, err := runFiles(t, "azure-pim", o, files...)
		if err != nil || len(res.Problems) > 0 {
			t.Fatal(err, res.Problems)
		}
		got = append(got, lines(res.Events))
	}
	want := `{"type":"azure.role_activated","time":"2026-01-14T08:02:11.37Z","id":"imp-azure-pim-bbbad248913f3cf699e2","tenant":"` + pimTenant +
		`","assignment":"` + bobsPIM + `","until":"2026-01-14T16:02:11.37Z"}`
	for i, g := range got {
		if len(g) != 1 || g[0] != want {
			t.Errorf("import %d gives %v, want the one activation %s", i, g, want)
		}
	}
	// An instance that ends a little before the duration asked for (as
	// in the REST reference's example): the one event ends where it says.
	early := strings.Replace(instance, `"endDateTime":"2026-01-14T16:02:11.37Z"`, `"endDateTime":"2026-01-14T16:02:01.37Z"`, 1)
	res, err := runFiles(t, "azure-pim", o, request, early)
	if g := lines(res.Events); err != nil || len(g) != 1 || g[0] != strings.Replace(want, "16:02:11", "16:02:01", 1) {
		t.Errorf("a request and an instance ending earlier give %v %v", err, g)
	}
}

// TestPIMDeactivationEndsTheActivation folds the requests fixture into the
// log: bob's Contributor counts from his activation until his
// deactivation's createdOn, not until the 8 hours he asked for.
func TestPIMDeactivationEndsTheActivation(t *testing.T) {
	o := imports.Options{Tenant: pimTenant, Known: imports.Known(foldFile(t, "../../testdata/imports/azure-pim/known.ndjson"))}
	res, err := runFiles(t, "azure-pim", o, "azure-pim/requests.json")
	if err != nil {
		t.Fatal(err)
	}
	e := foldFile(t, "../../testdata/imports/azure-pim/known.ndjson", lines(res.Events)...)
	vm := pimSub + "/resourceGroups/rg-aks/providers/Microsoft.Compute/virtualMachines/vm1"
	active := func(at string) bool {
		t.Helper()
		when, _ := time.Parse(time.RFC3339Nano, at)
		x, err := e.Azure().Explain(pimTenant, vm, when)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range x.Assignments {
			if a.Assignment == bobsPIM {
				return a.Active
			}
		}
		t.Fatalf("bob's eligibility is not among %+v at %s", x.Assignments, at)
		return false
	}
	for at, want := range map[string]bool{
		"2026-01-14T08:02:11.36Z": false,
		"2026-01-14T08:02:11.37Z": true,
		"2026-01-14T11:47:03.11Z": true,
		"2026-01-14T11:47:03.12Z": false, // the deactivation's createdOn
		"2026-01-14T15:00:00Z":    false, // within the 8 hours asked for
		"2026-01-16T07:30:00Z":    true,  // the second activation, PT4H30M
		"2026-01-16T11:59:59Z":    true,  // the failed deactivation ended nothing
		"2026-01-16T12:00:00Z":    false,
	} {
		if got := active(at); got != want {
			t.Errorf("bob's Contributor active at %s: %v, want %v", at, got, want)
		}
	}
}

// TestPIMRequestsThatDidNotTakeEffect imports requests denied, failed,
// cancelled, pending, granted for later, and an administrator's: none is
// an activation or a deactivation, and none is a row lost.
func TestPIMRequestsThatDidNotTakeEffect(t *testing.T) {
	sched := afterDuration("2026-01-20T09:00:00Z", "PT2H")
	var recs []string
	for i, c := range [][2]string{
		{"SelfActivate", "Denied"}, {"SelfActivate", "Failed"}, {"SelfActivate", "Canceled"}, {"SelfActivate", "PendingApproval"},
		{"SelfActivate", "PendingProvisioning"}, {"SelfActivate", "Granted"}, {"SelfActivate", "Revoked"}, {"SelfActivate", "AdminDenied"},
		{"SelfActivate", "TimedOut"}, {"SelfDeactivate", "Denied"}, {"SelfDeactivate", "Failed"}, {"SelfDeactivate", "Canceled"},
		{"AdminAssign", "Provisioned"}, {"AdminRemove", "Provisioned"}, {"AdminUpdate", "Provisioned"}, {"AdminExtend", "Provisioned"},
		{"SelfExtend", "Provisioned"}, {"SelfRenew", "Provisioned"},
	} {
		recs = append(recs, pimRequest(fmt.Sprintf("r%d", i), c[0], c[1], "2026-01-20T08:59:00Z", sched))
	}
	o := imports.Options{Tenant: pimTenant, Known: imports.Known(foldFile(t, "../../testdata/imports/azure-pim/known.ndjson"))}
	res, err := runFiles(t, "azure-pim", o, "requests.json\n"+`{"value":[`+strings.Join(recs, ",")+`]}`)
	if err != nil || len(res.Events) != 0 || len(res.Problems) != 0 {
		t.Errorf("requests that did not take effect give %v %v %v", err, lines(res.Events), res.Problems)
	}
}

// TestPIMDeactivationOfNoActivation reports a deactivation that ends no
// activation the files hold (none, or one a deactivation ended already:
// the log would refuse it), an activation of an assignment the log holds
// as active, and an eligibility request, which is no eligibility.
func TestPIMDeactivationOfNoActivation(t *testing.T) {
	known := foldFile(t, "../../testdata/imports/azure-pim/known.ndjson",
		`{"type":"azure.role_assigned","time":"2025-11-01T00:00:00Z","tenant":"`+pimTenant+`","assignment":"standing-1","principal":"a3bb8764-cb92-4276-9d2a-ca1e895e55ea","role":"Reader","scope":"`+pimSub+`"}`)
	deact := pimRequest("d1", "SelfDeactivate", "Provisioned", "2026-01-20T10:00:00Z", `{}`)
	standing := strings.Replace(pimRequest("a1", "SelfActivate", "Provisioned", "2026-01-20T10:00:00Z", afterDuration("2026-01-20T10:00:00Z", "PT1H")), bobsPIM, "standing-1", 1)
	eligibility := `{"name":"e1","type":"Microsoft.Authorization/RoleEligibilityScheduleRequests","properties":{"requestType":"AdminAssign","status":"Provisioned","targetRoleEligibilityScheduleId":"x","principalId":"p","scope":"` + pimSub + `"}}`
	// The next day: an hour's activation, deactivated twice.
	next := []string{
		pimRequest("a2", "SelfActivate", "Provisioned", "2026-01-21T10:00:00Z", afterDuration("2026-01-21T10:00:00Z", "PT1H")),
		pimRequest("d2", "SelfDeactivate", "Revoked", "2026-01-21T10:20:00Z", `{}`),
		pimRequest("d3", "SelfDeactivate", "Provisioned", "2026-01-21T10:40:00Z", `{}`),
	}
	res, err := runFiles(t, "azure-pim", imports.Options{Tenant: pimTenant, Known: imports.Known(known)},
		"requests.json\n"+"[\n"+deact+",\n"+standing+",\n"+eligibility+",\n"+strings.Join(next, ",\n")+"\n]")
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, p := range res.Problems {
		reasons = append(reasons, p.String())
	}
	got := lines(res.Events)
	if len(got) != 2 || !strings.Contains(got[0], `"time":"2026-01-21T10:00:00Z"`) || !strings.Contains(got[1], `"type":"azure.role_deactivated","time":"2026-01-21T10:20:00Z"`) ||
		len(reasons) != 4 ||
		!strings.Contains(reasons[0], "requests.json line 2: SelfDeactivate of eligibility "+bobsPIM+" at 2026-01-20T10:00:00Z: no activation") ||
		!strings.Contains(reasons[1], "line 6: activation of assignment standing-1, which the log holds as active") ||
		!strings.Contains(reasons[2], "line 10: AdminAssign request e1 is a role eligibility schedule request") ||
		!strings.Contains(reasons[3], "line 19: SelfDeactivate of eligibility "+bobsPIM+" at 2026-01-21T10:40:00Z: no activation") {
		t.Errorf("got %v and\n%s", got, strings.Join(reasons, "\n"))
	}
}

// TestPIMDurations reads the ISO 8601 durations PIM writes, and reports
// those of no fixed length or of another form.
func TestPIMDurations(t *testing.T) {
	start := time.Date(2026, 1, 20, 9, 0, 0, 0, time.UTC)
	good := map[string]time.Duration{
		"PT8H": 8 * time.Hour, "PT30M": 30 * time.Minute, "P1D": 24 * time.Hour, "P1DT2H": 26 * time.Hour,
		"PT1H30M15.5S": time.Hour + 30*time.Minute + 15500*time.Millisecond, "PT90S": 90 * time.Second, "P1W": 7 * 24 * time.Hour,
	}
	bad := []string{"P1M", "P1Y", "P", "PT", "8H", "PT1.5H", "-PT1H", "P1DT", "pt8h", "PT8", "P1H", "PT1M1H", "PT1H1H", "PT.5S",
		"PT1.S", "P T1H", "PT0S", "PT99999999999999999999H", "P106752D"}
	var recs []string
	for i, d := range slicesOf(good) {
		recs = append(recs, pimRequest(fmt.Sprintf("g%d", i), "SelfActivate", "Provisioned", "2026-01-20T09:00:00Z",
			afterDuration(start.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), d)))
	}
	for i, d := range bad {
		recs = append(recs, pimRequest(fmt.Sprintf("b%d", i), "SelfActivate", "Provisioned", "2026-01-20T09:00:00Z",
			afterDuration(start.Add(time.Duration(100+i)*time.Minute).Format(time.RFC3339), d)))
	}
	o := imports.Options{Tenant: pimTenant, Known: imports.Known(foldFile(t, "../../testdata/imports/azure-pim/known.ndjson"))}
	res, err := runFiles(t, "azure-pim", o, "requests.json\n"+strings.Join(recs, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[time.Time]time.Duration{}
	for _, ev := range res.Events {
		got[ev.Time] = ev.Until.Sub(ev.Time)
	}
	for i, d := range slicesOf(good) {
		if at := start.Add(time.Duration(i) * time.Minute); got[at] != good[d] {
			t.Errorf("%s: the activation lasts %v, want %v", d, got[at], good[d])
		}
	}
	if len(res.Events) != len(good) || len(res.Problems) != len(bad) {
		t.Errorf("%d activations and %d problems, want %d and %d: %v", len(res.Events), len(res.Problems), len(good), len(bad), res.Problems)
	}
	for i, p := range res.Problems {
		if want := fmt.Sprintf("duration %q is not an ISO 8601 duration", bad[i]); !strings.Contains(p.Reason, want) {
			t.Errorf("problem %d: %s, want %s", i, p.Reason, want)
		}
	}
}

// slicesOf returns a map's keys in order.
func slicesOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slicesSort(out)
	return out
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestLighthouseTenantFromTheExport: the definition's manageeTenantId is
// the tenant; a --tenant that contradicts it ends the import with an error
// naming both, and one that agrees (in any case) is the tenant of the
// delegations that do not say theirs.
func TestLighthouseTenantFromTheExport(t *testing.T) {
	const managee = "1c4e8f0a-5b2d-4e7f-9a31-6d8c2b7e4f15"
	_, err := runFiles(t, "lighthouse", imports.Options{Tenant: "contoso-tenant-id"}, "lighthouse/rest-assignments.json")
	if err == nil || !strings.Contains(err.Error(), managee) || !strings.Contains(err.Error(), "contoso-tenant-id") {
		t.Errorf("a contradicting --tenant: %v", err)
	}
	res, err := runFiles(t, "lighthouse", imports.Options{Tenant: strings.ToUpper(managee)}, "lighthouse/rest-assignments.json")
	if err != nil || len(res.Events) != 7 || len(res.Problems) != 0 {
		t.Fatalf("an agreeing --tenant: %v %v %v", err, lines(res.Events), res.Problems)
	}
	for _, ev := range res.Events {
		partner := "b7d3a9e2-4c18-4f6a-8e25-0a9c7d1f3b64"
		if strings.HasPrefix(ev.Assignment, "lighthouse-b95c0e3a") {
			partner = "4f7a2d6c-e9b3-4158-a0d7-3c6e8b1f5a29" // Northwind's, under --tenant
		}
		if !strings.EqualFold(ev.Tenant, managee) || ev.PrincipalTenant != partner {
			t.Errorf("%s", ev.AppendJSON(nil))
		}
	}
	// az's older output names no tenant: --tenant is needed, and said.
	res, err = runFiles(t, "lighthouse", imports.Options{}, "lighthouse/assignments.json")
	if err != nil || len(res.Events) != 0 || len(res.Problems) != 2 || !strings.Contains(res.Problems[0].Reason, "name it with --tenant") {
		t.Errorf("no tenant anywhere: %v %v %v", err, lines(res.Events), res.Problems)
	}
}

// TestLighthouseSnapshotsInAnyOrder imports the later snapshot again, and
// the earlier one after it: neither adds or removes anything.
func TestLighthouseSnapshotsInAnyOrder(t *testing.T) {
	known := "../../testdata/imports/lighthouse/known.ndjson"
	observed := func(s string) time.Time { at, _ := time.Parse(time.RFC3339, s); return at }
	res, err := runFiles(t, "lighthouse", imports.Options{ObservedAt: observed("2026-02-05T00:00:00Z"), Known: imports.Known(foldFile(t, known))}, "lighthouse/updated.json")
	if err != nil || len(res.Events) != 3 {
		t.Fatal(err, lines(res.Events))
	}
	after := lines(res.Events)
	var e *attribution.Engine = foldFile(t, known, after...)
	for _, c := range []struct{ file, at string }{{"lighthouse/updated.json", "2026-02-05T00:00:00Z"}, {"lighthouse/rest-assignments.json", "2026-01-12T06:00:00Z"}} {
		res, err := runFiles(t, "lighthouse", imports.Options{ObservedAt: observed(c.at), Known: imports.Known(e)}, c.file)
		if err != nil || len(res.Events) != 0 {
			t.Errorf("%s observed at %s, again: %v %v", c.file, c.at, err, lines(res.Events))
		}
		// The fourth delegation of the first snapshot names no tenant.
		if want := map[string]int{"lighthouse/updated.json": 0, "lighthouse/rest-assignments.json": 1}[c.file]; len(res.Problems) != want {
			t.Errorf("%s: %v", c.file, res.Problems)
		}
	}
}
