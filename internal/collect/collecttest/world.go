package collecttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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

// World is what the APIs hold on one day: the records each list answers,
// as the real APIs write them. A test changes it from day to day.
type World struct {
	Subs  map[string][]json.RawMessage // the subscriptions each tenant's credential sees
	Lists map[string][]json.RawMessage // by request path
	Users map[string][]json.RawMessage // by tenant
	Links map[string]json.RawMessage   // by tenant
	Costs map[string][]CostRow         // by subscription
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
		},
	}
	data, err := os.ReadFile(filepath.Join(dir, "costs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &w.Costs); err != nil {
		t.Fatal(err)
	}
	return w
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
}
