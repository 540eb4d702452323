package imports

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
)

func init() {
	register(Source{Name: "powerapps", Signature: []string{"EnvironmentName", "AppName", "FlowName"}, NeedsTenant: true, read: readPowerApps, restate: cmdletLists,
		About: "Get-AdminPowerAppEnvironment, Get-AdminPowerApp, Get-AdminPowerAppRoleAssignment, Get-AdminFlow, Get-AdminFlowOwnerRole | ConvertTo-Json -Depth 10, or the admin API's lists they read (EnvironmentName, EnvironmentType, AppName, Owner.id, CreatedTime, RoleType Owner/CanEdit/CanView, PrincipalObjectId, FlowName, CreatedBy.objectId): environments, apps and flows, their owners and co-owners"})
}

// inventory is a snapshot of a tenant's Power Platform: what the admin
// cmdlets list.
type inventory struct {
	envs      map[string]string // environment → type
	envTimes  map[string]time.Time
	resources map[string]*invResource
	// rolesOf marks the apps whose role assignments the snapshot lists:
	// only their co-owners are compared.
	rolesOf map[string]bool
	times   []time.Time
	// teams are the Dataverse for Teams environments of the snapshot, by
	// the line that lists each: left out, with their apps and flows.
	teams map[string]record
}

type invResource struct {
	kind, env, owner, name string
	created                time.Time
	coowners               []string
	ownerLine              record
}

// envTypes maps the cmdlets' EnvironmentType to the log's.
var envTypes = map[string]string{"production": event.Production, "sandbox": event.Sandbox, "trial": event.Trial,
	"developer": event.Developer, "default": event.Default, "notspecified": event.Production}

func readPowerApps(each iter.Seq[record], o *Options, b *builder) {
	inv := inventory{envs: map[string]string{}, envTimes: map[string]time.Time{}, resources: map[string]*invResource{}, rolesOf: map[string]bool{},
		teams: map[string]record{}}
	var roles []record
	// A file's dates of slashes go one way, which its dates say (Export-Csv
	// writes them in the locale of the machine that ran it).
	recs := slices.Collect(each)
	dayFirst, mixed := slashOrders(func(yield func(record, string) bool) {
		for _, r := range recs {
			if !yield(r, r.str("CreatedTime")) || !yield(r, r.str("LastModifiedTime")) {
				return
			}
		}
	})
	for _, p := range mixed {
		b.problem(p)
	}
	for _, r := range recs {
		created, hasTime := parseTimeOrdered(r.str("CreatedTime"), dayFirst[r.file])
		if hasTime {
			inv.times = append(inv.times, created)
		}
		if t, ok := parseTimeOrdered(r.str("LastModifiedTime"), dayFirst[r.file]); ok {
			inv.times = append(inv.times, t)
		}
		switch {
		case r.str("RoleType") != "" && (r.str("AppName") != "" || r.str("FlowName") != ""):
			// Get-AdminPowerAppRoleAssignment, Get-AdminFlowOwnerRole.
			roles = append(roles, r)
		case r.str("AppName") != "":
			inv.add(b, r, "canvas_app", r.str("AppName"), created, "Owner", "id", "objectId")
		case r.str("FlowName") != "":
			inv.add(b, r, "flow", r.str("FlowName"), created, "CreatedBy", "objectId", "userId")
		case r.str("EnvironmentName") != "":
			typ := envTypes[strings.ToLower(r.str("EnvironmentType", "EnvironmentSku"))]
			if strings.EqualFold(r.str("EnvironmentType", "EnvironmentSku"), "Teams") {
				inv.teams[r.str("EnvironmentName")] = r
				continue
			}
			if typ == "" {
				if strings.EqualFold(r.str("IsDefault"), "true") {
					typ = event.Default
				} else {
					b.problem(r.problem("environment %s: EnvironmentType %q is none of Production, Sandbox, Trial, Developer, Default", r.str("EnvironmentName"), r.str("EnvironmentType")))
					continue
				}
			}
			inv.envs[r.str("EnvironmentName")] = typ
			inv.envTimes[r.str("EnvironmentName")] = created
		default:
			b.problem(r.problem("neither an environment, an app, a role assignment nor a flow of the admin cmdlets"))
		}
	}
	for _, r := range roles {
		kind, id := "app", r.str("AppName")
		if id == "" {
			kind, id = "flow", r.str("FlowName")
		}
		res := inv.resources[id]
		inv.rolesOf[id] = true
		who, typ, role := r.str("PrincipalObjectId"), r.str("PrincipalType"), r.str("RoleType")
		editor := strings.EqualFold(role, "CanEdit") || strings.EqualFold(role, "Owner")
		switch {
		case res == nil:
			b.problem(r.problem("role assignment on %s %s, which the snapshot does not list: import Get-Admin%s too", kind, id, map[string]string{"app": "PowerApp", "flow": "Flow"}[kind]))
		case strings.EqualFold(typ, "Group") && editor:
			// A share that would make a co-owner, were it an account's, is
			// said: silence would look like a partner credited.
			group := "a group"
			if name := r.str("PrincipalDisplayName"); name != "" {
				group = fmt.Sprintf("the group %q", name)
			}
			b.problem(r.problem("%s %s is shared as %s with %s (PrincipalObjectId %s): co-owners are accounts, and a group's members are not co-owners in pal's log, so this share credits no partner; share the %s with the partner's own accounts",
				kind, id, role, group, cmp.Or(who, "none"), kind))
		case typ != "" && !strings.EqualFold(typ, "User"):
			// A group that may only view, or the whole tenant (which
			// Power Apps shares with CanView only): no co-owner, nothing
			// that credits a partner.
		case who == "":
			b.problem(r.problem("role assignment on %s %s names no PrincipalObjectId", kind, id))
		case strings.EqualFold(role, "CanEdit") && who != res.owner && !slices.Contains(res.coowners, who):
			res.coowners = append(res.coowners, who)
		}
	}
	inv.diff(o, b)
}

