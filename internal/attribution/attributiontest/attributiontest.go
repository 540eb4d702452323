package attributiontest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
)

// logStart is the first instant of the random logs.
var logStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// randomLog is a random log in the making: its random source, and its
// lines, numbered from 1 as they are added.
type randomLog struct {
	rng    *rand.Rand
	events []*event.Event
}

func newRandomLog(seed, stream uint64) *randomLog {
	return &randomLog{rng: rand.New(rand.NewPCG(seed, stream))}
}

func (l *randomLog) pick(xs ...string) string { return xs[l.rng.IntN(len(xs))] }

func (l *randomLog) add(ev event.Event) {
	ev.Line = len(l.events) + 1
	l.events = append(l.events, &ev)
}

// RandomLog makes a log of n events over a few tenants, accounts and
// resources, with many equal times, references to objects that do not exist,
// ids, and retries (a line repeated whole, id included, later in the log),
// so that every path of the engine is taken, refusals included. Lines are
// numbered from 1 in log order.
func RandomLog(seed uint64, n int) []*event.Event {
	l := newRandomLog(seed, 7)
	rng, pick, add, base := l.rng, l.pick, l.add, logStart
	kinds := []string{"canvas_app", "canvas_app", "flow", "pages_site", "model_driven_app", "ci_instance", "bot"}
	var withID []*event.Event
	add(event.Event{Type: event.PartnerRegistered, Time: base, Org: "100001", Name: "A", Locations: []string{"100011", "100012"}, Segment: event.SMB})
	add(event.Event{Type: event.PartnerRegistered, Time: base, Org: "200001", Name: "B", Locations: []string{"200011"}, Segment: event.Enterprise})
	for range n {
		// Times fall on a coarse grid over two months: many ties.
		at := base.Add(time.Duration(rng.IntN(60*4)) * 6 * time.Hour)
		tenant := pick("t1", "t2")
		acct := pick("a1", "a2", "a3", "a4")
		res := pick("r1", "r2", "r3", "r4", "r5")
		ev := event.Event{Time: at, Tenant: tenant}
		if rng.IntN(10) == 0 {
			ev.ID = fmt.Sprintf("id-%d", len(l.events))
		}
		if rng.IntN(20) == 0 && len(withID) > 0 {
			// A retry: the same line again, as a sender that lost the
			// answer delivers it.
			add(*withID[rng.IntN(len(withID))])
			continue
		}
		switch r := rng.IntN(100); {
		case r < 8:
			ev.Type, ev.Account, ev.Kind = event.AccountCreated, acct, event.AccountGuest
		case r < 16:
			ev.Type, ev.Account, ev.Partner = event.PalLinked, acct, pick("100011", "100012", "200011", "100001", "999999")
		case r < 18:
			ev.Type, ev.Account = event.PalRemoved, acct
		case r < 22:
			ev.Type, ev.Environment, ev.EnvType = event.EnvironmentCreated, pick("e1", "e2"), pick(event.Production, event.Sandbox)
		case r < 24:
			ev.Type, ev.Environment, ev.EnvType = event.EnvironmentChanged, pick("e1", "e2"), pick(event.Production, event.Sandbox)
		case r < 32:
			ev.Type, ev.Environment, ev.Resource, ev.Kind, ev.Owner = event.ResourceCreated, pick("e1", "e2"), res, kinds[rng.IntN(len(kinds))], acct
		case r < 36:
			ev.Type, ev.Resource, ev.Owner = event.ResourceOwnerChange, res, acct
		case r < 42:
			ev.Type, ev.Resource, ev.Account = event.ResourceCoownerAdd, res, acct
		case r < 44:
			ev.Type, ev.Resource, ev.Account = event.ResourceCoownerDel, res, acct
		case r < 50:
			ev.Type, ev.Resource, ev.Account, ev.Action = event.ResourceActivity, res, acct, "edit"
		case r < 52:
			ev.Type, ev.Account = pick(event.AccountDisabled, event.AccountEnabled), acct
		case r < 53:
			ev.Type, ev.Account = event.AccountDeleted, acct
		case r < 54:
			ev.Type, ev.Resource = event.ResourceDeleted, res
		case r < 55:
			ev.Type, ev.Environment, ev.Account = event.SolutionImported, pick("e1", "e2"), acct
			ev.Resources = []event.SolutionResource{{Resource: res, Kind: kinds[rng.IntN(len(kinds))]}}
		case r < 56:
			ev = event.Event{Type: event.PartnerRegistered, Time: at, Org: "100001", Name: "A", Segment: event.SMB,
				Locations: [][]string{{"100011"}, {"100011", "100012"}, {"100012"}}[rng.IntN(3)]}
		case r < 60:
			ev.Type, ev.Resource, ev.Count = event.Profiles, res, int64(rng.IntN(1000))
		default:
			ev.Type, ev.Resource, ev.User = event.Usage, res, fmt.Sprintf("u%d", rng.IntN(30))
		}
		add(ev)
		if ev.ID != "" {
			withID = append(withID, l.events[len(l.events)-1])
		}
	}
	return l.events
}

