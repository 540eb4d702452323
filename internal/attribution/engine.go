package attribution

import (
	"fmt"
	"slices"
	"time"

	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/event"
)

// Policy chooses among several eligible candidates.
type Policy string

// The policies of SPEC.md section 4.
const (
	Latest Policy = "latest"
	First  Policy = "first"
	Split  Policy = "split"
)

// ParsePolicy returns the policy called s, or an error that lists them.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Latest, First, Split:
		return p, nil
	}
	return "", fmt.Errorf("unknown policy %q: use latest, first or split", s)
}

// Options configure an engine.
type Options struct {
	Policy Policy
	// Counted lists the environment types whose resources are credited.
	Counted []string
	// Azure configures recognition on Azure (SPEC.md section 9).
	Azure azure.Options
	// ActivityWindow is how far back a credit change looks for the gaining
	// account's activity (Change.ActivityBefore); DefaultActivityWindow
	// when zero.
	ActivityWindow time.Duration
}

// DefaultOptions returns the options of SPEC.md: policy latest, and only
// production environments counted.
func DefaultOptions() Options {
	return Options{Policy: Latest, Counted: []string{event.Production}}
}

// ResourceKey names a resource: resource IDs are unique within a tenant.
type ResourceKey struct {
	Tenant   string
	Resource string
}

type accountKey struct {
	tenant, account string
}

// Engine holds the state of the log folded so far. Events must be applied in
// time order (Sort does that); an Engine is not safe for concurrent use.
type Engine struct {
	opts    Options
	counted map[string]bool

	tenants map[string]*tenant
	// dir is the partner directory: organisations and location IDs.
	dir *directory.Directory
	// az is Azure recognition, which reads the accounts folded here.
	az      *azure.Engine
	linksTo map[string]map[accountKey]struct{}
	now     time.Time
	// onChange, when set, hears every change of credit; cause is the event
	// being applied.
	onChange func(Change)
	cause    *event.Event
}

type tenant struct {
	id        string
	accounts  map[string]*account
	envs      map[string]*environment
	resources map[string]*resource
	// history holds the credit intervals of every resource that ever
	// existed in the tenant, across deletions and re-creations.
	history map[string][]Interval
	// transients holds, by resource, the credits a history leaves out
	// because they lasted no time: a use between two changes at one
	// instant was credited by one of them.
	transients map[string][]Transient
}

// Transient is a credit that a resource held for no time, between two
// changes at one instant.
type Transient struct {
	At     time.Time
	Kind   string
	Credit Credit
}

type account struct {
	kind     string
	name     string
	created  time.Time
	disabled bool
	deleted  bool
	link     string
	linkedAt time.Time
	// linkVersion counts the changes of the account's link (created,
	// changed, removed); linkCreated is when the current link was created.
	linkVersion int
	linkCreated time.Time
	// lastLink is the partner ID of the latest link, kept after removal.
	lastLink string
	// roles holds the resources on which the account is an owner,
	// co-owner or active contributor.
	roles map[string]struct{}
	// states is the account's history of link, disabled and deleted, as
	// Azure recognition reads it: each entry holds from its instant on.
	states []azure.AccountState
}

type environment struct {
	envType   string
	resources map[string]struct{}
}

type resource struct {
	kind       string
	spec       event.KindSpec
	env        string
	name       string
	owner      string
	ownerSince time.Time
	coowners   map[string]time.Time
	// active holds, for kinds credited by activity, when each account's
	// first activity made it attributable.
	active   map[string]time.Time
	activity map[string]time.Time
	credit   Credit
	// born is when the resource was created: a resource deleted and
	// created again is a new object, whose history never resumes an
	// interval of the one before.
	born time.Time
}

