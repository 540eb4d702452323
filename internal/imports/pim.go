package imports

import (
	"cmp"
	"iter"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
)

func init() {
	register(Source{Name: "azure-pim", Signature: []string{"properties"}, NeedsTenant: true, read: readPIM,
		About: "the REST lists of role eligibility schedule instances and role assignment schedule instances (properties: principalId, roleDefinitionId, scope, memberType, assignmentType Activated/Assigned, startDateTime, endDateTime, linkedRoleEligibilityScheduleId): eligible assignments and their activations"})
}

// readPIM turns Privileged Identity Management lists into eligible
// assignments (the eligibility schedules, new since the log) and their
// activations (each activated instance, dated by itself). Instances a group
// or a parent scope passes down (memberType other than Direct) are the
// group's or the parent's, imported from them; an Assigned instance is a
// standing assignment, which az role assignment list gives.
func readPIM(each iter.Seq[record], o *Options, b *builder) {
	live := map[string]bool{}
	if b.known != nil {
		for _, a := range b.known.LiveAssignments(o.Tenant) {
			live[a.ID] = true
		}
	}
	made := map[string]bool{}
	for r := range each {
		p, ok := r.sub("properties")
		if !ok {
			p = r
		}
		if m := p.str("memberType"); m != "" && !strings.EqualFold(m, "Direct") {
			continue
		}
		start, okStart := parseTime(p.str("startDateTime"))
		end, okEnd := parseTime(p.str("endDateTime"))
		role := ""
		if x, ok := p.sub("expandedProperties"); ok {
			if rd, ok := x.sub("roleDefinition"); ok {
				role = rd.str("displayName")
			}
		}
		if role == "" {
			role = builtinRoles[strings.ToLower(lastSegment(p.str("roleDefinitionId")))]
		}
		switch kind := p.str("assignmentType"); {
		case strings.EqualFold(kind, "Activated"):
			eligibility := lastSegment(p.str("linkedRoleEligibilityScheduleId"))
			if eligibility == "" || !okStart || !okEnd || !end.After(start) {
				b.problem(r.problem("an activation needs its linkedRoleEligibilityScheduleId and a startDateTime before its endDateTime"))
				continue
			}
			b.add(event.Event{Type: event.AzureRoleActivated, Time: start, Tenant: o.Tenant, Assignment: eligibility, Until: end},
				o.Tenant, eligibility, start.Format(time.RFC3339Nano))
		case strings.EqualFold(kind, "Assigned"):
		case kind == "":
			// An eligibility.
			id := lastSegment(p.str("roleEligibilityScheduleId"))
			if id == "" {
				id = r.str("name")
			}
			scope, err := canonicalScope(p.str("scope"), o.Tenant)
			principal := p.str("principalId")
			switch {
			case id == "" || principal == "" || role == "":
				b.problem(r.problem("an eligibility needs its schedule ID, principalId and a role (named, or a built-in role's roleDefinitionId)"))
				continue
			case err != nil:
				b.problem(r.problem("eligibility %s: scope %v", id, err))
				continue
			case live[id] || made[id]:
				continue
			}
			made[id] = true
			at := start
			if !okStart {
				at = b.notBefore(o.Tenant, observed(o, nil))
			}
			typ, name := p.str("principalType"), ""
			if x, ok := p.sub("expandedProperties"); ok {
				if pr, ok := x.sub("principal"); ok {
					typ, name = cmp.Or(typ, pr.str("type")), pr.str("displayName")
				}
			}
			kind, ok := principalKind(typ, name)
			if !ok {
				b.problem(r.problem("eligibility %s: principal type %q is not User, Group or ServicePrincipal", id, typ))
				continue
			}
			if !made[principal] {
				made[principal] = true
				b.principal(o.Tenant, principal, kind, name, at)
			}
			b.add(event.Event{Type: event.AzureRoleAssigned, Time: at, Tenant: o.Tenant, Assignment: id, Principal: principal,
				PrincipalTenant: o.Tenant, Role: role, Scope: scope, PIM: event.PIMEligible}, o.Tenant, id)
		default:
			b.problem(r.problem("assignmentType %q is neither Activated nor Assigned", kind))
		}
	}
}
