package azure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
)

// Azure (SPEC.md section 9). The fold keeps what happened, with its
// instants: each tenant's management-group tree, security-group
// memberships, role assignments with their activations, and consumption;
// each account's states (link, disabled, deleted) are kept in order with the
// rest of the account. Who is recognised is answered from those histories
// when asked (timeline.go), so that a route through another tenant
// (Azure Lighthouse) reads that tenant's history, whatever order the two
// were folded in.

// Policy decides which recognised locations are credited for an Azure
// resource (section 9.4).
type Policy string

// The Azure policies.
const (
	All    Policy = "all"
	Latest Policy = "latest"
	Split  Policy = "split"
)

// ParsePolicy returns the Azure policy called s, or an error that
// lists them.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case All, Latest, Split:
		return p, nil
	}
	return "", fmt.Errorf("unknown Azure policy %q: use all, latest or split", s)
}

// RoleTable says which Azure roles are eligible: a role whose name is one
// of Names, or ends with one of Suffixes, compared case-insensitively.
type RoleTable struct {
	Names    []string
	Suffixes []string
}

// DefaultRoles is the table of SPEC.md section 9.3: the roles of Azure's
// Partner Earned Credit list.
func DefaultRoles() RoleTable {
	return RoleTable{
		Names: []string{"Owner", "Contributor", "User Access Administrator", "Support Request Contributor",
			"Security Admin", "AcrPull", "AcrPush", "Virtual Machine Administrator Login",
			"Virtual Machine User Login", "Reader and Data Access"},
		Suffixes: []string{" Contributor", " Operator", " Owner", " Administrator"},
	}
}

