package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// The Power Platform admin API, read as the admin cmdlets
// (Microsoft.PowerApps.Administration.PowerShell) read it: the tenant's
// environments, each environment's apps and flows, and each app's
// permissions (its role assignments). The cmdlets turn each REST object
// into an object of their own — EnvironmentName, AppName, Owner,
// RoleType… — and that is what pal import powerapps reads. The collector
// turns each page into the same objects, field for field as the cmdlets'
// CreateEnvironmentObject, CreateAppObject, CreateFlowObject and
// CreateAppRoleAssignmentObject build them, the REST object kept whole
// under Internal as they keep it: a record fetched and the same record
// exported with Get-AdminPowerApp… | ConvertTo-Json become the same event.

// The API versions the admin cmdlets ask for.
const (
	bapVersion       = "2020-10-01"
	powerAppsVersion = "2016-11-01"
)

// powerApps lists the tenant's environments, then each one's apps and
// flows, then each app's permissions; as many at once as the tenant's
// request slots allow. The flows' permissions are not read: pal takes a
// flow's owner from its creator, and its co-owners from the audit.
func (r *run) powerApps(ctx context.Context, t *target, st *counter) ([]page, error) {
	c := t.own
	raw, err := withSlot(ctx, t, func() ([]page, error) {
		return c.bap.list(ctx, "/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments?api-version="+bapVersion, st.page)
	})
	if err != nil {
		return nil, err
	}
	out, envs, err := cmdletPages(raw, environmentObject)
	if err != nil {
		return nil, err
	}
	// Each environment's apps and flows; the apps, by environment, for
	// their permissions.
	apps := make([][]string, len(envs))
	lists, err := eachScope(ctx, t, indices(len(envs)), func(i int) ([]page, error) {
		env := url.PathEscape(envs[i])
		rawApps, err := c.powerApps.list(ctx, "/providers/Microsoft.PowerApps/scopes/admin/environments/"+env+"/apps?api-version="+powerAppsVersion, st.page)
		if err != nil {
			return nil, err
		}
		appPages, names, err := cmdletPages(rawApps, appObject)
		if err != nil {
			return nil, err
		}
		apps[i] = names
		rawFlows, err := c.flow.list(ctx, "/providers/Microsoft.ProcessSimple/scopes/admin/environments/"+env+"/v2/flows?api-version="+powerAppsVersion, st.page)
		if err != nil {
			return nil, err
		}
		flowPages, _, err := cmdletPages(rawFlows, flowObject)
		return append(appPages, flowPages...), err
	})
	if err != nil {
		return nil, err
	}
	type app struct{ env, name string }
	var all []app
	for i, names := range apps {
		for _, n := range names {
			all = append(all, app{envs[i], n})
		}
	}
	roles, err := eachScope(ctx, t, all, func(a app) ([]page, error) {
		env := url.PathEscape(a.env)
		q := url.Values{"api-version": {powerAppsVersion}, "$filter": {"environment eq '" + a.env + "'"}}
		raw, err := c.powerApps.list(ctx, "/providers/Microsoft.PowerApps/scopes/admin/environments/"+env+"/apps/"+url.PathEscape(a.name)+"/permissions?"+q.Encode(), st.page)
		if err != nil {
			return nil, err
		}
		pgs, _, err := cmdletPages(raw, appRoleObject)
		return pgs, err
	})
	if err != nil {
		return nil, err
	}
	return append(append(out, lists...), roles...), nil
}

// indices returns 0, 1, … n-1.
func indices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
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

// cmdletPages turns pages of a list ({"value": [...], "nextLink": …})
// into pages of the cmdlet's objects (a JSON array, one object a line), and
// returns the names of the objects. A page that is not a list fails the
// source: the API answered something else than it does.
func cmdletPages(raw []page, object cmdletObject) ([]page, []string, error) {
	var out []page
	var names []string
	for _, pg := range raw {
		var list struct {
			Value []json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(bytes.TrimPrefix(pg.body, []byte("\xef\xbb\xbf")), &list); err != nil {
			return nil, nil, fmt.Errorf("%s: not a list of the Power Platform admin API ({\"value\": [...]}): %w", pg.name, err)
		}
		var b bytes.Buffer
		b.WriteString("[")
		n := 0
		for i, v := range list.Value {
			var o restObject
			if err := json.Unmarshal(v, &o); err != nil {
				return nil, nil, fmt.Errorf("%s: value %d is not an object: %w", pg.name, i+1, err)
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
		out = append(out, page{name: pg.name, body: b.Bytes()})
	}
	return out, names, nil
}

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
