package imports

import (
	"iter"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
)

func init() {
	register(Source{Name: "management-groups", Signature: []string{"children", "parent", "details"}, read: readManagementGroups,
		About: "az account management-group show --name ROOT --expand --recurse, or the REST managementGroups/{id}?$expand=children&$recurse=true (a tree of children); az account management-group entities list, or the REST getEntities (flat, each with its parent): where each management group and subscription is placed, in the tenant the export names"})
}

// placement is where a management group or subscription sits.
type placement struct {
	sub          bool
	name, parent string
}

// readManagementGroups turns a snapshot of a tenant's management-group
// tree into the placements that changed since the log, dated at the
// observation (the export says no time), parents first. The tenant root
// group is the root itself.
func readManagementGroups(each iter.Seq[record], o *Options, b *builder) {
	var order []placement
	seen := map[string]bool{}
	// place notes a child of parent ("" for the root); the root group
	// itself places nothing.
	place := func(r record, name, typ, parent string) {
		name = strings.ToLower(name)
		if strings.EqualFold(name, o.Tenant) {
			return
		}
		if strings.EqualFold(parent, o.Tenant) {
			parent = ""
		}
		sub := strings.HasSuffix(strings.ToLower(typ), "subscriptions")
		if !event.IsSegment(name) || parent != "" && !event.IsSegment(parent) {
			b.problem(r.problem("%q under %q is not a management group or subscription ID", name, parent))
			return
		}
		k := typ + "/" + name
		if seen[k] {
			return
		}
		seen[k] = true
		order = append(order, placement{sub, name, strings.ToLower(parent)})
	}
	var walk func(r record, parent string)
	walk = func(r record, parent string) {
		name := r.str("name")
		if name == "" {
			name = lastSegment(r.str("id"))
		}
		place(r, name, r.str("type"), parent)
		for _, c := range r.list("children") {
			walk(c, name)
		}
	}
	var times []time.Time
	for r := range each {
		// The export names its tenant on every record (the root group's
		// tenantId, each entity's): --tenant is needed only where it does
		// not.
		tenant, ok := b.tenantOf(r, r.str("tenantId", "tenant"))
		switch {
		case !ok:
			continue
		case o.Tenant == "":
			o.Tenant = tenant
		case !strings.EqualFold(tenant, o.Tenant):
			b.problem(r.problem("this record is of tenant %s, the file's first of %s: import each tenant's management groups on their own", tenant, o.Tenant))
			continue
		}
		if r.get("children") != nil || r.str("parent") == "" && r.get("parent") == nil {
			// A tree, from its top.
			parent := ""
			if d, ok := r.sub("details"); ok {
				if p, ok := d.sub("parent"); ok {
					parent = p.str("name")
				}
				if t, ok := parseTime(d.str("updatedTime")); ok {
					times = append(times, t)
				}
			}
			walk(r, parent)
			continue
		}
		// An entity of the flat list, with its parent's ID.
		parent := ""
		if p, ok := r.sub("parent"); ok {
			parent = lastSegment(p.str("id"))
		} else {
			parent = lastSegment(r.str("parent"))
		}
		name := r.str("name")
		if name == "" {
			name = lastSegment(r.str("id"))
		}
		place(r, name, r.str("type"), parent)
	}
	if o.Tenant == "" {
		return
	}
	at := b.notBefore(o.Tenant, observed(o, times))
	groups, subs := map[string]string{}, map[string]string{}
	known := func(m map[string]string, k string) (string, bool) { v, ok := m[k]; return v, ok }
	if b.known != nil {
		groups, subs = b.known.Placements(o.Tenant)
	}
	stamp := at.Format("2006-01-02T15:04:05Z07:00")
	for _, p := range order {
		if p.sub {
			if cur, ok := known(subs, p.name); ok && cur == p.parent {
				continue
			}
			b.add(event.Event{Type: event.AzureSubscriptionPlaced, Time: at, Tenant: o.Tenant, Subscription: p.name, Group: p.parent}, o.Tenant, p.name, p.parent, stamp)
			continue
		}
		if cur, ok := known(groups, p.name); ok && cur == p.parent {
			continue
		}
		b.add(event.Event{Type: event.AzureGroupPlaced, Time: at, Tenant: o.Tenant, Group: p.name, Parent: p.parent}, o.Tenant, p.name, p.parent, stamp)
	}
}
