package azure

import (
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/event"
)

// Options configure Azure recognition. Their zero value is SPEC.md's
// default: policy all, the roles of section 9.3, a PEC rate of 15%.
type Options struct {
	Policy Policy
	// Roles is the table of eligible roles; nil means DefaultRoles.
	Roles *RoleTable
	// PECRate is the partner earned credit rate, a decimal; "" means 0.15.
	PECRate string
	// Currency is the currency of the log's costs (ISO 4217), which the
	// log does not say; "" means DefaultCurrency. It names the amounts
	// and changes none of them.
	Currency string
}

// DefaultCurrency is the currency of costs when none is configured: the
// currency partner programmes report consumed revenue in.
const DefaultCurrency = "USD"

// Accounts is what recognition reads of the rest of the log: the partner
// directory and the accounts of every tenant.
type Accounts interface {
	// Directory is the partner directory: organisations and location IDs.
	Directory() *directory.Directory
	// AccountStates returns an account's history of link, disabled and
	// deleted, oldest first, and whether the tenant has such an account
	// at all.
	AccountStates(tenant, account string) ([]AccountState, bool)
	// LiveAccount refuses ev when the account does not exist in ev's
	// tenant, or was deleted.
	LiveAccount(ev *event.Event, account string) *event.Refusal
}

// AccountState is what an account is from an instant on: the account's
// history as recognition reads it.
type AccountState struct {
	At       time.Time
	Link     string
	LinkedAt time.Time
	Disabled bool
	Deleted  bool
}

// Engine holds the Azure state of the log folded so far, tenant by tenant.
// Events must be applied in time order, with the accounts' events applied
// to Accounts in their places; an Engine is not safe for concurrent use.
type Engine struct {
	opts     Options
	accounts Accounts
	tenants  map[string]*Tenant
}

// New returns an engine with no state that reads accounts through acc.
func New(opts Options, acc Accounts) *Engine {
	return &Engine{opts: opts, accounts: acc, tenants: make(map[string]*Tenant)}
}

// Options returns the options the engine answers with.
func (e *Engine) Options() Options { return e.opts }

// SetOptions changes how the engine answers. They decide answers only, not
// the fold: an engine restored from a snapshot takes the options of the
// process that restores it.
func (e *Engine) SetOptions(o Options) { e.opts = o }

// tenant returns the tenant's Azure state, made on first use.
func (e *Engine) tenant(id string) *Tenant {
	t := e.tenants[id]
	if t == nil {
		t = newTenant()
		e.tenants[id] = t
	}
	return t
}

// Tenant returns a tenant's Azure state for a snapshot, nil when it has
// none. It is the engine's own, not to be changed.
func (e *Engine) Tenant(id string) *Tenant { return e.tenants[id] }

// RestoreTenant puts a tenant's state, read from a snapshot, in place.
func (e *Engine) RestoreTenant(id string, t *Tenant) {
	if t != nil {
		e.tenants[id] = t.restored()
	}
}

// AdoptTenant replaces the Azure state of tenant id with from's, which
// folded the same directory as e with the tenant's events in their places.
// The resources noted as having consumption kept elsewhere (NoteResource)
// stay noted.
func (e *Engine) AdoptTenant(id string, from *Engine) {
	old := e.tenants[id]
	delete(e.tenants, id)
	if t := from.tenants[id]; t != nil {
		e.tenants[id] = t
	}
	if old == nil {
		return
	}
	for _, path := range old.Usage.Paths {
		if _, ok := e.tenant(id).Usage.index[path]; !ok {
			e.NoteResource(id, path)
		}
	}
}

// Tenants returns the tenants the engine holds Azure state of.
func (e *Engine) Tenants() iter.Seq[string] { return maps.Keys(e.tenants) }

// DropTenant forgets a tenant's Azure state, noted resources included.
func (e *Engine) DropTenant(id string) { delete(e.tenants, id) }

// HasConsumption reports whether a resource (a canonical path) of a tenant
// has consumption: records the engine holds, or noted (NoteResource).
func (e *Engine) HasConsumption(tenant, path string) bool {
	t := e.tenants[tenant]
	if t == nil {
		return false
	}
	_, ok := t.Usage.index[path]
	return ok
}

// NoteResource notes that a resource (a canonical path) of a tenant has
// consumption, kept out of the engine (pal serve keeps pushed consumption
// files as segments): it is listed among the tenant's Azure resources, as
// one whose records the engine holds.
func (e *Engine) NoteResource(tenant, path string) { e.tenant(tenant).Usage.slot(path) }

// Handles reports whether an event is one of section 9.2 that the engine
// applies.
func Handles(typ string) bool {
	switch typ {
	case event.AzureGroupPlaced, event.AzureSubscriptionPlaced, event.GroupCreated, event.GroupMemberAdded,
		event.GroupMemberRemoved, event.AzureRoleAssigned, event.AzureRoleActivated, event.AzureRoleDeactivated,
		event.AzureRoleRemoved, event.AzureConsumption:
		return true
	}
	return false
}

// IsGroup reports whether id names a security group of a tenant.
func (e *Engine) IsGroup(tenant, id string) bool {
	t := e.tenants[tenant]
	return t != nil && t.Groups[id] != nil
}

// EndMemberships ends every running membership of an account of a tenant,
// deleted at instant at.
func (e *Engine) EndMemberships(tenant, acct string, at time.Time) {
	t := e.tenants[tenant]
	if t == nil {
		return
	}
	for _, g := range t.Groups {
		if i, ok := g.current[acct]; ok {
			g.Spans[i].To = at
			delete(g.current, acct)
		}
	}
}

// Put stores a consumption record, in its place or late: a record it
// precedes and that replaced it already wins.
func (e *Engine) Put(ev *event.Event) { e.tenant(ev.Tenant).Usage.put(ev) }

// stateAt returns an account's state at an instant from its history.
func stateAt(states []AccountState, at time.Time) AccountState {
	s, _ := holdingAt(states, at, func(s AccountState) time.Time { return s.At })
	return s
}

// holdingAt returns the entry of a history, oldest first, each entry
// holding from its instant on, that holds at an instant, after every entry
// of that instant; false before the first.
func holdingAt[T any](h []T, at time.Time, from func(T) time.Time) (T, bool) {
	i, _ := slices.BinarySearchFunc(h, at, func(e T, t time.Time) int {
		if from(e).After(t) {
			return 1
		}
		return -1
	})
	if i == 0 {
		var none T
		return none, false
	}
	return h[i-1], true
}

// stateEnd returns when state i of a history ends.
func stateEnd(states []AccountState, i int) time.Time {
	if i+1 < len(states) {
		return states[i+1].At
	}
	return forever
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
