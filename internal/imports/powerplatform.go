package imports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The Power Platform admin API's lists, read as the admin cmdlets
// (Microsoft.PowerApps.Administration.PowerShell) read them. The cmdlets
// turn each REST object into an object of their own — EnvironmentName,
// AppName, Owner, RoleType… — and that is what the powerapps source
// reads. CmdletObjects turns a page of a list into the same objects,
// field for field as the cmdlets' CreateEnvironmentObject,
// CreateAppObject, CreateFlowObject and CreateAppRoleAssignmentObject
// build them, the REST object kept whole under Internal as they keep it:
// pal collect reads the API through it, and pal import powerapps reads a
// list saved from the API (az rest, a script) through it too, so that a
// record read from the API and the same record exported with
// Get-AdminPowerApp… | ConvertTo-Json become the same event.

// PowerPlatformList names a list of the admin API.
type PowerPlatformList int

// The lists the cmdlets read.
const (
	Environments PowerPlatformList = iota
	Apps
	Flows
	AppPermissions
)

// powerPlatformTypes are the REST types of each list's objects.
var powerPlatformTypes = map[string]PowerPlatformList{
	"microsoft.businessappplatform/scopes/environments": Environments,
	"microsoft.powerapps/scopes/admin/apps":             Apps,
	"microsoft.powerapps/apps":                          Apps,
	"microsoft.processsimple/environments/flows":        Flows,
	"microsoft.powerapps/apps/permissions":              AppPermissions,
}

// CmdletObjects turns a page of a list ({"value": [...], "nextLink": …})
// into the cmdlet's objects (a JSON array, one object a line), and returns
// the names of the objects (the environments', the apps'). A page that is
// not a list is an error.
func CmdletObjects(list PowerPlatformList, page []byte) ([]byte, []string, error) {
	var l struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(bytes.TrimPrefix(page, []byte("\xef\xbb\xbf")), &l); err != nil {
		return nil, nil, fmt.Errorf("not a list of the Power Platform admin API ({\"value\": [...]}): %w", err)
	}
	object := []cmdletObject{environmentObject, appObject, flowObject, appRoleObject}[list]
	var names []string
	var b bytes.Buffer
	b.WriteString("[")
	n := 0
	for i, v := range l.Value {
		var o restObject
		if err := json.Unmarshal(v, &o); err != nil {
			return nil, nil, fmt.Errorf("value %d is not an object: %w", i+1, err)
		}
		members, name, ok := object(o, v)
		if !ok {
			continue
		}
		if n > 0 {
			b.WriteString(",")
		}
		n++
		b.WriteString("\n{")
		for j, m := range append(members, member{"Internal", v}) {
			if j > 0 {
				b.WriteString(",")
			}
			key, _ := json.Marshal(m.name)
			b.Write(key)
			b.WriteString(":")
			if m.value == nil {
				b.WriteString("null")
			} else {
				b.Write(m.value)
			}
		}
		b.WriteString("}")
		if name != "" {
			names = append(names, name)
		}
	}
	b.WriteString("\n]\n")
	return b.Bytes(), names, nil
}

// cmdletLists turns a file of the admin API's lists into the cmdlets'
// objects (restatePages); a file of anything else is returned as it is.
func cmdletLists(data []byte) []byte {
	return restatePages(data, func(page []byte) ([]byte, bool) {
		var l struct {
			Value []struct {
				Type string `json:"type"`
			} `json:"value"`
		}
		switch {
		case json.Unmarshal(page, &l) != nil || l.Value == nil:
			return nil, false
		case len(l.Value) == 0:
			// A page of no objects: an environment with no apps.
			return []byte("[]"), true
		}
		list, ok := powerPlatformTypes[strings.ToLower(l.Value[0].Type)]
		if !ok {
			return nil, false
		}
		objects, _, err := CmdletObjects(list, page)
		return objects, err == nil
	})
}

// restObject is an object of a Power Platform list, as its members were
// written.
type restObject map[string]json.RawMessage

// at returns the value at a dot-separated path of members ("properties.
// owner"), as written; nil when there is none.
func (o restObject) at(path string) json.RawMessage {
	cur := o
	keys := strings.Split(path, ".")
	for i, k := range keys {
		v, ok := cur[k]
		if !ok {
			return nil
		}
		if i == len(keys)-1 {
			return v
		}
		cur = nil
		if json.Unmarshal(v, &cur) != nil || cur == nil {
			return nil
		}
	}
	return nil
}

// str returns the string at a path; "" when there is none.
func (o restObject) str(path string) string {
	var s string
	json.Unmarshal(o.at(path), &s)
	return s
}

// member is a member of a cmdlet's object, in the order the cmdlet adds
// it: a value as the API wrote it, nil for PowerShell's $null.
type member struct {
	name  string
	value json.RawMessage
}