// ReadRoleTable reads a table of eligible roles written as JSON:
// {"names": ["Owner", …], "suffixes": [" Contributor", …]}.
func ReadRoleTable(data []byte) (RoleTable, error) {
	var raw struct {
		Names    []string `json:"names"`
		Suffixes []string `json:"suffixes"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return RoleTable{}, fmt.Errorf("not a table of roles (%v): write {\"names\": [\"Owner\", …], \"suffixes\": [\" Contributor\", …]}", err)
	}
	if len(raw.Names)+len(raw.Suffixes) == 0 {
		return RoleTable{}, fmt.Errorf("the table names no role: list eligible names, suffixes or both")
	}
	return RoleTable{Names: raw.Names, Suffixes: raw.Suffixes}, nil
}

// ParsePECRate reads a partner earned credit rate: a decimal from 0 to 1.
func ParsePECRate(s string) (string, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 || r.Cmp(big.NewRat(1, 1)) > 0 {
		return "", fmt.Errorf("PEC rate %q is not a decimal from 0 to 1, such as 0.15", s)
	}
	return s, nil
}

// Eligible reports whether the role earns recognition.
func (rt RoleTable) Eligible(role string) bool {
	for _, n := range rt.Names {
		if strings.EqualFold(role, n) {
			return true
		}
	}
	for _, s := range rt.Suffixes {
		if len(role) >= len(s) && strings.EqualFold(role[len(role)-len(s):], s) {
			return true
		}
	}
	return false
}

// Tenant is a tenant's Azure state, with its history.
type Tenant struct {
	// Parents and Subs hold the placements of each management group and
	// subscription, oldest first; one never placed hangs from the root.
	Parents map[string][]Placement
	Subs    map[string][]Placement
	// Groups are the tenant's security groups.
	Groups map[string]*SecurityGroup
	// Assignments holds every role assignment ever made, by ID.
	Assignments map[string]*Assignment
	// Usage is the tenant's consumption.
	Usage consumption
	// Latest is the time of the latest event of the tenant's Azure
	// directory and roles applied (consumption aside): how far the log's
	// knowledge of them goes.
	Latest time.Time

	// byScope indexes the assignments by canonical scope; mgScopes lists
	// the management groups' scopes among them.
	byScope  map[string][]*Assignment
	mgScopes []string
}

// Placement puts a management group or subscription under a management
// group ("" for the root) from an instant on.
type Placement struct {
	At    time.Time
	Under string
}

// SecurityGroup is a group of the directory, with its memberships.
type SecurityGroup struct {
	Name string
	// Spans holds every membership, in the order they began; To is zero
	// while one runs.
	Spans []Span
	// current indexes the running memberships by account.
	current map[string]int
}

// Span is an account's membership of a group, or a PIM activation
// (Account empty), from From until To (zero: it goes on).
type Span struct {
	Account  string
	From, To time.Time
}

// Assignment is a role assignment (section 9.2).
type Assignment struct {
	// Tenant is the tenant the assignment was made in; PrincipalTenant the
	// one its principal lives in (another through Azure Lighthouse).
	Tenant                               string
	ID, Principal, PrincipalTenant, Role string
	Scope                                event.Scope
	// Eligible marks a PIM-eligible assignment: it counts only while
	// activated.
	Eligible bool
	// From is when it was made; To when it was removed (zero: it goes on).
	From, To    time.Time
	Activations []Span
}

func newTenant() *Tenant {
	return &Tenant{
		Parents:     make(map[string][]Placement),
		Subs:        make(map[string][]Placement),
		Groups:      make(map[string]*SecurityGroup),
		Assignments: make(map[string]*Assignment),
		Usage:       newConsumption(),
		byScope:     make(map[string][]*Assignment),
	}
}

// restored rebuilds what a snapshot leaves out: the indexes.
func (az *Tenant) restored() *Tenant {
	for _, m := range []*map[string][]Placement{&az.Parents, &az.Subs} {
		if *m == nil {
			*m = make(map[string][]Placement)
		}
	}
	if az.Groups == nil {
		az.Groups = make(map[string]*SecurityGroup)
	}
	if az.Assignments == nil {
		az.Assignments = make(map[string]*Assignment)
	}
	for _, g := range az.Groups {
		g.current = make(map[string]int)
		for i, s := range g.Spans {
			if s.To.IsZero() {
				g.current[s.Account] = i
			}
		}
	}
	az.byScope, az.mgScopes = make(map[string][]*Assignment), nil
	ids := make([]string, 0, len(az.Assignments))
	for id := range az.Assignments {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		az.index(az.Assignments[id])
	}
	az.Usage.reindex()
	return az
}

// placedUnder returns where a placement history puts its subject now.
func placedUnder(h []Placement) string {
	if n := len(h); n > 0 {
		return h[n-1].Under
	}
	return ""
}

// Apply applies an event of section 9.2 (Handles), which must not be
// earlier than the events applied before it, and refuses one that cannot
// be applied to the state.
func (e *Engine) Apply(ev *event.Event) *event.Refusal {
	t := e.tenant(ev.Tenant)
	rf := e.applyEvent(ev, t)
	if rf == nil && ev.Type != event.AzureConsumption && ev.Time.After(t.Latest) {
		t.Latest = ev.Time
	}
	return rf
}

func (e *Engine) applyEvent(ev *event.Event, az *Tenant) *event.Refusal {
	switch ev.Type {
	case event.AzureGroupPlaced:
		for g := ev.Parent; g != ""; g = placedUnder(az.Parents[g]) {
			if g == ev.Group {
				return event.Refuse(ev, event.InvalidValue, "management group %s is above %s in tenant %s; placing %s under %s would make a cycle", ev.Group, ev.Parent, ev.Tenant, ev.Group, ev.Parent)
			}
		}
		az.Parents[ev.Group] = append(az.Parents[ev.Group], Placement{ev.Time, ev.Parent})
	case event.AzureSubscriptionPlaced:
		az.Subs[ev.Subscription] = append(az.Subs[ev.Subscription], Placement{ev.Time, ev.Group})
	case event.GroupCreated:
		if _, ok := e.accounts.AccountStates(ev.Tenant, ev.Group); ok {
			return event.Refuse(ev, event.AlreadyExists, "%s is an account of tenant %s; groups and accounts share one namespace, use another group ID", ev.Group, ev.Tenant)
		}
		if az.Groups[ev.Group] != nil {
			return event.Refuse(ev, event.AlreadyExists, "group %s already exists in tenant %s", ev.Group, ev.Tenant)
		}
		az.Groups[ev.Group] = &SecurityGroup{Name: ev.Name, current: make(map[string]int)}
	case event.GroupMemberAdded, event.GroupMemberRemoved:
		if az.Groups[ev.Group] == nil {
			return event.Refuse(ev, event.UnknownTenantObject, "group %s does not exist in tenant %s at %s; create it with group.created first", ev.Group, ev.Tenant, stamp(ev.Time))
		}
		if rf := e.accounts.LiveAccount(ev, ev.Account); rf != nil {
			return rf
		}
		g := az.Groups[ev.Group]
		i, member := g.current[ev.Account]
		if ev.Type == event.GroupMemberAdded {
			if !member {
				g.current[ev.Account] = len(g.Spans)
				g.Spans = append(g.Spans, Span{Account: ev.Account, From: ev.Time})
			}
			return nil
		}
		if !member {
			return event.Refuse(ev, event.InvalidValue, "account %s is not a member of group %s; there is nothing to remove", ev.Account, ev.Group)
		}
		g.Spans[i].To = ev.Time
		delete(g.current, ev.Account)
	case event.AzureRoleAssigned:
		return e.assignRole(ev, az)
	case event.AzureRoleActivated, event.AzureRoleDeactivated, event.AzureRoleRemoved:
		a, rf := e.liveAssignment(ev, az)
		if rf != nil {
			return rf
		}
		return changeAssignment(ev, a)
	case event.AzureConsumption:
		az.Usage.put(ev)
	}
	return nil
}

func (e *Engine) assignRole(ev *event.Event, az *Tenant) *event.Refusal {
	if az.Assignments[ev.Assignment] != nil {
		return event.Refuse(ev, event.AlreadyExists, "assignment %s already exists in tenant %s; assignment IDs are never reused, even after removal", ev.Assignment, ev.Tenant)
	}
	if !e.IsGroup(ev.PrincipalTenant, ev.Principal) {
		where := ""
		if ev.PrincipalTenant != ev.Tenant {
			where = " (the principal's tenant, through Azure Lighthouse)"
		}
		states, ok := e.accounts.AccountStates(ev.PrincipalTenant, ev.Principal)
		switch {
		case !ok:
			return event.Refuse(ev, event.UnknownTenantObject, "principal %s is neither an account nor a group of tenant %s%s at %s; create it first", ev.Principal, ev.PrincipalTenant, where, stamp(ev.Time))
		case stateAt(states, forever).Deleted:
			return event.Refuse(ev, event.UnknownTenantObject, "account %s was deleted in tenant %s%s before %s", ev.Principal, ev.PrincipalTenant, where, stamp(ev.Time))
		}
	}
	sc, _ := event.ParseScope(ev.Scope) // canonical since Decode
	a := &Assignment{Tenant: ev.Tenant, ID: ev.Assignment, Principal: ev.Principal, PrincipalTenant: ev.PrincipalTenant, Role: ev.Role,
		Scope: sc, Eligible: ev.PIM == event.PIMEligible, From: ev.Time}
	az.Assignments[a.ID] = a
	az.index(a)
	return nil
}

func (az *Tenant) index(a *Assignment) {
	if a.Scope.Kind == event.ScopeManagementGroup && az.byScope[a.Scope.Path] == nil {
		az.mgScopes = append(az.mgScopes, a.Scope.Path)
	}
	az.byScope[a.Scope.Path] = append(az.byScope[a.Scope.Path], a)
}

// liveAssignment returns the event's assignment, refusing ev if it does not
// exist or has ended (removed, or its principal account deleted).
func (e *Engine) liveAssignment(ev *event.Event, az *Tenant) (*Assignment, *event.Refusal) {
	a := az.Assignments[ev.Assignment]
	if a == nil {
		return nil, event.Refuse(ev, event.UnknownTenantObject, "assignment %s does not exist in tenant %s at %s; make it with azure.role_assigned first", ev.Assignment, ev.Tenant, stamp(ev.Time))
	}
	if !a.To.IsZero() {
		return nil, event.Refuse(ev, event.UnknownTenantObject, "assignment %s was removed in tenant %s at %s", ev.Assignment, ev.Tenant, stamp(a.To))
	}
	if e.principalGone(a, forever) {
		return nil, event.Refuse(ev, event.UnknownTenantObject, "assignment %s ended when its principal %s was deleted from tenant %s", ev.Assignment, a.Principal, a.PrincipalTenant)
	}
	return a, nil
}

// changeAssignment activates, deactivates or removes a live assignment.
func changeAssignment(ev *event.Event, a *Assignment) *event.Refusal {
	n := len(a.Activations)
	running := n > 0 && a.Activations[n-1].To.After(ev.Time)
	switch ev.Type {
	case event.AzureRoleActivated:
		if !a.Eligible {
			return event.Refuse(ev, event.InvalidValue, "assignment %s is active, not eligible: only a PIM-eligible assignment is activated", a.ID)
		}
		if running {
			if ev.Until.After(a.Activations[n-1].To) {
				a.Activations[n-1].To = ev.Until
			}
			return nil
		}
		a.Activations = append(a.Activations, Span{From: ev.Time, To: ev.Until})
	case event.AzureRoleDeactivated:
		if !running {
			return event.Refuse(ev, event.InvalidValue, "assignment %s has no activation running at %s; there is nothing to deactivate", a.ID, stamp(ev.Time))
		}
		a.Activations[n-1].To = ev.Time
	case event.AzureRoleRemoved:
		a.To = ev.Time
		if running {
			a.Activations[n-1].To = ev.Time
		}
	}
	return nil
}
