package imports

import (
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
)

func init() {
	register(Source{Name: "links", Signature: []string{"partnerId"}, read: readLinks,
		About: "az managementpartner show -o json, or Get-AzManagementPartner | ConvertTo-Json (partnerId, tenantId, objectId, state, updatedTime): an account's partner link"})
	register(Source{Name: "groups", Signature: []string{"id", "objectId"}, NeedsTenant: true, read: readGroups,
		About: "az ad group member list --group G -o json, or Graph's group members (id, userPrincipalName, @odata.type), one file a group, named with --group: the members, since only they link"})
}

// accountKind reads the kind of a directory object from an export.
func accountKind(r record) string {
	t := strings.ToLower(r.str("@odata.type", "odatatype", "objectType", "principalType", "userType"))
	switch {
	case strings.Contains(t, "serviceprincipal"):
		return event.AccountServicePrincipal
	case strings.Contains(t, "guest") || strings.Contains(strings.ToUpper(r.str("userPrincipalName", "principalName")), "#EXT#"):
		return event.AccountGuest
	}
	return event.AccountUser
}

// readLinks turns partner links as az managementpartner shows them into
// the link each account holds, when the log holds another.
func readLinks(each iter.Seq[record], o *Options, b *builder) {
	for r := range each {
		acct, partner := r.str("objectId"), r.str("partnerId")
		tenant, ok := b.tenantOf(r, r.str("tenantId"))
		switch {
		case !ok:
			continue
		case acct == "":
			b.problem(r.problem("a link needs its objectId, the account that holds it"))
			continue
		}
		at, ok := parseTime(r.str("updatedTime", "createdTime"))
		if !ok {
			at = b.notBefore(tenant, observed(o, nil))
		}
		at = b.accountFrom(tenant, acct, at)
		active := !strings.EqualFold(r.str("state"), "Deleted")
		var cur string
		if b.known != nil {
			if l, ok := b.known.Link(tenant, acct); ok && l.Active {
				cur = l.Partner
			}
		}
		if !b.knows(tenant, acct) {
			b.add(event.Event{Type: event.AccountCreated, Time: at, Tenant: tenant, Account: acct, Kind: event.AccountUser}, tenant, acct)
		}
		switch {
		case active && !event.IsPartnerID(partner):
			b.problem(r.problem("partnerId %q is not a partner ID", partner))
		case active && cur != partner:
			b.add(event.Event{Type: event.PalLinked, Time: at, Tenant: tenant, Account: acct, Partner: partner}, tenant, acct, partner, at.Format(time.RFC3339Nano))
		case !active && cur != "":
			b.add(event.Event{Type: event.PalRemoved, Time: at, Tenant: tenant, Account: acct}, tenant, acct, "removed", at.Format(time.RFC3339Nano))
		}
	}
}

// readGroups turns the members of a group (--group) into the members
// added and removed since the log, at the observation.
func readGroups(each iter.Seq[record], o *Options, b *builder) {
	if o.Group == "" {
		b.problems = append(b.problems, Problem{Reason: "a group members export does not say its group: name it with --group"})
		return
	}
	at := b.notBefore(o.Tenant, observed(o, nil))
	stamp := at.Format(time.RFC3339Nano)
	var members []string
	for r := range each {
		id := r.str("id", "objectId")
		if id == "" {
			b.problem(r.problem("a member needs its id"))
			continue
		}
		if strings.Contains(strings.ToLower(r.str("@odata.type")), "group") {
			b.problem(r.problem("member %s is a group: groups hold accounts only, add its members", id))
			continue
		}
		if !b.knows(o.Tenant, id) && !slices.Contains(members, id) {
			b.add(event.Event{Type: event.AccountCreated, Time: at, Tenant: o.Tenant, Account: id, Kind: accountKind(r), Name: r.str("userPrincipalName", "displayName")}, o.Tenant, id)
		}
		members = append(members, id)
	}
	var current []string
	if b.known != nil {
		current = b.known.GroupMembers(o.Tenant, o.Group)
	}
	if b.known == nil || !b.known.IsGroup(o.Tenant, o.Group) {
		b.add(event.Event{Type: event.GroupCreated, Time: at, Tenant: o.Tenant, Group: o.Group}, o.Tenant, o.Group)
	}
	for _, m := range members {
		if !slices.Contains(current, m) {
			b.add(event.Event{Type: event.GroupMemberAdded, Time: at, Tenant: o.Tenant, Group: o.Group, Account: m}, o.Tenant, o.Group, m, stamp)
		}
	}
	for _, m := range current {
		if !slices.Contains(members, m) {
			b.add(event.Event{Type: event.GroupMemberRemoved, Time: at, Tenant: o.Tenant, Group: o.Group, Account: m}, o.Tenant, o.Group, m, "removed", stamp)
		}
	}
}

func init() {
	register(Source{Name: "users", Signature: []string{"userPrincipalName", "id", "objectId"}, NeedsTenant: true, read: readUsers,
		About: "az ad user list -o json, or Graph's users (id, userPrincipalName, userType, createdDateTime): the accounts, named by their user principal name, which the audit log speaks"})
}

// readUsers adds the accounts the log does not know, named by their user
// principal name, at their creation where the export says it, and says
// when one was disabled or enabled since the log (accountEnabled, where
// the export selects it). A delta's removed users (@removed) are reported,
// not deleted: Entra keeps a removed user for 30 days, in which it may be
// restored, and a deleted account never comes back in the log.
func readUsers(each iter.Seq[record], o *Options, b *builder) {
	type user struct {
		rec     record
		created time.Time
	}
	var users []user
	var times []time.Time
	for r := range each {
		if r.str("id", "objectId") == "" {
			b.problem(r.problem("a user needs its id"))
			continue
		}
		if r.get("@removed") != nil {
			b.problem(r.problem("user %s is removed from the directory (a delta's @removed): pal does not delete it on a delta's word; an account.deleted line in the log does", r.str("id", "objectId")))
			continue
		}
		t, _ := parseTime(r.str("createdDateTime"))
		if !t.IsZero() {
			times = append(times, t)
		}
		users = append(users, user{r, t})
	}
	seen := observed(o, times)
	for _, u := range users {
		id := u.rec.str("id", "objectId")
		enabled, says := u.rec.get("accountEnabled").(bool)
		known := b.knows(o.Tenant, id)
		at := b.notBefore(o.Tenant, seen)
		if !known {
			created := u.created
			if created.IsZero() {
				created = at
			}
			kind := accountKind(u.rec)
			if strings.EqualFold(u.rec.str("userType"), "Guest") {
				kind = event.AccountGuest
			}
			b.add(event.Event{Type: event.AccountCreated, Time: created, Tenant: o.Tenant, Account: id, Kind: kind,
				Name: u.rec.str("userPrincipalName", "displayName")}, o.Tenant, id)
			if created.After(at) {
				at = created
			}
		}
		disabled := known && b.known != nil && b.known.AccountDisabled(o.Tenant, id)
		switch {
		case says && !enabled && !disabled:
			b.add(event.Event{Type: event.AccountDisabled, Time: at, Tenant: o.Tenant, Account: id}, o.Tenant, id, "disabled", at.Format(time.RFC3339Nano))
		case says && enabled && disabled:
			b.add(event.Event{Type: event.AccountEnabled, Time: at, Tenant: o.Tenant, Account: id}, o.Tenant, id, "enabled", at.Format(time.RFC3339Nano))
		}
	}
}
