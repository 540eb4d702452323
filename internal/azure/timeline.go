package azure

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
)

// forever ends what has no end yet: after the log's last event the last
// state goes on.
var forever = time.Unix(1<<40, 0).UTC()

func endOr(t time.Time) time.Time {
	if t.IsZero() {
		return forever
	}
	return t
}

// span is a half-open stretch of time.
type span struct{ from, to time.Time }

func (s span) clip(o span) (span, bool) {
	r := span{later(s.from, o.from), earlier(s.to, o.to)}
	return r, r.from.Before(r.to)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

var always = span{time.Time{}, forever}

// route is one way a location is recognised for what an assignment's
// scope contains: an account, through the assignment (and its group), for a
// stretch of time over which nothing that decides it changes.
type route struct {
	span
	partner, org string
	// since is the route's association time (section 9.4).
	since      time.Time
	account    string
	group      string
	assignment *Assignment
	// active marks a route through an active assignment, not a PIM
	// activation.
	active bool
}

// query answers Azure questions about one engine; it keeps what it
// computes, so that resources that share their assignments share the work.
// It is made for one question (a report, an explanation) and dropped.
type query struct {
	e         *Engine
	policy    Policy
	locations map[string][]locPiece
	routes    map[*Assignment][]route
	ancestors map[tenantSub][]ancestry
	timelines map[string]*timelineEntry
}

// timelineEntry is a timeline that resources with the same assignments
// share, with what each of its days earns, computed once.
type timelineEntry struct {
	pieces []azPiece
	// credits holds what the days of a month's report earn, each once:
	// day holds, by a day's place in the month that begins on day from, its
	// index in credits; set marks the days known.
	from    int32
	set     uint32
	day     []int32
	credits []dayCredits
	// whole holds, by piece, the index in credits + 1 of the days the
	// piece covers whole (0: none known yet).
	whole []int32
}

// piecesAfter returns the index of the first piece of a timeline that
// ends after t: the first that holds t, or any instant after it.
func piecesAfter(tl []azPiece, t time.Time) int {
	i, _ := slices.BinarySearchFunc(tl, t, func(p azPiece, t time.Time) int {
		if p.to.After(t) {
			return 1
		}
		return -1
	})
	return i
}

// wholeDay returns the index of the piece that covers day d (days since
// 1970-01-01) whole, or -1.
func (te *timelineEntry) wholeDay(d int32) int {
	from, to := event.DayStart(d), event.DayStart(d+1)
	i := piecesAfter(te.pieces, from)
	if i < len(te.pieces) && !te.pieces[i].from.After(from) && !te.pieces[i].to.Before(to) {
		return i
	}
	return -1
}

type tenantSub struct{ tenant, sub string }

// locPiece says which organisation holds a location ID over a span.
type locPiece struct {
	span
	org string
}

// ancestry is the chain of management groups above a subscription over a
// span, nearest first.
type ancestry struct {
	span
	groups []string
}

func (e *Engine) query() *query {
	q := &query{e: e, policy: e.opts.Policy, routes: map[*Assignment][]route{},
		ancestors: map[tenantSub][]ancestry{}, timelines: map[string]*timelineEntry{}}
	if q.policy == "" {
		q.policy = All
	}
	return q
}

// locs returns the history of location IDs, computed on first use.
func (q *query) locs() map[string][]locPiece {
	if q.locations == nil {
		q.locations = q.e.locationHistory()
	}
	return q.locations
}

// locationHistory lists, for every location ID, the organisations that
// listed it and when, from the organisations' registrations.
func (e *Engine) locationHistory() map[string][]locPiece {
	out := make(map[string][]locPiece)
	dir := e.accounts.Directory()
	for _, id := range dir.IDs() {
		open := map[string]time.Time{}
		for _, reg := range dir.Org(id).Registrations {
			for loc, from := range open {
				if !slices.Contains(reg.Locations, loc) {
					if from.Before(reg.At) {
						out[loc] = append(out[loc], locPiece{span{from, reg.At}, id})
					}
					delete(open, loc)
				}
			}
			for _, loc := range reg.Locations {
				if _, ok := open[loc]; !ok {
					open[loc] = reg.At
				}
			}
		}
		for loc, from := range open {
			out[loc] = append(out[loc], locPiece{span{from, forever}, id})
		}
	}
	for _, ps := range out {
		slices.SortFunc(ps, func(a, b locPiece) int { return a.from.Compare(b.from) })
	}
	return out
}

// routesOf lists the routes of an assignment, over all time: none for a
// role that earns nothing.
func (q *query) routesOf(a *Assignment) []route {
	if rs, ok := q.routes[a]; ok {
		return rs
	}
	var rs []route
	if q.e.opts.roles().Eligible(a.Role) {
		rs = q.e.assignmentRoutes(a, q.locs())
	}
	q.routes[a] = rs
	return rs
}

// roles returns the table of eligible roles, the default when none is set.
func (o Options) roles() RoleTable {
	if o.Roles == nil {
		return DefaultRoles()
	}
	return *o.Roles
}

// window is a stretch during which an assignment counts, with the
// association time it gives.
type window struct {
	span
	since time.Time
}

// windows lists when an assignment counts: from its start to its removal
// when active, during its activations when eligible.
func (a *Assignment) windows() []window {
	life := span{a.From, endOr(a.To)}
	if !a.Eligible {
		return []window{{life, a.From}}
	}
	var out []window
	for _, act := range a.Activations {
		if s, ok := life.clip(span{act.From, endOr(act.To)}); ok {
			out = append(out, window{s, act.From})
		}
	}
	return out
}

// member is an account through which an assignment acts, over a span: the
// principal itself, or a member of the principal group.
type member struct {
	span
	account, group string
	since          time.Time
}

func (e *Engine) members(a *Assignment) []member {
	if !e.IsGroup(a.PrincipalTenant, a.Principal) {
		return []member{{always, a.Principal, "", time.Time{}}}
	}
	var out []member
	for _, s := range e.tenants[a.PrincipalTenant].Groups[a.Principal].Spans {
		out = append(out, member{span{s.From, endOr(s.To)}, s.Account, a.Principal, s.From})
	}
	return out
}

func (e *Engine) assignmentRoutes(a *Assignment, locs map[string][]locPiece) []route {
	var rs []route
	for _, w := range a.windows() {
		for _, m := range e.members(a) {
			s, ok := w.clip(m.span)
			if !ok {
				continue
			}
			states, _ := e.accounts.AccountStates(a.PrincipalTenant, m.account)
			for i, st := range states {
				if st.Link == "" || st.Disabled || st.Deleted {
					continue
				}
				s, ok := s.clip(span{st.At, stateEnd(states, i)})
				if !ok {
					continue
				}
				for _, lp := range locs[st.Link] {
					s, ok := s.clip(lp.span)
					if !ok {
						continue
					}
					since := later(later(w.since, m.since), st.LinkedAt)
					rs = append(rs, route{span: s, partner: st.Link, org: lp.org, since: since,
						account: m.account, group: m.group, assignment: a, active: !a.Eligible})
				}
			}
		}
	}
	return rs
}

// ancestry returns the management groups above a subscription over time.
func (q *query) ancestry(tid string, az *Tenant, sub string) []ancestry {
	k := tenantSub{tid, sub}
	if a, ok := q.ancestors[k]; ok {
		return a
	}
	instants := []time.Time{{}}
	for _, h := range az.Parents {
		for _, p := range h {
			instants = append(instants, p.At)
		}
	}
	for _, p := range az.Subs[sub] {
		instants = append(instants, p.At)
	}
	slices.SortFunc(instants, time.Time.Compare)
	instants = slices.CompactFunc(instants, time.Time.Equal)
	var out []ancestry
	for i, at := range instants {
		to := forever
		if i+1 < len(instants) {
			to = instants[i+1]
		}
		var groups []string
		for g := underAt(az.Subs[sub], at); g != "" && len(groups) <= len(az.Parents); g = underAt(az.Parents[g], at) {
			groups = append(groups, g)
		}
		if n := len(out); n > 0 && slices.Equal(out[n-1].groups, groups) {
			out[n-1].to = to
			continue
		}
		out = append(out, ancestry{span{at, to}, groups})
	}
	q.ancestors[k] = out
	return out
}

// underAt returns where a placement history puts its subject at an
// instant, after every event of that instant.
func underAt(h []Placement, at time.Time) string {
	p, _ := holdingAt(h, at, func(p Placement) time.Time { return p.At })
	return p.Under
}

// covering is an assignment whose scope holds a resource, and when it does.
type covering struct {
	a     *Assignment
	spans []span
}

// coverings lists the assignments of a tenant whose scope holds the
// resource at some instant, and the key of that list: resources with the
// same key share their timeline.
func (q *query) coverings(tid string, az *Tenant, sc event.Scope) ([]covering, string) {
	var out []covering
	var key strings.Builder
	key.WriteString(tid)
	add := func(prefix string) {
		for _, a := range az.byScope[prefix] {
			out = append(out, covering{a: a})
			key.WriteString("\x00" + a.ID)
		}
	}
	add("/")
	event.Prefixes(sc.Path, add)
	for _, path := range az.mgScopes {
		as := az.byScope[path]
		var within []span
		group := as[0].Scope.Group
		for _, anc := range q.ancestry(tid, az, sc.Subscription) {
			if slices.Contains(anc.groups, group) {
				within = append(within, anc.span)
			}
		}
		if len(within) == 0 {
			continue
		}
		for _, a := range as {
			out = append(out, covering{a, within})
			key.WriteString("\x00" + a.ID)
		}
		key.WriteString("\x00@" + sc.Subscription)
	}
	return out, key.String()
}

// recognition is a location recognised for a resource over a piece of its
// timeline.
type recognition struct {
	Partner, Org string
	Since        time.Time
	// Account is the account of the location's latest route.
	Account string
	// Active tells whether an active assignment recognises the location.
	Active bool
}

// azPiece is a stretch of a resource's timeline over which the same
// locations are recognised in the same way.
type azPiece struct {
	span
	recognised []recognition
}

// timeline returns the recognition timeline of an Azure resource of a
// tenant: the pieces over which at least one location is recognised.
func (q *query) timeline(tid string, sc event.Scope) []azPiece {
	if te := q.entry(tid, sc); te != nil {
		return te.pieces
	}
	return nil
}

// entry returns the shared timeline of an Azure resource of a tenant, nil
// when the tenant has no Azure state.
func (q *query) entry(tid string, sc event.Scope) *timelineEntry {
	t := q.e.tenants[tid]
	if t == nil {
		return nil
	}
	covs, key := q.coverings(tid, t, sc)
	if te, ok := q.timelines[key]; ok {
		return te
	}
	var rs []route
	for _, c := range covs {
		for _, r := range q.routesOf(c.a) {
			if c.spans == nil {
				rs = append(rs, r)
				continue
			}
			for _, s := range c.spans {
				if clipped, ok := r.clip(s); ok {
					r2 := r
					r2.span = clipped
					rs = append(rs, r2)
				}
			}
		}
	}
	te := &timelineEntry{pieces: sweep(rs)}
	q.timelines[key] = te
	return te
}

// sweep turns routes into a timeline: at every instant, each location with
// its latest route.
func sweep(rs []route) []azPiece {
	if len(rs) == 0 {
		return nil
	}
	var cuts []time.Time
	for _, r := range rs {
		cuts = append(cuts, r.from, r.to)
	}
	slices.SortFunc(cuts, time.Time.Compare)
	cuts = slices.CompactFunc(cuts, time.Time.Equal)
	var out []azPiece
	for i := 0; i+1 < len(cuts); i++ {
		s := span{cuts[i], cuts[i+1]}
		var rec []recognition
		for _, r := range rs {
			if r.from.After(s.from) || !r.to.After(s.from) {
				continue
			}
			k := slices.IndexFunc(rec, func(x recognition) bool { return x.Partner == r.partner })
			if k < 0 {
				rec = append(rec, recognition{Partner: r.partner, Org: r.org, Since: r.since, Account: r.account, Active: r.active})
				continue
			}
			x := &rec[k]
			x.Active = x.Active || r.active
			if c := r.since.Compare(x.Since); c > 0 || c == 0 && r.account < x.Account {
				x.Since, x.Account = r.since, r.account
			}
		}
		if len(rec) == 0 {
			continue
		}
		slices.SortFunc(rec, func(a, b recognition) int { return cmp.Compare(a.Partner, b.Partner) })
		if n := len(out); n > 0 && out[n-1].to.Equal(s.from) && slices.Equal(out[n-1].recognised, rec) {
			out[n-1].to = s.to
			continue
		}
		out = append(out, azPiece{s, rec})
	}
	return out
}

// credited returns the indices of the recognised locations the policy
// credits, and the denominator of each one's share.
func (p Policy) credited(rec []recognition) (who []int, den int) {
	switch p {
	case Latest:
		return []int{latestIndex(rec)}, 1
	case Split:
		den = len(rec)
	default:
		den = 1
	}
	who = make([]int, len(rec))
	for i := range who {
		who[i] = i
	}
	return who, den
}

// latestIndex returns the recognised location with the latest association,
// ties to the smallest location ID (rec is sorted by it).
func latestIndex(rec []recognition) int {
	best := 0
	for i, r := range rec[1:] {
		if r.Since.After(rec[best].Since) {
			best = i + 1
		}
	}
	return best
}

// pieceAt returns the piece of a timeline that holds an instant, or nil.
func pieceAt(tl []azPiece, at time.Time) *azPiece {
	i, _ := slices.BinarySearchFunc(tl, at, func(p azPiece, t time.Time) int {
		if p.from.After(t) {
			return 1
		}
		return -1
	})
	if i == 0 || !tl[i-1].to.After(at) {
		return nil
	}
	return &tl[i-1]
}

// Recognition is a span over which a location is recognised for an
// Azure resource in one way: by the same organisation, with the same
// credited share, through the same kind of assignment. A location's spans
// of one resource never overlap. Unlike Interval, which lists credit
// only, it covers the time a location is recognised but not credited
// (policy latest), and it tells active assignments from PIM activations:
// what a warehouse needs to reproduce the Azure report from consumption
// (docs/warehouse.md).
type Recognition struct {
	// From and To bound the span; To is zero while it goes on.
	From, To     time.Time
	Partner, Org string
	// Account is the account of the location's latest route when the
	// span begins.
	Account string
	// credit.Share is the location's credited share under the Azure policy,
	// exactly 1/n for a whole n (1 under all), or 0 while the location is
	// recognised but not credited.
	Share float64
	// Active tells whether an active assignment, not a PIM activation,
	// recognises the location throughout the span.
	Active bool
}

// Recognitions calls fn with the recognition spans of every Azure
// resource with consumption, in the order of tenant then resource, until
// fn returns false; a resource's spans are ordered by start then location.
// The slice is fn's to keep.
func (e *Engine) Recognitions(fn func(tenant, resource string, rs []Recognition) bool) {
	e.eachResource(func(q *query, tenant, resource string, tl []azPiece) bool {
		return fn(tenant, resource, q.policy.recognitions(tl))
	})
}

// recognitions turns a timeline into the maximal spans over which each
// recognised location keeps its organisation, share and kind of route.
func (p Policy) recognitions(tl []azPiece) []Recognition {
	var out []Recognition
	open := map[string]int{} // partner → index in out of its last span
	for _, pc := range tl {
		who, den := p.credited(pc.recognised)
		for k, r := range pc.recognised {
			share := 0.0
			if slices.Contains(who, k) {
				share = 1 / float64(den)
			}
			if i, ok := open[r.Partner]; ok && out[i].To.Equal(pc.from) && out[i].Org == r.Org &&
				out[i].Share == share && out[i].Active == r.Active {
				out[i].To = pc.to
				continue
			}
			open[r.Partner] = len(out)
			out = append(out, Recognition{From: pc.from, To: pc.to, Partner: r.Partner, Org: r.Org,
				Account: r.Account, Share: share, Active: r.Active})
		}
	}
	for i := range out {
		if out[i].To.Equal(forever) {
			out[i].To = time.Time{}
		}
	}
	slices.SortStableFunc(out, func(a, b Recognition) int {
		return cmp.Or(a.From.Compare(b.From), cmp.Compare(a.Partner, b.Partner))
	})
	return out
}
