package collecttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The test world of testdata/ (internal/collect/testdata): Contoso, a
// customer with two subscriptions under a management-group tree, and
// Fabrikam, the partner that manages Contoso's first subscription through
// Azure Lighthouse.
const (
	Contoso  = "contoso-tenant-id"
	Fabrikam = "fabrikam-tenant-id"
	Sub1     = "7d1c2a4e-0000-4000-8000-000000000001"
	Sub2     = "7d1c2a4e-0000-4000-8000-000000000002"
	CloudOps = "9a8b7c6d-0000-4000-8000-00000000000c" // a Contoso group with a role
	FabOps   = "f98d86a2-4cc4-4e9d-ad47-b3e80a1bcdfc" // a Fabrikam group, delegated
)

// Paths of the world's lists.
const (
	EntitiesPath = "/providers/Microsoft.Management/getEntities"
	Sub1Path     = "/subscriptions/" + Sub1
	Sub2Path     = "/subscriptions/" + Sub2
	Assignments  = "/providers/Microsoft.Authorization/roleAssignments"
	Definitions  = "/providers/Microsoft.Authorization/roleDefinitions"
	Eligibility  = "/providers/Microsoft.Authorization/roleEligibilityScheduleInstances"
	Instances    = "/providers/Microsoft.Authorization/roleAssignmentScheduleInstances"
	Requests     = "/providers/Microsoft.Authorization/roleAssignmentScheduleRequests"
	Delegations  = "/providers/Microsoft.ManagedServices/registrationAssignments"
)

// MembersPath is the path of a group's members in Microsoft Graph.
func MembersPath(group string) string { return "/v1.0/groups/" + group + "/members" }

// Contoso's Power Platform: its environments, apps and flows.
const (
	DefaultEnv    = "Default-contoso-tenant-id"
	ProductionEnv = "3f1c9a2e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"
	Expenses      = "a1b2c3d4-0000-4000-8000-000000000001" // alice's, bob its co-owner
	Timesheets    = "a1b2c3d4-0000-4000-8000-000000000002" // carol's
	HelpDesk      = "a1b2c3d4-0000-4000-8000-000000000003" // carol's, in the default environment
)

// EnvironmentsPath is the path of the Power Platform admin API's list of
// environments (BAP).
const EnvironmentsPath = "/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments"

// AppsPath is the path of an environment's apps, FlowsPath of its flows,
// PermissionsPath of an app's role assignments.
func AppsPath(env string) string {
	return "/providers/Microsoft.PowerApps/scopes/admin/environments/" + env + "/apps"
}

func FlowsPath(env string) string {
	return "/providers/Microsoft.ProcessSimple/scopes/admin/environments/" + env + "/v2/flows"
}

func PermissionsPath(env, app string) string { return AppsPath(env) + "/" + app + "/permissions" }

// World is what the APIs hold on one day: the records each list answers,
// as the real APIs write them. A test changes it from day to day.
type World struct {
	Subs  map[string][]json.RawMessage // the subscriptions each tenant's credential sees
	Lists map[string][]json.RawMessage // by request path
	Users map[string][]json.RawMessage // by tenant
	Links map[string]json.RawMessage   // by tenant
	Costs map[string][]CostRow         // by subscription
	// Audit is the content of the Office 365 Management Activity API, by
	// tenant.
	Audit map[string][]AuditContent
	// Cmdlets is Contoso's Power Platform as the admin cmdlets print it
	// (Get-AdminPowerAppEnvironment, Get-AdminPowerApp,
	// Get-AdminPowerAppRoleAssignment, Get-AdminFlow): the export of the
	// same state as the lists the admin API answers. A test that changes
	// one changes the other.
	Cmdlets []json.RawMessage
}

// FirstDay reads the world's first day from dir (internal/collect/testdata).
func FirstDay(t testing.TB, dir string) *World {
	t.Helper()
	td := func(name string) []json.RawMessage { return Records(t, filepath.Join(dir, name)) }
	w := &World{
		Subs:  map[string][]json.RawMessage{Contoso: td("subscriptions-contoso.json"), Fabrikam: td("subscriptions-fabrikam.json")},
		Users: map[string][]json.RawMessage{Contoso: td("users-contoso.json"), Fabrikam: td("users-fabrikam.json")},
		Links: map[string]json.RawMessage{Contoso: td("link-contoso.json")[0], Fabrikam: td("link-fabrikam.json")[0]},
		Lists: map[string][]json.RawMessage{
			EntitiesPath:           td("entities.json"),
			Sub1Path + Assignments: td("roleassignments-0001.json"),
			Sub2Path + Assignments: td("roleassignments-0002.json"),
			Sub1Path + Definitions: td("roledefinitions.json"),
			Sub1Path + Eligibility: td("pim-eligibility.json"),
			Sub1Path + Instances:   td("pim-instances.json"),
			Sub1Path + Requests:    td("pim-requests.json"),
			Sub1Path + Delegations: td("delegations-0001.json"),
			MembersPath(CloudOps):  td("members-contoso-cloudops.json"),
			MembersPath(FabOps):    td("members-fabrikam-ops.json"),

			EnvironmentsPath:                           td("pp-environments.json"),
			AppsPath(ProductionEnv):                    td("pp-apps-production.json"),
			AppsPath(DefaultEnv):                       td("pp-apps-default.json"),
			FlowsPath(ProductionEnv):                   td("pp-flows-production.json"),
			PermissionsPath(ProductionEnv, Expenses):   td("pp-permissions-expenses.json"),
			PermissionsPath(ProductionEnv, Timesheets): td("pp-permissions-timesheets.json"),
			PermissionsPath(DefaultEnv, HelpDesk):      td("pp-permissions-helpdesk.json"),
		},
		Cmdlets: td("powerapps-cmdlets.json"),
	}
	var audit []struct {
		Created time.Time         `json:"contentCreated"`
		Records []json.RawMessage `json:"records"`
	}
	readJSON(t, filepath.Join(dir, "audit-content.json"), &audit)
	w.Audit = map[string][]AuditContent{}
	for _, c := range audit {
		w.Audit[Contoso] = append(w.Audit[Contoso], AuditContent{Created: c.Created, Records: c.Records})
	}
	readJSON(t, filepath.Join(dir, "costs.json"), &w.Costs)
	return w
}

func readJSON(t testing.TB, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// Serve makes the API answer the world's state.
func (w *World) Serve(api *API) {
	for tenant, subs := range w.Subs {
		api.SetSubscriptions(tenant, subs)
	}
	for path, recs := range w.Lists {
		api.SetList(path, recs)
	}
	// Fabrikam's own management-group tree is its root alone.
	api.SetTenantList(Fabrikam, EntitiesPath, []json.RawMessage{json.RawMessage(`{"id": "/providers/Microsoft.Management/managementGroups/fabrikam-tenant-id", "type": "Microsoft.Management/managementGroups", "name": "fabrikam-tenant-id", "properties": {"tenantId": "fabrikam-tenant-id", "displayName": "Tenant Root Group", "parent": null}}`)})
	for tenant, users := range w.Users {
		api.SetTenantList(tenant, "/v1.0/users", users)
	}
	for tenant, link := range w.Links {
		api.SetLink(tenant, link)
	}
	for sub, rows := range w.Costs {
		api.SetCosts(sub, rows)
	}
	for tenant, contents := range w.Audit {
		api.SetAudit(tenant, contents)
	}
}
