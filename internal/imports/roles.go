package imports

import (
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
)

// builtinRoles names Azure's built-in roles by their definition's GUID,
// for a row whose roleDefinitionName is empty (a role deleted since, or an
// export that leaves it out).
var builtinRoles = map[string]string{
	"8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
	"b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
	"acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
	"18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
}

func init() {
	register(Source{Name: "azure-roles", NeedsTenant: true, read: readRoles,
		About: "az role assignment list --all -o json (principalId, principalType, roleDefinitionName, roleDefinitionId, scope, createdOn, name): role assignments, with the accounts and groups they name"})
}

// lastSegment returns what follows a path's last "/".
func lastSegment(s string) string { return s[strings.LastIndex(s, "/")+1:] }

// canonicalScope reads a scope as the log writes it; the tenant root
// management group, whose ID is the tenant's, is the root "/".
func canonicalScope(scope, tenant string) (string, error) {
	sc, err := event.ParseScope(scope)
	if err != nil {
		return "", err
	}
	if sc.Kind == event.ScopeManagementGroup && strings.EqualFold(sc.Group, tenant) {
		return "/", nil
	}
	return sc.Path, nil
}

// readRoles turns a snapshot of a tenant's role assignments into what
// changed since the log: assignments made (at their createdOn), with the
// principals the log does not know, and assignments gone (at the
// observation).
func readRoles(each iter.Seq[record], o *Options, b *builder) {
	recs := slices.Collect(each)
	// Roles named in some rows name them in the others.
	names := map[string]string{}
	for id, n := range builtinRoles {
		names[id] = n
	}
	for _, r := range recs {
		if n := r.str("roleDefinitionName"); n != "" {
			names[strings.ToLower(lastSegment(r.str("roleDefinitionId")))] = n
		}
	}
	type row struct {
		rec                                      record
		id, principal, kind, role, scope, parent string
		at                                       time.Time
	}
	var rows []row
	var times []time.Time
	for _, r := range recs {
		x := row{rec: r, principal: r.str("principalId")}
		x.id = r.str("name")
		if x.id == "" {
			x.id = lastSegment(r.str("id"))
		}
		x.role = r.str("roleDefinitionName")
		if x.role == "" {
			x.role = names[strings.ToLower(lastSegment(r.str("roleDefinitionId")))]
		}
		var err error
		switch x.scope, err = canonicalScope(r.str("scope"), o.Tenant); {
		case x.id == "" || x.principal == "":
			b.problem(r.problem("a role assignment needs its name (ID) and principalId"))
			continue
		case x.role == "":
			b.problem(r.problem("the role of assignment %s is neither named nor a built-in role's roleDefinitionId (%s)", x.id, r.str("roleDefinitionId")))
			continue
		case err != nil:
			b.problem(r.problem("assignment %s: scope %v", x.id, err))
			continue
		}
		var ok bool
		if x.kind, ok = principalKind(r.str("principalType"), r.str("principalName")); !ok {
			b.problem(r.problem("assignment %s: principal type %q is not User, Group or ServicePrincipal", x.id, r.str("principalType")))
			continue
		}
		if t, ok := parseTime(r.str("createdOn")); ok {
			x.at = t
			times = append(times, t)
		}
		if t, ok := parseTime(r.str("updatedOn")); ok {
			times = append(times, t)
		}
		rows = append(rows, x)
	}
	seen := observed(o, times)
	live := map[string]bool{}
	if b.known != nil {
		for _, a := range b.known.LiveAssignments(o.Tenant) {
			live[a.ID] = true
		}
	}
	inSnapshot := map[string]bool{}
	made := map[string]bool{}
	for _, x := range rows {
		inSnapshot[x.id] = true
		if live[x.id] {
			continue
		}
		at := x.at
		if at.IsZero() {
			at = b.notBefore(o.Tenant, seen)
		}
		if b.known != nil {
			// Not before the log knows its principal.
			if created, ok := b.known.AccountCreated(o.Tenant, x.principal); ok && at.Before(created) {
				at = created
			}
		}
		if !made[x.principal] {
			made[x.principal] = true
			b.principal(o.Tenant, x.principal, x.kind, x.rec.str("principalName"), at)
		}
		b.add(event.Event{Type: event.AzureRoleAssigned, Time: at, Tenant: o.Tenant, Assignment: x.id, Principal: x.principal,
			PrincipalTenant: o.Tenant, Role: x.role, Scope: x.scope, PIM: event.PIMActive}, o.Tenant, x.id)
	}
	if b.known == nil {
		return
	}
	for _, a := range b.known.LiveAssignments(o.Tenant) {
		// Lighthouse delegations and PIM eligibility come from exports of
		// their own: only this export's kind of assignment can vanish here.
		if !inSnapshot[a.ID] && a.PrincipalTenant == o.Tenant && !a.Eligible {
			b.add(event.Event{Type: event.AzureRoleRemoved, Time: b.notBefore(o.Tenant, seen), Tenant: o.Tenant, Assignment: a.ID}, o.Tenant, a.ID, "removed")
		}
	}
}

// groupKind is the kind principalKind gives a group.
const groupKind = "group"

// principalKind reads an assignment's principal type: an account's kind,
// or groupKind; false for a type that cannot hold a role here.
func principalKind(typ, name string) (string, bool) {
	switch {
	case strings.EqualFold(typ, "User") && strings.Contains(strings.ToUpper(name), "#EXT#"):
		return event.AccountGuest, true
	case strings.EqualFold(typ, "User"):
		return event.AccountUser, true
	case strings.EqualFold(typ, "ServicePrincipal"):
		return event.AccountServicePrincipal, true
	case strings.EqualFold(typ, "Group"), strings.EqualFold(typ, "ForeignGroup"):
		return groupKind, true
	}
	return "", false
}

// principal adds the account or group an assignment names, when the log
// does not know it.
func (b *builder) principal(tenant, id, kind, name string, at time.Time) {
	switch {
	case b.knows(tenant, id):
	case kind == groupKind:
		b.add(event.Event{Type: event.GroupCreated, Time: at, Tenant: tenant, Group: id, Name: name}, tenant, id)
	default:
		b.add(event.Event{Type: event.AccountCreated, Time: at, Tenant: tenant, Account: id, Kind: kind, Name: name}, tenant, id)
	}
}

// knows reports whether the log knows an account or group of a tenant.
func (b *builder) knows(tenant, id string) bool {
	return b.known != nil && (b.known.AccountExists(tenant, id) || b.known.IsGroup(tenant, id))
}