// add notes an app or flow of the snapshot, owned by the account the
// object owner names in one of its fields.
func (inv inventory) add(b *builder, r record, kind, id string, created time.Time, owner string, fields ...string) {
	who := ""
	if o, ok := r.sub(owner); ok {
		who = o.str(fields...)
	}
	if who == "" {
		b.problem(r.problem("%s %s names no %s.%s", kind, id, owner, fields[0]))
		return
	}
	inv.resources[id] = &invResource{kind: kind, env: r.str("EnvironmentName"), owner: who, name: r.str("DisplayName"), created: created, ownerLine: r}
}

// diff adds the events that take the log from what it knows to the
// snapshot: environments, resources, owners and co-owners, created at
// their own time where the cmdlets say it, changed at the observation.
func (inv inventory) diff(o *Options, b *builder) {
	seen := b.notBefore(o.Tenant, observed(o, inv.times))
	envs, resources := map[string]string{}, map[string]attribution.ResourceState{}
	if b.known != nil {
		envs, resources = b.known.Inventory(o.Tenant)
	}
	made := map[string]bool{}
	account := func(id string, at time.Time) {
		if made[id] || b.knows(o.Tenant, id) {
			return
		}
		made[id] = true
		b.add(event.Event{Type: event.AccountCreated, Time: at, Tenant: o.Tenant, Account: id, Kind: event.AccountUser}, o.Tenant, id)
	}
	at := func(created time.Time) time.Time {
		if created.IsZero() {
			return seen
		}
		return created
	}
	// An account this snapshot makes is created with the earliest of the
	// resources it owns; one the log knows holds none from before it.
	from := map[string]time.Time{}
	for id, res := range inv.resources {
		if _, ok := resources[id]; !ok {
			if t, seen := from[res.owner]; !seen || at(res.created).Before(t) {
				from[res.owner] = at(res.created)
			}
		}
	}
	stamp := seen.Format(time.RFC3339Nano)
	for _, id := range sortedKeys(inv.envs) {
		switch cur, ok := envs[id]; {
		case !ok:
			b.add(event.Event{Type: event.EnvironmentCreated, Time: at(inv.envTimes[id]), Tenant: o.Tenant, Environment: id, EnvType: inv.envs[id]}, o.Tenant, id)
		case cur != inv.envs[id]:
			b.add(event.Event{Type: event.EnvironmentChanged, Time: seen, Tenant: o.Tenant, Environment: id, EnvType: inv.envs[id]}, o.Tenant, id, inv.envs[id], stamp)
		}
	}
	inTeams := map[string]int{}
	for _, id := range sortedKeys(inv.resources) {
		res := inv.resources[id]
		cur, ok := resources[id]
		if _, teams := inv.teams[res.env]; teams && !ok {
			inTeams[res.env]++
			continue
		}
		if !ok {
			if _, known := envs[res.env]; !known && inv.envs[res.env] == "" {
				b.problem(res.ownerLine.problem("%s %s is in environment %s, which neither the log nor the snapshot lists: import Get-AdminPowerAppEnvironment too", res.kind, id, res.env))
				continue
			}
			t := b.accountFrom(o.Tenant, res.owner, at(res.created))
			account(res.owner, from[res.owner])
			b.add(event.Event{Type: event.ResourceCreated, Time: t, Tenant: o.Tenant, Environment: res.env, Resource: id, Kind: res.kind, Owner: res.owner, Name: res.name}, o.Tenant, id)
			cur = attribution.ResourceState{Kind: res.kind, Environment: res.env, Owner: res.owner}
		}
		if cur.Owner != res.owner {
			account(res.owner, seen)
			b.add(event.Event{Type: event.ResourceOwnerChange, Time: seen, Tenant: o.Tenant, Resource: id, Owner: res.owner}, o.Tenant, id, res.owner, stamp)
		}
		if !inv.rolesOf[id] {
			// Only a listing of its roles says its co-owners.
			continue
		}
		for _, acct := range res.coowners {
			if !slices.Contains(cur.Coowners, acct) {
				account(acct, seen)
				b.add(event.Event{Type: event.ResourceCoownerAdd, Time: seen, Tenant: o.Tenant, Resource: id, Account: acct}, o.Tenant, id, acct, stamp)
			}
		}
		for _, acct := range cur.Coowners {
			if !slices.Contains(res.coowners, acct) && acct != res.owner {
				b.add(event.Event{Type: event.ResourceCoownerDel, Time: seen, Tenant: o.Tenant, Resource: id, Account: acct}, o.Tenant, id, acct, "removed", stamp)
			}
		}
	}
	for _, env := range sortedKeys(inv.teams) {
		r := inv.teams[env]
		b.problem(r.problem("environment %s (%s) is a Dataverse for Teams environment: left out, with %d %s of the snapshot in it; the log's environment types (production, sandbox, trial, developer, default) have none for it, and only a counted type's usage credits a partner",
			env, cmp.Or(r.str("DisplayName"), "no name"), inTeams[env], plural(inTeams[env], "app or flow", "apps and flows")))
	}
	// What the snapshot lists a kind of and no longer holds is gone.
	listsApps, listsFlows := false, false
	for _, r := range inv.resources {
		listsApps, listsFlows = listsApps || r.kind == "canvas_app", listsFlows || r.kind == "flow"
	}
	for _, id := range sortedKeys(resources) {
		cur := resources[id]
		if inv.resources[id] == nil && (cur.Kind == "canvas_app" && listsApps || cur.Kind == "flow" && listsFlows) {
			b.add(event.Event{Type: event.ResourceDeleted, Time: seen, Tenant: o.Tenant, Resource: id}, o.Tenant, id, "deleted", stamp)
		}
	}
}