// New returns an engine with no state.
func New(opts Options) *Engine {
	if opts.Policy == "" {
		opts.Policy = Latest
	}
	counted := make(map[string]bool, len(opts.Counted))
	for _, t := range opts.Counted {
		counted[t] = true
	}
	e := &Engine{
		opts:    opts,
		counted: counted,
		tenants: make(map[string]*tenant),
		dir:     directory.New(),
		linksTo: make(map[string]map[accountKey]struct{}),
	}
	e.az = azure.New(opts.Azure, e)
	return e
}

// Options returns the options the engine was made with.
func (e *Engine) Options() Options { return e.opts }

// NoteConsumption notes that an Azure resource (a canonical path) of a
// tenant has consumption kept out of the log (azure.Engine.NoteResource):
// the tenant lists it among its resources.
func (e *Engine) NoteConsumption(tenant, path string) {
	e.tenant(tenant)
	e.az.NoteResource(tenant, path)
}

// Azure returns the engine's Azure recognition (SPEC.md section 9), which
// reads the accounts this engine folds.
func (e *Engine) Azure() *azure.Engine { return e.az }

// Outcome is what became of an event of the log.
type Outcome int

// The outcomes of an event: applied, a duplicate of an earlier line (see
// Order), or refused.
const (
	Applied Outcome = iota
	Duplicate
	Refused
)

// Result is the outcome of one event. For an applied usage or profiles
// event, Credit is the resource's credit at that moment and Workload its
// workload.
type Result struct {
	Outcome  Outcome
	Refusal  *event.Refusal
	Credit   *Credit
	Workload string
}

// Apply applies one event, which must not be earlier than the events applied
// before it. An event that cannot be applied to the state is refused with
// its code and changes nothing. Duplicates are the caller's to skip (Order).
func (e *Engine) Apply(ev *event.Event) Result {
	e.cause = ev
	res, rf := e.apply(ev)
	e.cause = nil
	if rf != nil {
		return Result{Outcome: Refused, Refusal: rf}
	}
	if ev.Time.After(e.now) {
		e.now = ev.Time
	}
	return res
}

// ApplyLate applies a usage, profiles or azure.consumption event that is
// earlier than the latest applied event. Such an event changes no credit,
// so it needs no refold: usage and profiles are checked and credited from
// the resource's history as it was at their time, after every event of that
// time, and a consumption record is stored unless a record it precedes
// replaced it already. ApplyLate reports false, and does nothing, for any
// other event: those must be folded in their place.
func (e *Engine) ApplyLate(ev *event.Event) (Result, bool) {
	if ev.Type == event.AzureConsumption {
		e.tenant(ev.Tenant)
		e.az.Put(ev)
		return Result{}, true
	}
	if ev.Type != event.Usage && ev.Type != event.Profiles {
		return Result{}, false
	}
	var iv *Interval
	if t := e.tenants[ev.Tenant]; t != nil {
		iv = intervalAt(t.history[ev.Resource], ev.Time)
	}
	if iv == nil {
		return Result{Outcome: Refused, Refusal: event.Refuse(ev, event.UnknownTenantObject, "resource %s does not exist in tenant %s at %s", ev.Resource, ev.Tenant, stamp(ev.Time))}, true
	}
	if rf := checkMeasure(ev, iv.Kind); rf != nil {
		return Result{Outcome: Refused, Refusal: rf}, true
	}
	c := iv.Credit
	return Result{Credit: &c, Workload: event.Kinds[iv.Kind].Workload}, true
}

// MeasuresDiffer reports whether usage and profiles may be credited
// otherwise under two credit histories of a resource, with the credits
// each held for no time (ta, tb), and from which instant on: a use is
// credited by its interval's bounds, kind and holders, or by a credit held
// for no time at its instant, so histories that differ in nothing else
// count every use alike.
func MeasuresDiffer(a, b []Interval, ta, tb []Transient) (from time.Time, differ bool) {
	from, differ = firstDifference(a, b, func(iv Interval) time.Time { return iv.From }, sameMeasures)
	at, transient := firstDifference(ta, tb, func(t Transient) time.Time { return t.At }, func(x, y Transient) bool {
		return x.At.Equal(y.At) && x.Kind == y.Kind && x.Credit.SameCounts(y.Credit)
	})
	switch {
	case !transient:
		return from, differ
	case !differ:
		return at, true
	}
	return earliest(from, at), true
}