// begin adds the lines that begin YearOfUses and TiedUses: the partners
// A (100011, 100012) and B (200011), and in each tenant an environment,
// accounts a1 to a3, a1 linked to A and a2 to B, and resources r1, r2, …
// of the kinds given, each owned by a1 or a2.
func begin(add func(event.Event), pick func(...string) string, tenants []string, kinds ...string) {
	add(event.Event{Type: event.PartnerRegistered, Time: logStart, Org: "100001", Name: "A", Locations: []string{"100011", "100012"}, Segment: event.SMB})
	add(event.Event{Type: event.PartnerRegistered, Time: logStart, Org: "200001", Name: "B", Locations: []string{"200011"}, Segment: event.Enterprise})
	for _, t := range tenants {
		add(event.Event{Type: event.EnvironmentCreated, Time: logStart, Tenant: t, Environment: "e1", EnvType: event.Production})
		for _, a := range []string{"a1", "a2", "a3"} {
			add(event.Event{Type: event.AccountCreated, Time: logStart, Tenant: t, Account: a, Kind: event.AccountGuest})
		}
		add(event.Event{Type: event.PalLinked, Time: logStart, Tenant: t, Account: "a1", Partner: "100011"})
		add(event.Event{Type: event.PalLinked, Time: logStart, Tenant: t, Account: "a2", Partner: "200011"})
		for i, kind := range kinds {
			add(event.Event{Type: event.ResourceCreated, Time: logStart.Add(time.Hour), Tenant: t, Environment: "e1", Resource: fmt.Sprintf("r%d", i+1), Kind: kind, Owner: pick("a1", "a2")})
		}
	}
}

// YearSetupLines is how many lines begin a log of YearOfUses: the partners,
// and each tenant's environment, accounts, links and resources.
const YearSetupLines = 2 + 2*(1+3+2+3)

// YearOfUses is a log of two tenants whose uses and profiles span a year,
// and whose credit changes mostly in its first two months: a change that
// arrives late moves the credit of months of uses, most of them after
// the resource's last change, some in the months of its changes, and
// some of resources deleted, created again or measured otherwise.
func YearOfUses(seed uint64, n int) []*event.Event {
	l := newRandomLog(seed, 11)
	rng, pick, add, base := l.rng, l.pick, l.add, logStart
	begin(add, pick, []string{"t1", "t2"}, "canvas_app", "flow", "ci_instance")
	for range n {
		day := rng.IntN(365)
		ev := event.Event{Tenant: pick("t1", "t2"), Resource: pick("r1", "r2", "r3")}
		acct := pick("a1", "a2", "a3")
		switch r := rng.IntN(100); {
		case r < 12:
			if rng.IntN(10) < 7 {
				day = rng.IntN(60)
			}
			switch rng.IntN(6) {
			case 0, 1:
				ev.Type, ev.Account, ev.Partner, ev.Resource = event.PalLinked, acct, pick("100011", "100012", "200011"), ""
			case 2:
				ev.Type, ev.Account, ev.Resource = event.PalRemoved, acct, ""
			case 3:
				ev.Type, ev.Owner = event.ResourceOwnerChange, acct
			case 4:
				ev.Type, ev.Account = event.ResourceCoownerAdd, acct
			default:
				ev.Type, ev.Account, ev.Resource = pick(event.AccountDisabled, event.AccountEnabled), acct, ""
			}
		case r < 14:
			ev.Type = event.ResourceDeleted
		case r < 16:
			ev.Type, ev.Environment, ev.Kind, ev.Owner = event.ResourceCreated, "e1", pick("canvas_app", "ci_instance"), acct
		case r < 30:
			ev.Type, ev.Count = event.Profiles, int64(rng.IntN(1000))
		default:
			ev.Type, ev.User = event.Usage, fmt.Sprintf("u%d", rng.IntN(25))
		}
		ev.Time = base.AddDate(0, 0, day).Add(time.Duration(rng.IntN(4)) * 6 * time.Hour)
		if ev.Type != event.Usage && ev.Type != event.Profiles {
			// Changes fall between the uses' times: the same instant is
			// applied in log order, which the arrival of a late change
			// after the uses would not keep.
			ev.Time = ev.Time.Add(3 * time.Hour)
		}
		add(ev)
	}
	return l.events
}

