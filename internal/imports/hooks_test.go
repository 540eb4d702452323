package imports

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
)

// TestRoleDefinitionsNameCustomRoles: a role definitions list given with
// the assignments names the custom roles they give by GUID alone, and a
// file of definitions alone is an azure-roles export, not another shape.
func TestRoleDefinitionsNameCustomRoles(t *testing.T) {
	defs := `{"value": [{"properties": {"roleName": "Contoso Deployment Operator", "type": "CustomRole"}, "id": "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/0f9e8d7c-6b5a-4938-a271-605f4e3d2c1b", "type": "Microsoft.Authorization/roleDefinitions", "name": "0f9e8d7c-6b5a-4938-a271-605f4e3d2c1b"}]}`
	assigned := `{"value": [{"properties": {"roleDefinitionId": "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/0f9e8d7c-6b5a-4938-a271-605f4e3d2c1b", "principalId": "sp1", "principalType": "ServicePrincipal", "scope": "/subscriptions/s1", "createdOn": "2026-01-07T11:00:00Z"}, "id": "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/a1", "type": "Microsoft.Authorization/roleAssignments", "name": "a1"}]}`
	res, err := Run("azure-roles", []File{{"defs.json", strings.NewReader(defs)}, {"roles.json", strings.NewReader(assigned)}}, Options{Tenant: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, ev := range res.Events {
		if ev.Type == event.AzureRoleAssigned {
			roles = append(roles, ev.Role)
		}
	}
	if len(res.Problems) > 0 || len(roles) != 1 || roles[0] != "Contoso Deployment Operator" {
		t.Errorf("roles %v, problems %v: want the custom role named by its definition", roles, res.Problems)
	}
	// Without the definitions, the GUID is reported.
	res, _ = Run("azure-roles", []File{{"roles.json", strings.NewReader(assigned)}}, Options{Tenant: "t"})
	if len(res.Problems) != 1 {
		t.Errorf("without its definition, a custom role's assignment: problems %v", res.Problems)
	}
}

// TestCoveredScopes: a snapshot that covers some scopes removes only the
// assignments of those scopes that it does not list. Told nothing, it
// covers the subscriptions its rows are in, and, when it lists inherited
// rows, the management groups above them and the root.
func TestCoveredScopes(t *testing.T) {
	e := attribution.New(attribution.DefaultOptions())
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, ev := range []*event.Event{
		{Type: event.AccountCreated, Time: at, Tenant: "t", Account: "u1", Kind: event.AccountUser},
		{Type: event.AzureGroupPlaced, Time: at, Tenant: "t", Group: "mg1"},
		{Type: event.AzureGroupPlaced, Time: at, Tenant: "t", Group: "mg2"},
		{Type: event.AzureSubscriptionPlaced, Time: at, Tenant: "t", Subscription: "s1", Group: "mg1"},
		{Type: event.AzureRoleAssigned, Time: at, Tenant: "t", Assignment: "a1", Principal: "u1", PrincipalTenant: "t", Role: "Owner", Scope: "/subscriptions/s1", PIM: event.PIMActive},
		{Type: event.AzureRoleAssigned, Time: at, Tenant: "t", Assignment: "a2", Principal: "u1", PrincipalTenant: "t", Role: "Owner", Scope: "/subscriptions/s2/resourcegroups/rg", PIM: event.PIMActive},
		{Type: event.AzureRoleAssigned, Time: at, Tenant: "t", Assignment: "a4", Principal: "u1", PrincipalTenant: "t", Role: "Owner", Scope: "/providers/Microsoft.Management/managementGroups/mg1", PIM: event.PIMActive},
		{Type: event.AzureRoleAssigned, Time: at, Tenant: "t", Assignment: "a5", Principal: "u1", PrincipalTenant: "t", Role: "Owner", Scope: "/providers/Microsoft.Management/managementGroups/mg2", PIM: event.PIMActive},
	} {
		if res := e.Apply(ev); res.Outcome != attribution.Applied {
			t.Fatalf("%v", res.Refusal)
		}
	}
	row := func(name, scope string) string {
		return `{"properties": {"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "principalId": "u1", "principalType": "User", "scope": "` + scope + `", "createdOn": "2026-01-01T00:00:00Z"}, "name": "` + name + `"}`
	}
	onlyS3 := `{"value": [` + row("a3", "/subscriptions/s3") + `]}`
	whole, err := ScopesCovered([]string{"/"})
	if err != nil {
		t.Fatal(err)
	}
	s1 := `{"value": [` + row("a6", "/subscriptions/s1/resourceGroups/web") + `]}`
	s1Inherited := `{"value": [` + row("a6", "/subscriptions/s1/resourceGroups/web") + `, ` + row("a7", "/") + `]}`
	for _, tt := range []struct {
		name, file string
		covered    func(string) bool
		want       string
	}{
		{"another subscription's", onlyS3, nil, ""},
		{"s1's", s1, nil, "a1"},
		{"s1's, inherited", s1Inherited, nil, "a1 a4"},
		{"told what it covers", onlyS3, func(s string) bool {
			return strings.HasPrefix(s, "/subscriptions/s2") || strings.HasPrefix(s, "/subscriptions/s3")
		}, "a2"},
		{"told it read the whole tenant (--scope /)", onlyS3, whole, "a1 a2 a4 a5"},
		// A subscription whose last assignment is gone lists no row.
		{"no rows, told it read s2", `{"value": []}`, func(s string) bool { return strings.HasPrefix(s, "/subscriptions/s2") }, "a2"},
	} {
		res, err := Run("azure-roles", []File{{"roles.json", strings.NewReader(tt.file)}}, Options{Tenant: "t", Known: Known(e), ObservedAt: at.Add(time.Hour), Covered: tt.covered})
		if err != nil {
			t.Fatal(err)
		}
		var removed []string
		for _, ev := range res.Events {
			if ev.Type == event.AzureRoleRemoved {
				removed = append(removed, ev.Assignment)
			}
		}
		slices.Sort(removed)
		if got := strings.Join(removed, " "); got != tt.want {
			t.Errorf("a snapshot of %s: removed %q, want %q", tt.name, got, tt.want)
		}
		// What an inferred snapshot leaves unread is said.
		if said := len(res.Problems) == 1 && strings.Contains(res.Problems[0].String(), "not taken as removed"); said != (tt.covered == nil) {
			t.Errorf("a snapshot of %s: problems %v", tt.name, res.Problems)
		}
	}
}

// TestActivationIsNoStandingAssignment: a snapshot taken while a PIM
// activation runs lists it as a role assignment of its own name; it is the
// eligibility's activation, not an assignment that stands.
func TestActivationIsNoStandingAssignment(t *testing.T) {
	e := attribution.New(attribution.DefaultOptions())
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, ev := range []*event.Event{
		{Type: event.AccountCreated, Time: at, Tenant: "t", Account: "u1", Kind: event.AccountUser},
		{Type: event.AzureRoleAssigned, Time: at, Tenant: "t", Assignment: "elig-1", Principal: "u1", PrincipalTenant: "t", Role: "Owner", Scope: "/subscriptions/s1", PIM: event.PIMEligible},
		{Type: event.AzureRoleActivated, Time: at.Add(time.Hour), Tenant: "t", Assignment: "elig-1", Until: at.Add(9 * time.Hour)},
	} {
		if res := e.Apply(ev); res.Outcome != attribution.Applied {
			t.Fatalf("%v", res.Refusal)
		}
	}
	during := `[{"name": "ed9b8180", "principalId": "u1", "principalType": "User", "roleDefinitionName": "Owner", "scope": "/subscriptions/s1", "createdOn": "2026-01-01T01:00:00Z"},
 {"name": "a2", "principalId": "u1", "principalType": "User", "roleDefinitionName": "Reader", "scope": "/subscriptions/s1", "createdOn": "2026-01-01T01:00:00Z"}]`
	res, err := Run("azure-roles", []File{{"roles.json", strings.NewReader(during)}}, Options{Tenant: "t", Known: Known(e), ObservedAt: at.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var assigned []string
	for _, ev := range res.Events {
		if ev.Type == event.AzureRoleAssigned {
			assigned = append(assigned, ev.Assignment)
		}
	}
	if !slices.Equal(assigned, []string{"a2"}) || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].String(), "activation") {
		t.Errorf("assigned %v, problems %v; want a2 only, and the activation reported", assigned, res.Problems)
	}
}
