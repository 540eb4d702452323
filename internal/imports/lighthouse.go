package imports

import (
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
	register(Source{Name: "lighthouse", Signature: []string{"properties"}, read: readLighthouse,
		About: "az managedservices assignment list --include-definition -o json, or the REST list of registrationAssignments with $expandRegistrationDefinition=true (systemData.createdAt, manageeTenantId, managedByTenantId, authorizations, eligibleAuthorizations): the roles a managing partner's accounts hold in the customer's tenant, with their own tenant as principal_tenant"})
}

// delegation is a registration assignment as a snapshot lists it: each of
// its definition's authorizations is an assignment of its own.
type delegation struct {
	rec                     record
	tenant, name, managedBy string
	scope                   string
	created, modified       time.Time // the assignment's creation, the definition's last change
	grants                  []grant
	unread                  []string // the IDs of the authorizations that could not be read
}

// grant is one authorization of a delegation, named by its place in the
// definition.
type grant struct {
	id, principal, role, pim string
}

// same reports whether a live assignment gives what a grant gives.
func (g grant) same(a azure.LiveAssignment) bool {
	return a.Principal == g.principal && strings.EqualFold(a.Role, g.role) && a.Eligible == (g.pim == event.PIMEligible)
}

// changed names a grant whose place in the definition another
// authorization held before: the assignment ID of that place is taken,
// and IDs are never reused.
func (g grant) changed() string {
	h := sha256.Sum256([]byte(g.principal + "\x00" + strings.ToLower(g.role) + "\x00" + g.pim))
	return g.id + "-" + hex.EncodeToString(h[:4])
}

// readLighthouse turns Azure Lighthouse delegations into role assignments
// whose principals live in the managing tenant (principal_tenant), in the
// customer's tenant the definition names (manageeTenantId; --tenant where
// the export does not say it). A delegation is dated by its registration
// assignment's systemData.createdAt, at the observation when absent.
//
// A snapshot says what it lists, not what it looked at: az lists one
// subscription, the REST list may be filtered by managing tenant, and az
// rest keeps only the first page. So a delegation missing from a snapshot
// is not taken as removed. A delegation it lists is whole, definition and
// all: an authorization its definition no longer grants has ended, at the
// definition's last change (or the observation), and one that now grants
// another role or principal in the same place is a new assignment.
func readLighthouse(each iter.Seq[record], o *Options, b *builder) {
	var ds []delegation
	var times []time.Time
	for r := range each {
		d, ok := readDelegation(r, b)
		if b.failed != nil {
			return
		}
		if !ok {
			continue
		}
		for _, t := range []time.Time{d.created, d.modified} {
			if !t.IsZero() {
				times = append(times, t)
			}
		}
		ds = append(ds, d)
	}
	seen := observed(o, times)
	live := map[string]map[string]azure.LiveAssignment{}
	liveIn := func(tenant string) map[string]azure.LiveAssignment {
		if live[tenant] == nil {
			live[tenant] = map[string]azure.LiveAssignment{}
			if b.known != nil {
				for _, a := range b.known.LiveAssignments(tenant) {
					live[tenant][a.ID] = a
				}
			}
		}
		return live[tenant]
	}
	done := map[string]bool{}
	for _, d := range ds {
		// A delegation listed twice (pages fetched twice) is read once.
		k := d.tenant + "\x00" + strings.ToLower(d.name)
		if done[k] {
			continue
		}
		done[k] = true
		lv := liveIn(d.tenant)
		kept := map[string]bool{}
		for _, id := range d.unread {
			// What the snapshot does not say, it does not end.
			kept[id] = true
		}
		// A change the definition shows: at its last change when that
		// falls after the assignment it changes, at the observation
		// otherwise.
		changedAt := func(from time.Time) time.Time {
			if !d.modified.IsZero() && d.modified.After(from) && !d.modified.After(seen) {
				return d.modified
			}
			return b.notBefore(d.tenant, seen)
		}
		for _, g := range d.grants {
			alt := g.changed()
			if a, ok := lv[g.id]; ok && g.same(a) {
				kept[g.id] = true
				continue
			}
			if a, ok := lv[alt]; ok && g.same(a) {
				kept[alt] = true
				continue
			}
			if a, ok := lv[g.id]; ok {
				// Its place grants something else now; an older snapshot,
				// observed before the log's assignment began, says nothing.
				if a.From.After(seen) {
					kept[g.id] = true
					continue
				}
				if b.known != nil {
					if end, known := b.known.AssignmentEnd(d.tenant, alt); known {
						if !end.After(seen) {
							b.problem(d.rec.problem("delegation %s grants %s to %s again, in the place of assignment %s, after the log ended %s at %s: pal cannot name it a third time; write its azure.role_assigned with an ID of your own",
								d.name, g.role, g.principal, g.id, alt, end.Format(time.RFC3339)))
						}
						continue
					}
				}
				b.add(event.Event{Type: event.AzureRoleAssigned, Time: changedAt(a.From), Tenant: d.tenant, Assignment: alt, Principal: g.principal,
					PrincipalTenant: d.managedBy, Role: g.role, Scope: d.scope, PIM: g.pim}, d.tenant, alt)
				kept[alt] = true
				continue
			}
			if b.known != nil {
				if end, known := b.known.AssignmentEnd(d.tenant, g.id); known {
					// An older snapshot, imported after the assignment
					// ended, adds nothing; one observed after its end
					// contradicts it.
					if !end.After(seen) {
						b.problem(d.rec.problem("assignment %s (delegation %s) ended at %s, yet this snapshot, observed at %s, lists it: a delegation removed and made again under the same name cannot reuse the assignment's ID; check the observation time (--observed-at)",
							g.id, d.name, end.Format(time.RFC3339), seen.Format(time.RFC3339)))
					}
					continue
				}
			}
			at := b.assignedAt(d.tenant, d.managedBy, g.principal, d.created, seen)
			b.add(event.Event{Type: event.AzureRoleAssigned, Time: at, Tenant: d.tenant, Assignment: g.id, Principal: g.principal,
				PrincipalTenant: d.managedBy, Role: g.role, Scope: d.scope, PIM: g.pim}, d.tenant, g.id)
			kept[g.id] = true
		}
		// The log's assignments of this delegation that its definition no
		// longer grants, made before the snapshot was observed.
		prefix := "lighthouse-" + strings.ToLower(d.name) + "-"
		var gone []string
		for id, a := range lv {
			if strings.HasPrefix(id, prefix) && !kept[id] && !a.From.After(seen) {
				gone = append(gone, id)
			}
		}
		slices.Sort(gone)
		for _, id := range gone {
			b.add(event.Event{Type: event.AzureRoleRemoved, Time: changedAt(lv[id].From), Tenant: d.tenant, Assignment: id}, d.tenant, id, "removed")
		}
	}
}