// TiedUses is a log of a tenant whose changes of credit fall on the
// instants of its uses: a use between two changes at one instant (an
// account disabled, then enabled) is credited by a credit its resource
// holds for no time. Resources are deleted and created again, and a third
// is measured in profiles.
func TiedUses(seed uint64, n int) []*event.Event {
	l := newRandomLog(seed, 13)
	rng, pick, base := l.rng, l.pick, logStart
	add := func(ev event.Event) {
		ev.ID = fmt.Sprintf("l%d", len(l.events)+1)
		l.add(ev)
	}
	begin(add, pick, []string{"t1"}, "canvas_app", "canvas_app", "ci_instance")
	for range n {
		day := rng.IntN(120)
		at := base.AddDate(0, 0, day).Add(time.Duration(rng.IntN(2)) * 12 * time.Hour)
		ev := event.Event{Tenant: "t1", Resource: pick("r1", "r2", "r3"), Time: at}
		acct := pick("a1", "a2", "a3")
		switch r := rng.IntN(100); {
		case r < 6:
			ev.Type, ev.Account, ev.Partner, ev.Resource = event.PalLinked, acct, pick("100011", "100012", "200011"), ""
		case r < 8:
			ev.Type, ev.Account, ev.Resource = event.PalRemoved, acct, ""
		case r < 11:
			ev.Type, ev.Owner = event.ResourceOwnerChange, acct
		case r < 14:
			ev.Type, ev.Account = event.ResourceCoownerAdd, acct
		case r < 16:
			ev.Type, ev.Account, ev.Action = event.ResourceActivity, acct, "edit"
		case r < 20:
			// A disable, a use, an enable, at one instant.
			add(event.Event{Type: event.AccountDisabled, Time: at, Tenant: "t1", Account: acct})
			add(event.Event{Type: event.Usage, Time: at, Tenant: "t1", Resource: ev.Resource, User: fmt.Sprintf("u%d", rng.IntN(25))})
			ev.Type, ev.Account, ev.Resource = event.AccountEnabled, acct, ""
		case r < 21:
			ev.Type = event.ResourceDeleted
		case r < 22:
			ev.Type, ev.Environment, ev.Kind, ev.Owner = event.ResourceCreated, "e1", pick("canvas_app", "ci_instance"), acct
		case r < 35:
			ev.Type, ev.Count = event.Profiles, int64(rng.IntN(1000))
		default:
			ev.Type, ev.User = event.Usage, fmt.Sprintf("u%d", rng.IntN(25))
		}
		add(ev)
	}
	return l.events
}

// TiedSetupLines is how many lines begin a log of TiedUses.
const TiedSetupLines = 2 + 1 + 3 + 2 + 3

