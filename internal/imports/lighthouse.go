package imports

import (
	"fmt"
	"iter"
	"strings"

	"github.com/palproject/pal/internal/event"
)

func init() {
	register(Source{Name: "lighthouse", Signature: []string{"properties"}, NeedsTenant: true, read: readLighthouse,
		About: "az managedservices assignment list --include-definition -o json (managedByTenantId, authorizations, eligibleAuthorizations): the roles a managing partner's accounts hold in the customer's tenant, with their own tenant as principal_tenant"})
}

// readLighthouse turns Azure Lighthouse delegations into role
// assignments whose principals live in the managing tenant. Each
// authorization is an assignment of its own, named after the delegation.
func readLighthouse(each iter.Seq[record], o *Options, b *builder) {
	seen := b.notBefore(o.Tenant, observed(o, nil))
	live := map[string]bool{}
	if b.known != nil {
		for _, a := range b.known.LiveAssignments(o.Tenant) {
			live[a.ID] = true
		}
	}
	for r := range each {
		id := r.str("id")
		scope, _, found := strings.Cut(strings.ToLower(id), "/providers/microsoft.managedservices/")
		name := r.str("name")
		props, _ := r.sub("properties")
		def, _ := props.sub("registrationDefinition")
		defProps, _ := def.sub("properties")
		managedBy := defProps.str("managedByTenantId")
		if !found || name == "" || managedBy == "" {
			b.problem(r.problem("a delegation needs its id (a scope and /providers/Microsoft.ManagedServices/…), its name and its definition's managedByTenantId: list with --include-definition"))
			continue
		}
		if scope == "" {
			scope = "/"
		}
		sc, err := event.ParseScope(scope)
		if err != nil {
			b.problem(r.problem("delegation %s: scope %v", name, err))
			continue
		}
		scope = sc.Path
		for _, set := range []struct {
			field, pim string
		}{{"authorizations", event.PIMActive}, {"eligibleAuthorizations", event.PIMEligible}} {
			for i, a := range defProps.list(set.field) {
				role := a.str("roleDefinitionName")
				if role == "" {
					role = builtinRoles[strings.ToLower(lastSegment(a.str("roleDefinitionId")))]
				}
				principal := a.str("principalId")
				if role == "" || principal == "" {
					b.problem(r.problem("delegation %s: %s[%d] needs a principalId and a built-in role's roleDefinitionId", name, set.field, i))
					continue
				}
				assignment := fmt.Sprintf("lighthouse-%s-%s-%d", strings.ToLower(name), set.field, i)
				if live[assignment] {
					continue
				}
				b.add(event.Event{Type: event.AzureRoleAssigned, Time: seen, Tenant: o.Tenant, Assignment: assignment, Principal: principal,
					PrincipalTenant: managedBy, Role: role, Scope: scope, PIM: set.pim}, o.Tenant, assignment)
			}
		}
	}
}
