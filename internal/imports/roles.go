package imports

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
)

func init() {
	register(Source{Name: "azure-roles", Signature: []string{"principalId", "ObjectType"}, NeedsTenant: true, read: readRoles,
		About: "az role assignment list --all -o json, the REST roleAssignments list, or Get-AzRoleAssignment | ConvertTo-Json (principalId/ObjectId, principalType, roleDefinitionName, roleDefinitionId, scope, createdOn, name): role assignments, with the accounts and groups they name; or az role assignment list-changelogs (action Granted/Revoked, timestamp): when each was made and ended"})
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

// readRoles reads role assignments: a snapshot (az role assignment list)
// or a changelog (az role assignment list-changelogs), told apart by the
// changelog's action on each row.
func readRoles(each iter.Seq[record], o *Options, b *builder) {
	recs := slices.Collect(each)
	// Roles named in some rows name them in the others.
	names := map[string]string{}
	for id, n := range builtinRoles {
		names[id] = n
	}
	for _, r := range recs {
		if n := namedRole(r); n != "" {
			names[strings.ToLower(lastSegment(r.str("roleDefinitionId")))] = n
		}
		if isRoleDefinition(r) && r.str("roleName") != "" {
			names[strings.ToLower(r.str("name"))] = r.str("roleName")
		}
	}
	var snapshot, changes []record
	for _, r := range recs {
		switch {
		case isRoleDefinition(r):
		case r.str("action") != "":
			changes = append(changes, r)
		default:
			snapshot = append(snapshot, r)
		}
	}
	if len(snapshot) > 0 || len(changes) == 0 && o.Covered != nil {
		// A snapshot of no rows still says what it covers is empty
		// (--scope, or the scopes pal collect read).
		readRoleSnapshot(snapshot, names, o, b)
	}
	if len(changes) > 0 {
		readRoleChanges(changes, names, o, b)
	}
}

// isRoleDefinition reports whether a record is a role definition (the REST
// roleDefinitions list, or az role definition list): it names a tenant's
// custom roles, which its assignments give by GUID alone.
func isRoleDefinition(r record) bool {
	return strings.EqualFold(r.str("type"), "Microsoft.Authorization/roleDefinitions")
}

// namedRole is the role a row names: "" when it names none (a deleted
// role, which the changelog calls "N/A").
func namedRole(r record) string {
	if n := r.str("roleDefinitionName", "roleName"); n != "N/A" {
		return n
	}
	return ""
}

// roleOf is the role of a row: named, or known by its definition's GUID.
func roleOf(r record, names map[string]string) string {
	return cmp.Or(namedRole(r), names[strings.ToLower(lastSegment(r.str("roleDefinitionId")))])
}

// roleKey identifies an assignment by what it gives: a changelog names no
// assignment, only its principal, role and scope.
func roleKey(principal, role, scope string) string {
	return principal + "\x00" + strings.ToLower(role) + "\x00" + scope
}

// liveAssignments returns the log's live assignments of a tenant: all of
// them, and those of its own principals that this export gives
// (Lighthouse delegations and PIM eligibility come from exports of their
// own).
func (b *builder) liveAssignments(tenant string) (all, own []azure.LiveAssignment) {
	if b.known == nil {
		return nil, nil
	}
	all = b.known.LiveAssignments(tenant)
	for _, a := range all {
		if a.PrincipalTenant == tenant && !a.Eligible {
			own = append(own, a)
		}
	}
	return all, own
}

// byRoleKey lists assignments' IDs by roleKey.
func byRoleKey(as []azure.LiveAssignment) map[string][]string {
	out := map[string][]string{}
	for _, a := range as {
		k := roleKey(a.Principal, a.Role, a.Scope)
		out[k] = append(out[k], a.ID)
	}
	return out
}

// Covered says which scopes a snapshot of role assignments covers, given
// the scopes it read: each of them and every scope below it ("/" the
// whole tenant); and, when the listing shows what lies above them
// (inherited: az role assignment list --include-inherited, and the list
// at a management group's atScope()), the root and the management groups
// that hold them as the log places them (groups and subscriptions, by
// lower-case name: AzureLog.Placements), those alone. An assignment
// elsewhere that the snapshot leaves out was not read, not removed.
func Covered(read []string, inherited bool, groups, subscriptions map[string]string) func(string) bool {
	read = slices.Clone(read)
	above := map[string]bool{}
	climb := func(g string) {
		for g = strings.ToLower(g); g != "" && !above[groupScope(g)]; g = groups[g] {
			above[groupScope(g)] = true
		}
	}
	for i, p := range read {
		sc, err := event.ParseScope(p)
		if err != nil {
			read[i] = strings.ToLower(p)
			continue
		}
		read[i] = sc.Path
		switch {
		case !inherited:
		case sc.Subscription != "":
			climb(subscriptions[strings.ToLower(sc.Subscription)])
		case sc.Kind == event.ScopeManagementGroup:
			climb(groups[strings.ToLower(sc.Group)])
		}
	}
	if inherited {
		above["/"] = true
	}
	return func(scope string) bool {
		s := strings.ToLower(scope)
		if sc, err := event.ParseScope(scope); err == nil {
			s = sc.Path
		}
		return above[s] || slices.ContainsFunc(read, func(p string) bool {
			return p == "/" || s == p || strings.HasPrefix(s, p+"/")
		})
	}
}

// coveredBy says which scopes a snapshot of role assignments covers, from
// the scopes of its rows (Covered): the subscriptions they are in, since
// az role assignment list, and its REST call, read one subscription at a
// time; and what lies above them when some rows are inherited (a
// management group's, the root's).
func (b *builder) coveredBy(tenant string, scopes []string) func(string) bool {
	var subs []string
	inherited := false
	for _, scope := range scopes {
		sc, err := event.ParseScope(scope)
		switch {
		case err != nil:
		case sc.Subscription != "":
			if sub := "/subscriptions/" + sc.Subscription; !slices.Contains(subs, sub) {
				subs = append(subs, sub)
			}
		default:
			inherited = true
		}
	}
	var groups, placed map[string]string
	if b.known != nil {
		groups, placed = b.known.Placements(tenant)
	}
	return Covered(subs, inherited, groups, placed)
}

// ScopesCovered says what a snapshot of role assignments read whole covers,
// given the scopes it read (pal import --scope): each of them and every
// scope below it; "/" the whole tenant.
func ScopesCovered(scopes []string) (func(string) bool, error) {
	for _, s := range scopes {
		if _, err := event.ParseScope(s); err != nil {
			return nil, err
		}
	}
	return Covered(scopes, false, nil, nil), nil
}

// groupScope is the path of a management group.
func groupScope(g string) string {
	return "/providers/microsoft.management/managementgroups/" + strings.ToLower(g)
}

// readRoleSnapshot turns a snapshot of a tenant's role assignments into
// what changed since the log: assignments made (at their createdOn), with
// the principals the log does not know, and assignments gone (at the
// observation). An assignment a changelog added is the snapshot's row
// that gives the same role to the same principal at the same scope.
func readRoleSnapshot(recs []record, names map[string]string, o *Options, b *builder) {
	type row struct {
		rec                                      record
		id, principal, kind, role, scope, parent string
		at                                       time.Time
	}
	var rows []row
	var times []time.Time
	for _, r := range recs {
		x := row{rec: r, principal: r.str("principalId", "ObjectId")}
		x.id = cmp.Or(r.str("name", "RoleAssignmentName"), lastSegment(r.str("id", "RoleAssignmentId")))
		x.role = roleOf(r, names)
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
		if x.kind, ok = principalKind(r.str("principalType", "ObjectType"), r.str("principalName", "SignInName")); !ok {
			b.problem(r.problem("assignment %s: principal type %q is not User, Group or ServicePrincipal", x.id, r.str("principalType", "ObjectType")))
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
	// Any live assignment is one the snapshot may list; only the tenant's
	// own principals' may vanish from it, and only those made before it
	// was observed.
	all, ownLive := b.liveAssignments(o.Tenant)
	byKey := byRoleKey(ownLive)
	live, own := map[string]bool{}, map[string]bool{}
	// A PIM activation is a role assignment while it runs, which a
	// snapshot lists under a name of its own: the role an eligible
	// assignment gives, to the same principal at the same scope.
	eligible := map[string]bool{}
	for _, a := range all {
		live[a.ID] = true
		if a.Eligible && a.PrincipalTenant == o.Tenant {
			eligible[roleKey(a.Principal, a.Role, a.Scope)] = true
		}
	}
	covered := o.Covered
	if covered == nil {
		scopes := make([]string, len(rows))
		for i, x := range rows {
			scopes[i] = x.scope
		}
		covered = b.coveredBy(o.Tenant, scopes)
	}
	var outside []string
	for _, a := range ownLive {
		switch {
		case a.From.After(seen):
		case covered(a.Scope):
			own[a.ID] = true
		case o.Covered == nil:
			outside = append(outside, a.Scope)
		}
	}
	if len(outside) > 0 {
		slices.Sort(outside)
		b.problems = append(b.problems, Problem{Reason: fmt.Sprintf("%d assignments of the log are at scopes this snapshot has no rows in (%s): they are not taken as removed, since it did not read there; a snapshot of their subscriptions says whether they still hold",
			len(outside), strings.Join(slices.Compact(outside), ", "))})
	}
	inSnapshot := map[string]bool{}
	for _, x := range rows {
		inSnapshot[x.id] = true
	}
	// The assignments made, each at its instant; a principal the log does
	// not know is created at the earliest of its own, whichever row comes
	// first in the file.
	type made struct {
		row
		at time.Time
	}
	var adds []made
	first := map[string]made{}
	for _, x := range rows {
		if live[x.id] {
			continue
		}
		if b.known != nil {
			if end, ok := b.known.AssignmentEnd(o.Tenant, x.id); ok {
				// An older snapshot, imported after the assignment ended,
				// adds nothing; one observed after its end contradicts it.
				if !end.After(seen) {
					b.problem(x.rec.problem("assignment %s ended at %s, yet this snapshot, observed at %s, lists it: Azure never reuses an assignment's name, so check the observation time (--observed-at)",
						x.id, end.Format(time.RFC3339), seen.Format(time.RFC3339)))
				}
				continue
			}
		}
		if eligible[roleKey(x.principal, x.role, x.scope)] {
			b.problem(x.rec.problem("assignment %s gives %s the role %s at %s that an eligible assignment of the log gives: it is that eligibility's activation (PIM), which the azure-pim import dates, and is not imported as a standing assignment",
				x.id, x.principal, x.role, x.scope))
			continue
		}
		if same := slices.IndexFunc(byKey[roleKey(x.principal, x.role, x.scope)], func(id string) bool { return !inSnapshot[id] }); same >= 0 {
			inSnapshot[byKey[roleKey(x.principal, x.role, x.scope)][same]] = true
			continue
		}
		at := b.assignedAt(o.Tenant, o.Tenant, x.principal, x.at, seen)
		m := made{x, at}
		adds = append(adds, m)
		if f, ok := first[x.principal]; !ok || at.Before(f.at) {
			first[x.principal] = m
		}
	}
	for _, p := range sortedKeys(first) {
		f := first[p]
		b.principal(o.Tenant, p, f.kind, f.rec.str("principalName", "SignInName", "DisplayName"), f.at)
	}
	for _, m := range adds {
		b.add(event.Event{Type: event.AzureRoleAssigned, Time: m.at, Tenant: o.Tenant, Assignment: m.id, Principal: m.principal,
			PrincipalTenant: o.Tenant, Role: m.role, Scope: m.scope, PIM: event.PIMActive}, o.Tenant, m.id)
	}
	for _, id := range sortedKeys(own) {
		if !inSnapshot[id] {
			b.add(event.Event{Type: event.AzureRoleRemoved, Time: b.notBefore(o.Tenant, seen), Tenant: o.Tenant, Assignment: id}, o.Tenant, id, "removed")
		}
	}
}

// assignedAt dates an assignment made since the log: at its own time
// where the export says it (created), else at the observation, never
// before the log's last word on the tenant; and never before the log
// knows its principal (in principalTenant).
func (b *builder) assignedAt(tenant, principalTenant, principal string, created, seen time.Time) time.Time {
	at := created
	if at.IsZero() {
		at = b.notBefore(tenant, seen)
	}
	if b.known != nil {
		if c, ok := b.known.AccountCreated(principalTenant, principal); ok && at.Before(c) {
			at = c
		}
	}
	return at
}

// readRoleChanges turns a changelog's grants and revocations into
// assignments made and removed at their own instants. A changelog names
// no assignment: a grant the log does not hold becomes an assignment
// named after the grant, and a revocation ends the live assignment that
// gives the same role to the same principal at the same scope.
func readRoleChanges(recs []record, names map[string]string, o *Options, b *builder) {
	type change struct {
		rec                           record
		grant                         bool
		principal, role, scope, stamp string
		at                            time.Time
	}
	var changes []change
	for _, r := range recs {
		c := change{rec: r, principal: r.str("principalId"), role: roleOf(r, names)}
		action := r.str("action")
		c.grant = strings.EqualFold(action, "Granted")
		var ok bool
		c.at, ok = parseTime(r.str("timestamp"))
		var err error
		c.scope, err = canonicalScope(r.str("scope"), o.Tenant)
		switch {
		case !c.grant && !strings.EqualFold(action, "Revoked"):
			b.problem(r.problem("action %q is neither Granted nor Revoked", action))
			continue
		case !ok:
			b.problem(r.problem("%s: timestamp %q is not a time", action, r.str("timestamp")))
			continue
		case c.principal == "":
			b.problem(r.problem("%s at %s names no principalId", action, r.str("timestamp")))
			continue
		case c.role == "":
			b.problem(r.problem("%s to %s: the role is neither named nor a built-in role's roleDefinitionId (%s)", action, c.principal, r.str("roleDefinitionId")))
			continue
		case err != nil:
			b.problem(r.problem("%s to %s: scope %v", action, c.principal, err))
			continue
		}
		c.stamp = c.at.Format(time.RFC3339Nano)
		changes = append(changes, c)
	}
	slices.SortStableFunc(changes, func(x, y change) int { return x.at.Compare(y.at) })
	_, own := b.liveAssignments(o.Tenant)
	live := byRoleKey(own)
	for _, c := range changes {
		k := roleKey(c.principal, c.role, c.scope)
		switch {
		case c.grant && len(live[k]) > 0:
			// The log holds it already (a snapshot's row, or this grant).
		case c.grant && !b.knows(o.Tenant, c.principal):
			b.problem(c.rec.problem("Granted %s to %s, whom the log does not know: a changelog does not say whether it is a user, a group or a service principal; import az role assignment list (or the users and groups) first", c.role, c.principal))
		case c.grant:
			h := sha256.Sum256([]byte(k + "\x00" + c.stamp))
			id := "changelog-" + hex.EncodeToString(h[:8])
			live[k] = append(live[k], id)
			b.add(event.Event{Type: event.AzureRoleAssigned, Time: c.at, Tenant: o.Tenant, Assignment: id, Principal: c.principal,
				PrincipalTenant: o.Tenant, Role: c.role, Scope: c.scope, PIM: event.PIMActive}, o.Tenant, id)
		case len(live[k]) == 0:
			b.problem(c.rec.problem("Revoked %s of %s at %s: the log holds no such live assignment (removed already, or never imported)", c.role, c.principal, c.scope))
		default:
			for _, id := range live[k] {
				b.add(event.Event{Type: event.AzureRoleRemoved, Time: c.at, Tenant: o.Tenant, Assignment: id}, o.Tenant, id, "removed", c.stamp)
			}
			delete(live, k)
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