// ShiftedTies is a log of one tenant whose instants at noon hold several
// changes (activities, accounts disabled and enabled, links) with uses
// between them, and whose lone changes fall at midnight: a lone change
// that arrives late may change which change of a noon moves a credit, and
// with it a use's credit, though no history moves. LoneChange tells the
// lone changes.
func ShiftedTies(seed uint64, n int) []*event.Event {
	l := newRandomLog(seed, 17)
	rng, pick, base := l.rng, l.pick, logStart
	add := func(ev event.Event) {
		ev.ID = fmt.Sprintf("l%d", len(l.events)+1)
		if ev.Type != event.PartnerRegistered {
			ev.Tenant = "t1"
		}
		l.add(ev)
	}
	add(event.Event{Type: event.PartnerRegistered, Time: base, Org: "100001", Name: "A", Locations: []string{"100011"}, Segment: event.SMB})
	add(event.Event{Type: event.PartnerRegistered, Time: base, Org: "200001", Name: "B", Locations: []string{"200011"}, Segment: event.SMB})
	add(event.Event{Type: event.EnvironmentCreated, Time: base, Environment: "e1", EnvType: event.Production})
	for _, a := range []string{"a1", "a2", "a3"} {
		add(event.Event{Type: event.AccountCreated, Time: base, Account: a, Kind: event.AccountGuest})
	}
	add(event.Event{Type: event.PalLinked, Time: base, Account: "a1", Partner: "100011"})
	add(event.Event{Type: event.PalLinked, Time: base, Account: "a2", Partner: "200011"})
	add(event.Event{Type: event.PalLinked, Time: base, Account: "a3", Partner: "100011"})
	for _, r := range []string{"r1", "r2"} {
		add(event.Event{Type: event.ResourceCreated, Time: base.Add(time.Hour), Environment: "e1", Resource: r, Kind: "canvas_app", Owner: "a1"})
		add(event.Event{Type: event.ResourceCoownerAdd, Time: base.Add(time.Hour), Resource: r, Account: "a2"})
		add(event.Event{Type: event.ResourceCoownerAdd, Time: base.Add(time.Hour), Resource: r, Account: "a3"})
	}
	change := func(at time.Time) {
		ev := event.Event{Time: at, Account: pick("a1", "a2", "a3")}
		switch rng.IntN(6) {
		case 0, 1:
			ev.Type, ev.Resource, ev.Action = event.ResourceActivity, pick("r1", "r2"), "edit"
		case 2:
			ev.Type = event.AccountEnabled
		case 3:
			ev.Type = event.AccountDisabled
		case 4:
			ev.Type, ev.Partner = event.PalLinked, pick("100011", "200011")
		default:
			ev.Type = event.PalRemoved
		}
		add(ev)
	}
	for range n {
		day := base.AddDate(0, 0, 1+rng.IntN(90))
		if rng.IntN(3) == 0 {
			change(day)
			continue
		}
		noon := day.Add(12 * time.Hour)
		for range 2 + rng.IntN(4) {
			if rng.IntN(2) == 0 {
				add(event.Event{Type: event.Usage, Time: noon, Resource: pick("r1", "r2"), User: fmt.Sprintf("u%d", rng.IntN(8))})
			} else {
				change(noon)
			}
		}
	}
	return l.events
}

// LoneChange reports whether a line of ShiftedTies is a lone change: at
// midnight, after the lines that begin the log.
func LoneChange(ev *event.Event) bool {
	return ev.Line > 15 && ev.Time.Hour() == 0 && ev.Type != event.Usage
}

// ShuffleKeepingTies returns the events in a random order in which events of
// equal time keep their relative order.
func ShuffleKeepingTies(rng *rand.Rand, events []*event.Event) []*event.Event {
	out := slices.Clone(events)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	byTime := make(map[time.Time][]*event.Event)
	for _, ev := range events {
		byTime[ev.Time] = append(byTime[ev.Time], ev)
	}
	next := make(map[time.Time]int)
	for i, ev := range out {
		out[i] = byTime[ev.Time][next[ev.Time]]
		next[ev.Time]++
	}
	return out
}

