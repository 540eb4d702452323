package imports_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/imports"
)

// lowerGUID is a role definition's GUID as Azure writes it.
var lowerGUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestBuiltinRolesAreTheWholeReference checks the table of built-in roles
// is Microsoft's whole list, not a selection: lower-case GUIDs, a name for
// each and no name twice, several hundred of them, and roles beyond the
// old hand-picked selection known by the GUIDs the reference gives them.
func TestBuiltinRolesAreTheWholeReference(t *testing.T) {
	roles := imports.BuiltinRoles()
	byName := map[string]string{}
	for guid, name := range roles {
		if !lowerGUID.MatchString(guid) {
			t.Errorf("%q: %q is not a lower-case GUID", name, guid)
		}
		if name == "" || strings.TrimSpace(name) != name {
			t.Errorf("%s: the name %q is empty or padded", guid, name)
		}
		if other, ok := byName[name]; ok {
			t.Errorf("%q names both %s and %s", name, other, guid)
		}
		byName[name] = guid
	}
	if len(roles) < 500 {
		t.Errorf("%d built-in roles; the reference lists about 500", len(roles))
	}
	for name, guid := range map[string]string{
		"Storage Blob Data Contributor":              "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
		"Key Vault Administrator":                    "00482a5a-887f-4fb3-b363-3b7fe8e74483",
		"Storage Queue Data Contributor":             "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
		"Storage Table Data Contributor":             "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
		"Key Vault Crypto Service Encryption User":   "e147488a-f6f5-4113-8e2d-b22465e65bf6",
		"Monitoring Metrics Publisher":               "3913510d-42f4-4e42-8a64-420c390055eb",
		"Azure Kubernetes Service Cluster User Role": "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
		"Azure Service Bus Data Sender":              "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
		"Azure Event Hubs Data Receiver":             "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
		"Desktop Virtualization User":                "1d18fff3-a72a-46b5-b4a9-0b38a3cd7e63",
		"Managed Application Publisher Operator":     "b9331d33-8a36-4f8c-b097-4f54124fdb44",
		"Foundry User":                               "53ca6127-db72-4b80-b1b0-d745d6d5456d",
	} {
		if got := roles[guid]; got != name {
			t.Errorf("%s names %q, want %q", guid, got, name)
		}
	}
}