// cmdletObject returns a cmdlet's object of a REST object, and its name (the
// environment's, the app's); ok false where the cmdlet makes none.
type cmdletObject func(o restObject, raw json.RawMessage) (members []member, name string, ok bool)

// environmentObject is Get-AdminPowerAppEnvironment's object
// (CreateEnvironmentObject, without the CDS database's type, which the
// cmdlet gives as Unknown unless asked).
func environmentObject(o restObject, _ json.RawMessage) ([]member, string, bool) {
	return []member{
		{"EnvironmentName", o.at("name")},
		{"DisplayName", o.at("properties.displayName")},
		{"IsDefault", o.at("properties.isDefault")},
		{"Location", o.at("location")},
		{"CreatedTime", o.at("properties.createdTime")},
		{"CreatedBy", o.at("properties.createdBy")},
		{"LastModifiedTime", o.at("properties.lastModifiedTime")},
		{"LastModifiedBy", o.at("properties.lastModifiedBy.userPrincipalName")},
		{"CreationType", o.at("properties.creationType")},
		{"EnvironmentType", o.at("properties.environmentSku")},
		{"CommonDataServiceDatabaseProvisioningState", o.at("properties.provisioningState")},
		{"CommonDataServiceDatabaseType", json.RawMessage(`"Unknown"`)},
	}, o.str("name"), true
}

// appObject is Get-AdminPowerApp's object (CreateAppObject).
func appObject(o restObject, _ json.RawMessage) ([]member, string, bool) {
	return []member{
		{"AppName", o.at("name")},
		{"DisplayName", o.at("properties.displayName")},
		{"CreatedTime", o.at("properties.createdTime")},
		{"Owner", o.at("properties.owner")},
		{"LastModifiedTime", o.at("properties.lastModifiedTime")},
		{"EnvironmentName", o.at("properties.environment.name")},
		{"UnpublishedAppDefinition", o.at("properties.unpublishedAppDefinition")},
		{"IsFeaturedApp", o.at("properties.isFeaturedApp")},
		{"IsHeroApp", o.at("properties.isHeroApp")},
		{"BypassConsent", o.at("properties.bypassConsent")},
	}, o.str("name"), true
}

// flowObject is Get-AdminFlow's object (CreateFlowObject): Enabled is
// whether the flow's state is Started.
func flowObject(o restObject, _ json.RawMessage) ([]member, string, bool) {
	enabled := json.RawMessage("false")
	if o.str("properties.state") == "Started" {
		enabled = json.RawMessage("true")
	}
	return []member{
		{"FlowName", o.at("name")},
		{"Enabled", enabled},
		{"DisplayName", o.at("properties.displayName")},
		{"UserType", o.at("properties.userType")},
		{"CreatedTime", o.at("properties.createdTime")},
		{"CreatedBy", o.at("properties.creator")},
		{"LastModifiedTime", o.at("properties.lastModifiedTime")},
		{"EnvironmentName", o.at("properties.environment.name")},
	}, o.str("name"), true
}

// appRoleObject is Get-AdminPowerAppRoleAssignment's object
// (CreateAppRoleAssignmentObject): a tenant-wide share names the tenant as
// its principal and no name; a group's has no e-mail; the cmdlet makes no
// object of any other kind of principal. The app and environment are
// read from the permission's scope, as the cmdlet reads them.
func appRoleObject(o restObject, _ json.RawMessage) ([]member, string, bool) {
	kind := o.str("properties.principal.type")
	name, email, id := o.at("properties.principal.displayName"), o.at("properties.principal.email"), o.at("properties.principal.id")
	switch kind {
	case "Tenant":
		name, email, id = nil, nil, o.at("properties.principal.tenantId")
	case "Group":
		email = nil
	case "User":
	default:
		return nil, "", false
	}
	scope := o.str("properties.scope")
	text := func(s string) json.RawMessage {
		b, _ := json.Marshal(s)
		return b
	}
	return []member{
		{"RoleId", o.at("id")},
		{"RoleName", o.at("name")},
		{"PrincipalDisplayName", name},
		{"PrincipalEmail", email},
		{"PrincipalObjectId", id},
		{"PrincipalType", o.at("properties.principal.type")},
		{"RoleType", o.at("properties.roleName")},
		{"AppName", text(segmentAfter(scope, "/apps/"))},
		{"EnvironmentName", text(segmentAfter(scope, "/environments/"))},
	}, "", true
}

// segmentAfter returns the path segment after sep (in lower case) in a
// scope, as the cmdlet splits it: ((scope -split sep)[1] -split "/")[0];
// PowerShell's -split matches without regard to case.
func segmentAfter(scope, sep string) string {
	i := strings.Index(strings.ToLower(scope), sep)
	if i < 0 {
		return ""
	}
	seg, _, _ := strings.Cut(scope[i+len(sep):], "/")
	return seg
}