// firstDifference returns the time of the first of two sequences' elements
// that differ, the earlier of the two when both are there.
func firstDifference[T any](a, b []T, at func(T) time.Time, same func(T, T) bool) (time.Time, bool) {
	for i := range max(len(a), len(b)) {
		switch {
		case i >= len(a):
			return at(b[i]), true
		case i >= len(b):
			return at(a[i]), true
		case !same(a[i], b[i]):
			return earliest(at(a[i]), at(b[i])), true
		}
	}
	return time.Time{}, false
}

func sameMeasures(x, y Interval) bool {
	return x.From.Equal(y.From) && x.To.Equal(y.To) && x.Kind == y.Kind && x.Credit.SameCounts(y.Credit)
}

// SameCounts reports whether uses credited as c and as d are counted for
// the same locations and organisations, in the same shares.
func (c Credit) SameCounts(d Credit) bool {
	return c.Attributed == d.Attributed && c.Partner == d.Partner && c.Org == d.Org && slices.Equal(c.Shares, d.Shares)
}

func earliest(t, u time.Time) time.Time {
	if u.Before(t) {
		return u
	}
	return t
}

// Shared reports whether a credit history ever shares the credit between
// locations.
func Shared(h []Interval) bool {
	return slices.ContainsFunc(h, func(iv Interval) bool { return len(iv.Credit.Shares) > 0 })
}

// checkMeasure refuses usage of a resource measured in profiles, and
// profiles of one measured in users.
func checkMeasure(ev *event.Event, kind string) *event.Refusal {
	byActivity := event.Kinds[kind].ByActivity
	if ev.Type == event.Usage && byActivity {
		return event.Refuse(ev, event.InvalidKind, "resource %s is a %s, measured in unified profiles: send a profiles event, not usage", ev.Resource, kind)
	}
	if ev.Type == event.Profiles && !byActivity {
		return event.Refuse(ev, event.InvalidKind, "resource %s is a %s, measured in monthly active users: send usage events, not profiles", ev.Resource, kind)
	}
	return nil
}

// Now returns the time of the latest applied event.
func (e *Engine) Now() time.Time { return e.now }

func (e *Engine) tenant(id string) *tenant {
	t := e.tenants[id]
	if t == nil {
		t = &tenant{
			id:         id,
			accounts:   make(map[string]*account),
			envs:       make(map[string]*environment),
			resources:  make(map[string]*resource),
			history:    make(map[string][]Interval),
			transients: make(map[string][]Transient),
		}
		e.tenants[id] = t
	}
	return t
}