// readDelegation reads a registration assignment with its definition; false
// (the record reported) when it cannot be read.
func readDelegation(r record, b *builder) (delegation, bool) {
	id := r.str("id")
	scope, _, found := strings.Cut(strings.ToLower(id), "/providers/microsoft.managedservices/")
	d := delegation{rec: r, name: r.str("name")}
	if d.name == "" {
		d.name = lastSegment(id)
	}
	props, _ := r.sub("properties")
	def, _ := props.sub("registrationDefinition")
	defProps, _ := def.sub("properties")
	d.managedBy = defProps.str("managedByTenantId")
	if !found || d.name == "" || d.managedBy == "" {
		b.problem(r.problem("a delegation needs its id (a scope and /providers/Microsoft.ManagedServices/…), its name and its definition's managedByTenantId: list with --include-definition"))
		return d, false
	}
	var ok bool
	if d.tenant, ok = b.tenantOf(r, defProps.str("manageeTenantId")); !ok {
		return d, false
	}
	if scope == "" {
		scope = "/"
	}
	sc, err := event.ParseScope(scope)
	if err != nil {
		b.problem(r.problem("delegation %s: scope %v", d.name, err))
		return d, false
	}
	d.scope = sc.Path
	if sys, ok := r.sub("systemData"); ok {
		d.created, _ = parseTime(sys.str("createdAt"))
	}
	if sys, ok := def.sub("systemData"); ok {
		d.modified, _ = parseTime(sys.str("lastModifiedAt"))
	}
	for _, set := range []struct {
		field, pim string
	}{{"authorizations", event.PIMActive}, {"eligibleAuthorizations", event.PIMEligible}} {
		for i, a := range defProps.list(set.field) {
			role := a.str("roleDefinitionName")
			if role == "" {
				role = builtinRoles[strings.ToLower(lastSegment(a.str("roleDefinitionId")))]
			}
			principal := a.str("principalId")
			id := fmt.Sprintf("lighthouse-%s-%s-%d", strings.ToLower(d.name), set.field, i)
			if role == "" || principal == "" {
				b.problem(r.problem("delegation %s: %s[%d] needs a principalId and a built-in role's roleDefinitionId", d.name, set.field, i))
				d.unread = append(d.unread, id)
				continue
			}
			d.grants = append(d.grants, grant{id: id, principal: principal, role: role, pim: set.pim})
		}
	}
	return d, true
}