// RandomAzureLog makes a log of n events of Azure recognition (SPEC.md
// section 9) over two customer tenants and a partner's home tenant that
// acts in them through Azure Lighthouse: management groups that move,
// security groups, assignments at every kind of scope, PIM activations,
// links and account states that change, and consumption of a few
// resources, with ties, ids, retries and references to what does not exist.
// Events are as Decode leaves them: paths canonical, defaults filled in.
func RandomAzureLog(seed uint64, n int) []*event.Event {
	l := newRandomLog(seed, 11)
	rng, pick, add, base := l.rng, l.pick, l.add, logStart
	var withID []*event.Event
	add(event.Event{Type: event.PartnerRegistered, Time: base, Org: "100001", Name: "A", Locations: []string{"100011", "100012"}, Segment: event.SMB})
	add(event.Event{Type: event.PartnerRegistered, Time: base, Org: "200001", Name: "B", Locations: []string{"200011"}, Segment: event.SMB})
	// In each tenant an anchor account that nothing else names holds
	// Contributor on the root: every record's cost reaches a report.
	for _, tenant := range []string{"t1", "t2"} {
		add(event.Event{Type: event.AccountCreated, Time: base, Tenant: tenant, Account: "anchor", Kind: event.AccountServicePrincipal})
		add(event.Event{Type: event.PalLinked, Time: base, Tenant: tenant, Account: "anchor", Partner: "200011"})
		add(event.Event{Type: event.AzureRoleAssigned, Time: base, Tenant: tenant, Assignment: "root", Principal: "anchor",
			PrincipalTenant: tenant, Role: "Owner", Scope: "/", PIM: event.PIMActive})
	}
	// The partner's home tenant has an account and a group from the start,
	// so that assignments through Lighthouse take hold.
	add(event.Event{Type: event.AccountCreated, Time: base, Tenant: "home", Account: "a1", Kind: event.AccountUser})
	add(event.Event{Type: event.PalLinked, Time: base, Tenant: "home", Account: "a1", Partner: "100012"})
	add(event.Event{Type: event.GroupCreated, Time: base, Tenant: "home", Group: "g1"})
	add(event.Event{Type: event.GroupMemberAdded, Time: base, Tenant: "home", Group: "g1", Account: "a1"})
	resources := []string{
		"/subscriptions/s1/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1",
		"/subscriptions/s1/resourcegroups/rg2/providers/microsoft.web/sites/w1",
		"/subscriptions/s1/resourcegroups/rg2/providers/microsoft.web/sites/w1/slots/staging",
		"/subscriptions/s2/resourcegroups/rg1/providers/microsoft.sql/servers/db1",
	}
	scopes := []string{"/", "/providers/microsoft.management/managementgroups/m1", "/providers/microsoft.management/managementgroups/m2",
		"/subscriptions/s1", "/subscriptions/s2", "/subscriptions/s1/resourcegroups/rg2", resources[1], resources[0]}
	for range n {
		// Times fall on a coarse grid over two months: many ties.
		at := base.Add(time.Duration(rng.IntN(60*8)) * 3 * time.Hour)
		tenant := pick("t1", "t2")
		home := pick("t1", "t2", "home")
		acct := pick("a1", "a2", "a3", "g1")
		ev := event.Event{Time: at, Tenant: tenant}
		if rng.IntN(10) == 0 {
			ev.ID = fmt.Sprintf("id-%d", len(l.events))
		}
		if rng.IntN(20) == 0 && len(withID) > 0 {
			add(*withID[rng.IntN(len(withID))])
			continue
		}
		assignment := pick("x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10")
		switch r := rng.IntN(100); {
		case r < 8:
			ev.Tenant, ev.Type, ev.Account, ev.Kind = home, event.AccountCreated, acct, event.AccountUser
		case r < 14:
			ev.Tenant, ev.Type, ev.Account, ev.Partner = home, event.PalLinked, acct, pick("100011", "100012", "200011", "999999")
		case r < 15:
			ev.Tenant, ev.Type, ev.Account = home, event.PalRemoved, acct
		case r < 18:
			ev.Tenant, ev.Type, ev.Account = home, pick(event.AccountDisabled, event.AccountEnabled), acct
		case r < 19:
			ev.Tenant, ev.Type, ev.Account = home, event.AccountDeleted, acct
		case r < 21:
			ev.Tenant, ev.Type, ev.Group, ev.Name = home, event.GroupCreated, pick("g1", "g2"), "G"
		case r < 25:
			ev.Tenant, ev.Type, ev.Group, ev.Account = home, pick(event.GroupMemberAdded, event.GroupMemberAdded, event.GroupMemberRemoved), pick("g1", "g2"), acct
		case r < 28:
			ev.Type, ev.Group, ev.Parent = event.AzureGroupPlaced, pick("m1", "m2", "m3"), pick("", "m1", "m2", "m3")
			if ev.Group == ev.Parent {
				ev.Parent = ""
			}
		case r < 31:
			ev.Type, ev.Subscription, ev.Group = event.AzureSubscriptionPlaced, pick("s1", "s2"), pick("", "m1", "m2", "m3")
		case r < 42:
			ev.Type, ev.Assignment, ev.Principal, ev.PrincipalTenant = event.AzureRoleAssigned, assignment, pick("a1", "a2", "a3", "g1", "g2"), home
			ev.Role = pick("Contributor", "Owner", "Reader", "Virtual Machine Contributor")
			ev.Scope = scopes[rng.IntN(len(scopes))]
			ev.PIM = pick(event.PIMActive, event.PIMActive, event.PIMEligible)
		case r < 48:
			ev.Type, ev.Assignment = event.AzureRoleActivated, assignment
			ev.Until = at.Add(time.Duration(1+rng.IntN(16)) * 3 * time.Hour)
		case r < 50:
			ev.Type, ev.Assignment = event.AzureRoleDeactivated, assignment
		case r < 53:
			ev.Type, ev.Assignment = event.AzureRoleRemoved, assignment
		case r < 54:
			ev = event.Event{Type: event.PartnerRegistered, Time: at, Org: "100001", Name: "A", Segment: event.SMB,
				Locations: [][]string{{"100011"}, {"100011", "100012"}, {"100012"}}[rng.IntN(3)]}
		default:
			ev.Type, ev.Resource = event.AzureConsumption, resources[rng.IntN(len(resources))]
			ev.Date = base.AddDate(0, 0, rng.IntN(75)).Format(time.DateOnly)
			ev.Cost = pick("0", "1", "2.5", "10", "0.333", "7.123456789012")
			ev.Meter = event.Meters[rng.IntN(len(event.Meters))]
		}
		add(ev)
		if ev.ID != "" {
			withID = append(withID, l.events[len(l.events)-1])
		}
	}
	return l.events
}