func (e *Engine) apply(ev *event.Event) (Result, *event.Refusal) {
	if ev.Type == event.PartnerRegistered {
		return Result{}, e.registerPartner(ev)
	}
	if ev.Type == event.PartnerMetrics {
		return Result{}, e.dir.Metrics(ev)
	}
	t := e.tenant(ev.Tenant)
	if azure.Handles(ev.Type) {
		return Result{}, e.az.Apply(ev)
	}
	switch ev.Type {
	case event.AccountCreated:
		if a := t.accounts[ev.Account]; a != nil {
			if a.deleted {
				return Result{}, event.Refuse(ev, event.AlreadyExists, "account %s was deleted in tenant %s; a deleted account is never created again, use a new account ID", ev.Account, ev.Tenant)
			}
			return Result{}, event.Refuse(ev, event.AlreadyExists, "account %s already exists in tenant %s", ev.Account, ev.Tenant)
		}
		if e.az.IsGroup(t.id, ev.Account) {
			return Result{}, event.Refuse(ev, event.AlreadyExists, "%s is a group of tenant %s; groups and accounts share one namespace, use another account ID", ev.Account, ev.Tenant)
		}
		t.accounts[ev.Account] = &account{kind: ev.Kind, name: ev.Name, created: ev.Time, roles: make(map[string]struct{})}
		return Result{}, nil
	case event.AccountDisabled, event.AccountEnabled, event.AccountDeleted:
		a, rf := e.liveAccount(ev, t, ev.Account)
		if rf != nil {
			return Result{}, rf
		}
		switch ev.Type {
		case event.AccountDisabled:
			a.disabled = true
		case event.AccountEnabled:
			a.disabled = false
		case event.AccountDeleted:
			e.deleteAccount(ev, t, a)
			return Result{}, nil
		}
		a.noteState(ev.Time)
		e.refreshRoles(ev.Time, t, a)
		return Result{}, nil
	case event.EnvironmentCreated:
		if t.envs[ev.Environment] != nil {
			return Result{}, event.Refuse(ev, event.AlreadyExists, "environment %s already exists in tenant %s", ev.Environment, ev.Tenant)
		}
		t.envs[ev.Environment] = &environment{envType: ev.EnvType, resources: make(map[string]struct{})}
		return Result{}, nil
	case event.EnvironmentChanged, event.EnvironmentDeleted:
		env, rf := t.liveEnv(ev)
		if rf != nil {
			return Result{}, rf
		}
		if ev.Type == event.EnvironmentChanged {
			env.envType = ev.EnvType
			for id := range env.resources {
				e.refresh(ev.Time, t, id)
			}
			return Result{}, nil
		}
		for id := range env.resources {
			e.deleteResource(ev, t, id)
		}
		delete(t.envs, ev.Environment)
		return Result{}, nil
	case event.ResourceCreated:
		return Result{}, e.createResource(ev, t)
	case event.ResourceOwnerChange:
		r, rf := t.liveResource(ev)
		if rf != nil {
			return Result{}, rf
		}
		if _, rf := e.liveAccount(ev, t, ev.Owner); rf != nil {
			return Result{}, rf
		}
		e.setOwner(ev, t, ev.Resource, r, ev.Owner)
		return Result{}, nil
	case event.ResourceCoownerAdd, event.ResourceCoownerDel:
		return Result{}, e.coowner(ev, t)
	case event.ResourceActivity:
		r, rf := t.liveResource(ev)
		if rf != nil {
			return Result{}, rf
		}
		a, rf := e.liveAccount(ev, t, ev.Account)
		if rf != nil {
			return Result{}, rf
		}
		r.activity[ev.Account] = ev.Time
		if r.spec.ByActivity {
			if _, ok := r.active[ev.Account]; !ok {
				r.active[ev.Account] = ev.Time
				a.roles[ev.Resource] = struct{}{}
			}
		}
		e.refresh(ev.Time, t, ev.Resource)
		return Result{}, nil
	case event.ResourceDeleted:
		if _, rf := t.liveResource(ev); rf != nil {
			return Result{}, rf
		}
		e.deleteResource(ev, t, ev.Resource)
		return Result{}, nil
	case event.SolutionImported:
		return Result{}, e.importSolution(ev, t)
	case event.PalLinked, event.PalRemoved:
		a, rf := e.checkLink(ev, t)
		if rf != nil {
			return Result{}, rf
		}
		if ev.Type == event.PalRemoved {
			e.setLink(ev, t, a, "")
		} else if a.link != ev.Partner {
			e.setLink(ev, t, a, ev.Partner)
		}
		return Result{}, nil
	case event.Usage, event.Profiles:
		r, rf := t.liveResource(ev)
		if rf != nil {
			return Result{}, rf
		}
		if rf := checkMeasure(ev, r.kind); rf != nil {
			return Result{}, rf
		}
		c := r.credit
		return Result{Credit: &c, Workload: r.spec.Workload}, nil
	}
	return Result{}, event.Refuse(ev, event.UnknownType, "unknown event type %q", ev.Type)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// liveAccount returns the account id of the tenant, refusing ev if it does
// not exist or was deleted.
func (e *Engine) liveAccount(ev *event.Event, t *tenant, id string) (*account, *event.Refusal) {
	a := t.accounts[id]
	if a == nil && e.az.IsGroup(t.id, id) {
		return nil, event.Refuse(ev, event.UnknownTenantObject, "%s is a group of tenant %s, not an account; name an account", id, ev.Tenant)
	}
	if a == nil {
		return nil, event.Refuse(ev, event.UnknownTenantObject, "account %s does not exist in tenant %s at %s; create it with account.created first", id, ev.Tenant, stamp(ev.Time))
	}
	if a.deleted {
		return nil, event.Refuse(ev, event.UnknownTenantObject, "account %s was deleted in tenant %s before %s", id, ev.Tenant, stamp(ev.Time))
	}
	return a, nil
}

// Directory returns the partner directory the engine folds.
func (e *Engine) Directory() *directory.Directory { return e.dir }

// AccountStates returns an account's history of link, disabled and
// deleted, oldest first, and whether the tenant has the account: what Azure
// recognition reads of it (azure.Accounts).
func (e *Engine) AccountStates(tenantID, id string) ([]azure.AccountState, bool) {
	if t := e.tenants[tenantID]; t != nil {
		if a := t.accounts[id]; a != nil {
			return a.states, true
		}
	}
	return nil, false
}

// LiveAccount refuses ev when the account does not exist in ev's tenant or
// was deleted (azure.Accounts).
func (e *Engine) LiveAccount(ev *event.Event, id string) *event.Refusal {
	_, rf := e.liveAccount(ev, e.tenant(ev.Tenant), id)
	return rf
}

// noteState appends the account's state from instant at to its history,
// replacing one of the same instant.
func (a *account) noteState(at time.Time) {
	s := azure.AccountState{At: at, Link: a.link, LinkedAt: a.linkedAt, Disabled: a.disabled, Deleted: a.deleted}
	if n := len(a.states); n > 0 && a.states[n-1].At.Equal(at) {
		a.states[n-1] = s
		return
	}
	a.states = append(a.states, s)
}

// liveEnv returns the event's environment, refusing ev if it does not exist
// at the event's time.
func (t *tenant) liveEnv(ev *event.Event) (*environment, *event.Refusal) {
	env := t.envs[ev.Environment]
	if env == nil {
		return nil, event.Refuse(ev, event.UnknownTenantObject, "environment %s does not exist in tenant %s at %s", ev.Environment, ev.Tenant, stamp(ev.Time))
	}
	return env, nil
}

// liveResource returns the event's resource, refusing ev if it does not
// exist at the event's time.
func (t *tenant) liveResource(ev *event.Event) (*resource, *event.Refusal) {
	r := t.resources[ev.Resource]
	if r == nil {
		return nil, event.Refuse(ev, event.UnknownTenantObject, "resource %s does not exist in tenant %s at %s", ev.Resource, ev.Tenant, stamp(ev.Time))
	}
	return r, nil
}

func (e *Engine) registerPartner(ev *event.Event) *event.Refusal {
	changed, rf := e.dir.Register(ev)
	if rf != nil {
		return rf
	}
	for _, loc := range changed {
		for k := range e.linksTo[loc] {
			t := e.tenants[k.tenant]
			e.refreshRoles(ev.Time, t, t.accounts[k.account])
		}
	}
	return nil
}

func (e *Engine) deleteAccount(ev *event.Event, t *tenant, a *account) {
	if a.link != "" {
		e.setLink(ev, t, a, "")
	}
	a.deleted = true
	a.noteState(ev.Time)
	e.az.EndMemberships(t.id, ev.Account, ev.Time)
	for id := range a.roles {
		r := t.resources[id]
		if r.owner == ev.Account {
			r.owner = ""
		}
		delete(r.coowners, ev.Account)
		delete(r.active, ev.Account)
		e.refresh(ev.Time, t, id)
	}
	clear(a.roles)
}

func (e *Engine) createResource(ev *event.Event, t *tenant) *event.Refusal {
	if t.resources[ev.Resource] != nil {
		return event.Refuse(ev, event.AlreadyExists, "resource %s already exists in tenant %s", ev.Resource, ev.Tenant)
	}
	env, rf := t.liveEnv(ev)
	if rf != nil {
		return rf
	}
	a, rf := e.liveAccount(ev, t, ev.Owner)
	if rf != nil {
		return rf
	}
	e.addResource(ev, t, env, ev.Resource, ev.Kind, ev.Name, ev.Owner, a)
	return nil
}

func (e *Engine) addResource(ev *event.Event, t *tenant, env *environment, id, kind, name, owner string, a *account) {
	t.resources[id] = &resource{
		kind:       kind,
		spec:       event.Kinds[kind],
		env:        ev.Environment,
		name:       name,
		owner:      owner,
		ownerSince: ev.Time,
		coowners:   make(map[string]time.Time),
		active:     make(map[string]time.Time),
		activity:   make(map[string]time.Time),
		born:       ev.Time,
	}
	env.resources[id] = struct{}{}
	a.roles[id] = struct{}{}
	e.refresh(ev.Time, t, id)
}

func (e *Engine) deleteResource(ev *event.Event, t *tenant, id string) {
	r := t.resources[id]
	for _, acct := range r.accounts() {
		delete(t.accounts[acct].roles, id)
	}
	delete(t.envs[r.env].resources, id)
	delete(t.resources, id)
	e.noteChange(t.id, id, ev.Time, r.credit, Credit{Reason: credit.ResourceDeleted}, false, false)
	t.closeHistory(id, ev.Time)
}

// accounts lists every account with a role on the resource.
func (r *resource) accounts() []string {
	var ids []string
	if r.owner != "" {
		ids = append(ids, r.owner)
	}
	for id := range r.coowners {
		ids = append(ids, id)
	}
	for id := range r.active {
		if id != r.owner {
			ids = append(ids, id)
		}
	}
	return ids
}

// hasRole reports whether acct is the owner, a co-owner or active on r.
func (r *resource) hasRole(acct string) bool {
	if r.owner == acct {
		return true
	}
	_, co := r.coowners[acct]
	_, act := r.active[acct]
	return co || act
}

func (e *Engine) setOwner(ev *event.Event, t *tenant, id string, r *resource, owner string) {
	if r.owner == owner {
		return
	}
	prev := r.owner
	r.owner = owner
	r.ownerSince = ev.Time
	delete(r.coowners, owner)
	if prev != "" && !r.hasRole(prev) {
		delete(t.accounts[prev].roles, id)
	}
	t.accounts[owner].roles[id] = struct{}{}
	e.refresh(ev.Time, t, id)
}

func (e *Engine) coowner(ev *event.Event, t *tenant) *event.Refusal {
	r, rf := t.liveResource(ev)
	if rf != nil {
		return rf
	}
	if !r.spec.CoOwners {
		return event.Refuse(ev, event.CoownerNotSupported, "a %s has an owner only, no co-owners", r.kind)
	}
	a, rf := e.liveAccount(ev, t, ev.Account)
	if rf != nil {
		// An account that does not exist, or was deleted, is refused as
		// in any event that names one (SPEC.md section 3), removal too.
		return rf
	}
	if ev.Type == event.ResourceCoownerDel {
		if _, ok := r.coowners[ev.Account]; !ok {
			return event.Refuse(ev, event.NotCoowner, "account %s is not a co-owner of resource %s", ev.Account, ev.Resource)
		}
		delete(r.coowners, ev.Account)
		if !r.hasRole(ev.Account) {
			delete(a.roles, ev.Resource)
		}
		e.refresh(ev.Time, t, ev.Resource)
		return nil
	}
	if _, ok := r.coowners[ev.Account]; ok || r.owner == ev.Account {
		return nil
	}
	r.coowners[ev.Account] = ev.Time
	a.roles[ev.Resource] = struct{}{}
	e.refresh(ev.Time, t, ev.Resource)
	return nil
}

func (e *Engine) importSolution(ev *event.Event, t *tenant) *event.Refusal {
	env, rf := t.liveEnv(ev)
	if rf != nil {
		return rf
	}
	a, rf := e.liveAccount(ev, t, ev.Account)
	if rf != nil {
		return rf
	}
	// The listed resources are checked in order: one listed before, made
	// by this import, exists for those after it.
	listed := map[string]string{}
	for _, sr := range ev.Resources {
		r := t.resources[sr.Resource]
		if r == nil {
			if kind, ok := listed[sr.Resource]; ok && kind != sr.Kind {
				return event.Refuse(ev, event.InvalidKind, "resource %s is listed as a %s, then as a %s; the solution is not imported", sr.Resource, kind, sr.Kind)
			}
			listed[sr.Resource] = sr.Kind
			continue
		}
		if r.kind != sr.Kind {
			return event.Refuse(ev, event.InvalidKind, "resource %s is a %s, not a %s; the solution is not imported", sr.Resource, r.kind, sr.Kind)
		}
		if r.env != ev.Environment {
			return event.Refuse(ev, event.AlreadyExists, "resource %s exists in environment %s, not %s; the solution is not imported", sr.Resource, r.env, ev.Environment)
		}
	}
	for _, sr := range ev.Resources {
		r := t.resources[sr.Resource]
		switch {
		case r == nil:
			e.addResource(ev, t, env, sr.Resource, sr.Kind, sr.Name, ev.Account, a)
		case r.owner == ev.Account:
			// A re-import by the owner renews its association.
			r.activity[ev.Account] = ev.Time
			e.refresh(ev.Time, t, sr.Resource)
		default:
			e.setOwner(ev, t, sr.Resource, r, ev.Account)
		}
	}
	return nil
}

// CheckLink returns the refusal that a pal.linked or pal.removed event
// would meet if it were applied now, or nil: the link API asks it before it
// stores an account's link.
func (e *Engine) CheckLink(ev *event.Event) *event.Refusal {
	t := e.tenants[ev.Tenant]
	if t == nil {
		t = &tenant{id: ev.Tenant}
	}
	_, rf := e.checkLink(ev, t)
	return rf
}

// checkLink returns the account of a link event, or the event's refusal.
func (e *Engine) checkLink(ev *event.Event, t *tenant) (*account, *event.Refusal) {
	a, rf := e.liveAccount(ev, t, ev.Account)
	if rf != nil {
		return nil, rf
	}
	if ev.Type == event.PalRemoved {
		if a.link == "" {
			return nil, event.Refuse(ev, event.NoLink, "account %s holds no partner link in tenant %s; there is nothing to remove", ev.Account, ev.Tenant)
		}
		return a, nil
	}
	if rf := e.dir.CheckLink(ev); rf != nil {
		return nil, rf
	}
	return a, nil
}

func (e *Engine) setLink(ev *event.Event, t *tenant, a *account, partner string) {
	key := accountKey{ev.Tenant, ev.Account}
	if a.link != "" {
		e.unindexLink(a.link, key)
	}
	if a.link == "" {
		a.linkCreated = ev.Time
	}
	a.link = partner
	a.linkedAt = ev.Time
	a.linkVersion++
	if partner != "" {
		a.lastLink = partner
	}
	if partner != "" {
		e.indexLink(partner, key)
	}
	a.noteState(ev.Time)
	e.refreshRoles(ev.Time, t, a)
}

// refreshRoles recomputes the credit of every resource the account has a
// role on.
func (e *Engine) refreshRoles(at time.Time, t *tenant, a *account) {
	for id := range a.roles {
		e.refresh(at, t, id)
	}
}