// ManyApps is a log of one tenant, bigco, where Proseware's partner ID
// 4000011 owns n canvas apps (app-0001…) and Wingtip's 5000011 others more
// (other-…), each used by one to three users on 10 January 2026: a data
// set of pages that do not fit on one.
func ManyApps(n, others int) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line(`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"4000001","name":"Proseware","locations":["4000011"]}`)
	line(`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"5000001","name":"Wingtip","locations":["5000011"]}`)
	line(`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"bigco","environment":"prod","env_type":"production"}`)
	line(`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"bigco","account":"pat@proseware.example","kind":"guest"}`)
	line(`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"bigco","account":"wes@wingtip.example","kind":"guest"}`)
	line(`{"type":"pal.linked","time":"2026-01-01T01:00:00Z","tenant":"bigco","account":"pat@proseware.example","partner":"4000011"}`)
	line(`{"type":"pal.linked","time":"2026-01-01T01:00:00Z","tenant":"bigco","account":"wes@wingtip.example","partner":"5000011"}`)
	for i := 1; i <= n+others; i++ {
		owner, id := "pat@proseware.example", fmt.Sprintf("app-%04d", i)
		if i > n {
			owner, id = "wes@wingtip.example", fmt.Sprintf("other-%04d", i)
		}
		line(`{"type":"resource.created","time":"2026-01-02T00:00:00Z","tenant":"bigco","environment":"prod","resource":%q,"kind":"canvas_app","owner":%q,"name":"App %04d"}`, id, owner, i)
		for u := 0; u <= i%3; u++ {
			line(`{"type":"usage","time":"2026-01-10T00:00:00Z","tenant":"bigco","resource":%q,"user":"u%d"}`, id, u)
		}
	}
	return b.String()
}

// Feed is a consumer of the feed of credit changes: it holds, by resource,
// the changes applied in order, a correction replacing what was held from
// its instant on (SPEC.md section 8).
type Feed map[attribution.ResourceKey][]attribution.Change

// Apply applies changes in feed order.
func (f Feed) Apply(changes ...attribution.Change) {
	for _, c := range changes {
		k := attribution.ResourceKey{Tenant: c.Tenant, Resource: c.Resource}
		if c.Correction {
			f[k] = slices.DeleteFunc(f[k], func(d attribution.Change) bool { return !d.Time.Before(c.Time) })
		}
		f[k] = append(f[k], c)
	}
}

// Holders reduces changes to the partners credited from each instant on:
// the last change of an instant counts, and a change to the partners
// already credited is none. A feed applied gives a resource's history
// when Holders of its changes is Holders of the history's change points.
func Holders(cs []attribution.Change) []string {
	var out []string
	last := "[]"
	for i, c := range cs {
		if i+1 < len(cs) && cs[i+1].Time.Equal(c.Time) {
			continue
		}
		who := fmt.Sprintf("%s%v", c.To.Partner, c.To.Shares)
		if who == last {
			continue
		}
		data, _ := json.Marshal(c.Time)
		out = append(out, string(data)+" "+who)
		last = who
	}
	return out
}
