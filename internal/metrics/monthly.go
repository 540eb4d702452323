package metrics

import (
	"cmp"
	"iter"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
)

// Config holds the published rates and thresholds; DefaultConfig has the
// values of SPEC.md.
type Config struct {
	// Rates is the MCV per monthly active user, or per unified profile for
	// customer_insights, of each workload.
	Rates map[string]float64
	// DeploymentMCV is, per segment, the MCV a (tenant, workload) needs in a
	// month to count as a deployment.
	DeploymentMCV map[string]float64
	// GrowthBaselineMCV is, per segment, the MCV of month M−12 that usage
	// growth needs to score.
	GrowthBaselineMCV map[string]float64
	// Points per net customer add, and per certified person by segment.
	NetCustomerAddPoints float64
	IntermediatePoints   map[string]float64
	AdvancedPoints       map[string]float64
	// Points per deployment added since M−12.
	DeploymentPoints float64
	// Max points of each subcategory.
	MaxNetCustomerAdds, MaxIntermediate, MaxAdvanced, MaxUsageGrowth, MaxDeployments float64
	// QualifyingTotal is the total an organisation needs to qualify.
	QualifyingTotal float64
}

// DefaultConfig returns the rates and thresholds published in 2026.
func DefaultConfig() Config {
	return Config{
		Rates: map[string]float64{
			event.PowerApps:        200,
			event.PowerAutomate:    200,
			event.PowerBI:          200,
			event.PowerPages:       100,
			event.CustomerInsights: 0.2,
			event.CopilotStudio:    0,
		},
		DeploymentMCV:        map[string]float64{event.Enterprise: 10000, event.SMB: 5000},
		GrowthBaselineMCV:    map[string]float64{event.Enterprise: 50000, event.SMB: 25000},
		NetCustomerAddPoints: 3,
		IntermediatePoints:   map[string]float64{event.Enterprise: 1, event.SMB: 4},
		AdvancedPoints:       map[string]float64{event.Enterprise: 15.0 / 7, event.SMB: 7.5},
		DeploymentPoints:     4,
		MaxNetCustomerAdds:   15,
		MaxIntermediate:      20,
		MaxAdvanced:          15,
		MaxUsageGrowth:       30,
		MaxDeployments:       20,
		QualifyingTotal:      70,
	}
}

type resourceKey struct {
	month, tenant, resource, workload, org, partner string
}

type workloadKey struct {
	month, tenant, org, workload string
}

type instanceKey struct {
	month, tenant, resource, org string
}

// denseUsers is how many of a tenant's first users a tally marks in a
// plain bitset, at most 8 KiB a tally, before they join its roaring bitmap.
const denseUsers = 1 << 16

// users counts distinct users, each weighted by the largest share of the
// credit it was seen under: full and dense hold those seen at share 1,
// partial the others with their largest share.
//
// Setting a bit costs a few nanoseconds where adding to a roaring bitmap
// costs a search: dense holds the users numbered below denseUsers, full
// the others, and bitmap gives them together.
type users struct {
	full    *roaring.Bitmap
	dense   []uint64
	partial map[uint32]float64
}

func (u *users) add(user uint32, share float64) {
	if share >= 1 && int(user>>6) < len(u.dense) {
		u.dense[user>>6] |= 1 << (user & 63)
		return
	}
	u.addSlow(user, share)
}

func (u *users) addSlow(user uint32, share float64) {
	if share >= 1 {
		if user >= denseUsers {
			u.full.Add(user)
			return
		}
		// Grow to the user's word, with room for the tenant's next users.
		words := max(int(user>>6)+1, min(2*len(u.dense), denseUsers/64))
		u.dense = append(u.dense, make([]uint64, words-len(u.dense))...)
		u.dense[user>>6] |= 1 << (user & 63)
		return
	}
	if u.partial == nil {
		u.partial = make(map[uint32]float64)
	}
	if share > u.partial[user] {
		u.partial[user] = share
	}
}

// bitmap returns the users seen at share 1, not to be changed. It changes
// nothing itself: the service reads reports concurrently.
func (u *users) bitmap() *roaring.Bitmap {
	if u.dense == nil {
		return u.full
	}
	bm := roaring.FromDense(u.dense, true)
	bm.Or(u.full)
	return bm
}

func (u *users) count() float64 {
	full := u.bitmap()
	n := float64(full.GetCardinality())
	for user, share := range u.partial {
		if !full.Contains(user) {
			n += share
		}
	}
	return n
}

// Aggregator collects credited usage and profiles, month by month.
type Aggregator struct {
	months map[string]bool
	dict   *dictionary
	// tenants holds the tallies by tenant: a tenant folded again drops and
	// moves its own, whatever the number of the others.
	tenants map[string]*counts
	// slots keeps, for UsageBatch, each resource's history and tallies;
	// numbering and pairs are its buffers.
	slots     map[attribution.ResourceKey]*slot
	numbering numbering
	pairs     pairTable
	// epoch moves whenever users' bitsets may change other than by
	// UsageBatch, that is by Usage; seen is the epoch UsageBatch last ran in.
	epoch, seen uint64
}

// counts are one tenant's tallies: the users of each resource under each
// holder and month, those of each organisation's workload under a shared
// credit, and the unified profiles of each instance.
type counts struct {
	resources map[resourceKey]*users
	workloads map[workloadKey]*users
	profiles  map[resourceKey]float64
	instances map[instanceKey]float64
}

// NewAggregator returns an aggregator of the given months (YYYY-MM), or of
// every month when none is given.
func NewAggregator(months ...string) *Aggregator {
	a := &Aggregator{
		dict:    newDictionary(),
		tenants: make(map[string]*counts),
		slots:   make(map[attribution.ResourceKey]*slot),
	}
	if len(months) > 0 {
		a.months = make(map[string]bool, len(months))
		for _, m := range months {
			a.months[m] = true
		}
	}
	return a
}

// of returns a tenant's tallies, made on first use.
func (a *Aggregator) of(tenant string) *counts {
	c := a.tenants[tenant]
	if c == nil {
		c = &counts{
			resources: make(map[resourceKey]*users),
			workloads: make(map[workloadKey]*users),
			profiles:  make(map[resourceKey]float64),
			instances: make(map[instanceKey]float64),
		}
		a.tenants[tenant] = c
	}
	return c
}

// DropTenant forgets what was counted of one tenant, so that its usage can
// be counted again after its tenant was folded again. The tenant's users
// keep their numbers. Only the command line's batches (UsageBatch) keep
// slots, and never drop a tenant: the pass over them is over none in the
// service.
func (a *Aggregator) DropTenant(tenant string) {
	delete(a.tenants, tenant)
	maps.DeleteFunc(a.slots, func(k attribution.ResourceKey, _ *slot) bool { return k.Tenant == tenant })
	a.epoch++
}

// Forget forgets a tenant whole, its users' numbers with its counts: a
// process that no longer counts the tenant (SPEC.md section 10).
func (a *Aggregator) Forget(tenant string) {
	a.DropTenant(tenant)
	a.dict.mu.Lock()
	delete(a.dict.tenants, tenant)
	a.dict.mu.Unlock()
}

// Tenants returns the tenants counted.
func (a *Aggregator) Tenants() iter.Seq[string] { return maps.Keys(a.tenants) }

// DropResource forgets what was counted of a resource of a tenant in the
// months from from up to, not including, to (to "" for every month after),
// so that its uses there can be counted again after its credit moved.
// Users counted by organisation under a shared credit are not the
// resource's: a resource whose credit was shared needs DropTenant.
func (a *Aggregator) DropResource(tenant, resource, from, to string) {
	in := func(r, month string) bool {
		return r == resource && month >= from && (to == "" || month < to)
	}
	if c := a.tenants[tenant]; c != nil {
		maps.DeleteFunc(c.resources, func(k resourceKey, _ *users) bool { return in(k.resource, k.month) })
		maps.DeleteFunc(c.profiles, func(k resourceKey, _ float64) bool { return in(k.resource, k.month) })
		maps.DeleteFunc(c.instances, func(k instanceKey, _ float64) bool { return in(k.resource, k.month) })
	}
	delete(a.slots, attribution.ResourceKey{Tenant: tenant, Resource: resource})
	a.epoch++
}

// MoveCredit counts for to what was counted of a resource of a tenant for
// from, in the months from month on: its credit moved from one holder to
// the other, whole, over every one of those months. Neither may be shared.
func (a *Aggregator) MoveCredit(tenant, resource, month string, from, to attribution.Credit) {
	if c := a.tenants[tenant]; c != nil {
		moved := func(r, m, org string) bool {
			return r == resource && m >= month && org == from.Org
		}
		location := func(k resourceKey) (resourceKey, bool) {
			ok := moved(k.resource, k.month, k.org) && k.partner == from.Partner
			k.org, k.partner = to.Org, to.Partner
			return k, ok
		}
		rekey(c.resources, location)
		rekey(c.profiles, location)
		rekey(c.instances, func(k instanceKey) (instanceKey, bool) {
			ok := moved(k.resource, k.month, k.org)
			k.org = to.Org
			return k, ok
		})
	}
	delete(a.slots, attribution.ResourceKey{Tenant: tenant, Resource: resource})
	a.epoch++
}

// rekey moves the entries of m that to says move to their new keys.
func rekey[K comparable, V any](m map[K]V, to func(K) (K, bool)) {
	type entry struct {
		k K
		v V
	}
	var moved []entry
	for k, v := range m {
		if k2, ok := to(k); ok {
			delete(m, k)
			moved = append(moved, entry{k2, v})
		}
	}
	for _, e := range moved {
		m[e.k] = e.v
	}
}

// holders returns the locations and organisations a credit goes to, each
// with its share.
func holders(c *attribution.Credit) (locations []credit.Share, orgs map[string]float64) {
	if len(c.Shares) == 0 {
		return []credit.Share{{Partner: c.Partner, Org: c.Org, Share: 1}}, map[string]float64{c.Org: 1}
	}
	orgs = make(map[string]float64, len(c.Shares))
	for _, s := range c.Shares {
		orgs[s.Org] += s.Share
	}
	return c.Shares, orgs
}

// Record counts an event the engine applied, with its result: a usage or
// profiles event is counted, any other is not.
func (a *Aggregator) Record(ev *event.Event, res attribution.Result) {
	if res.Outcome != attribution.Applied {
		return
	}
	switch ev.Type {
	case event.Usage:
		a.Usage(ev.Time, ev.Tenant, ev.Resource, res.Workload, ev.User, res.Credit)
	case event.Profiles:
		a.Profiles(ev.Time, ev.Tenant, ev.Resource, res.Workload, ev.Count, res.Credit)
	}
}

// Usage records one use of a resource by a user at time at, credited as c.
// An uncredited use (c nil or not attributed) counts for no one.
func (a *Aggregator) Usage(at time.Time, tenant, resource, workload, user string, c *attribution.Credit) {
	if c == nil || !c.Attributed {
		return
	}
	month := event.MonthOf(at)
	if a.months != nil && !a.months[month] {
		return
	}
	a.epoch++
	id := a.dict.id(tenant, user)
	for _, t := range a.talliesFor(month, tenant, resource, workload, c) {
		t.users.add(id, t.share)
	}
}

// talliesFor returns the tallies a use credited as c counts in, creating
// them: one per location and, when the credit is shared, one per
// organisation. Usage and UsageBatch count in them alike.
func (a *Aggregator) talliesFor(month, tenant, resource, workload string, c *attribution.Credit) []tally {
	locations, orgs := holders(c)
	counts := a.of(tenant)
	var ts []tally
	for _, s := range locations {
		u := usersOf(counts.resources, resourceKey{month, tenant, resource, workload, s.Org, s.Partner})
		ts = append(ts, tally{users: u, share: s.Share, own: true})
	}
	if len(c.Shares) == 0 {
		// A user of a resource credited whole counts for its workload
		// through the resource's bitmap (see Report).
		return ts
	}
	for org, share := range orgs {
		u := usersOf(counts.workloads, workloadKey{month, tenant, org, workload})
		ts = append(ts, tally{users: u, share: share})
	}
	return ts
}

// usersOf returns the users kept under k, made on first use.
func usersOf[K comparable](m map[K]*users, k K) *users {
	u := m[k]
	if u == nil {
		u = &users{full: roaring.New()}
		m[k] = u
	}
	return u
}

// Profiles records a unified-profile count of an instance at time at,
// credited as c.
func (a *Aggregator) Profiles(at time.Time, tenant, resource, workload string, count int64, c *attribution.Credit) {
	if c == nil || !c.Attributed {
		return
	}
	month := event.MonthOf(at)
	if a.months != nil && !a.months[month] {
		return
	}
	locations, orgs := holders(c)
	counts := a.of(tenant)
	for _, s := range locations {
		k := resourceKey{month, tenant, resource, workload, s.Org, s.Partner}
		counts.profiles[k] = max(counts.profiles[k], float64(count)*s.Share)
	}
	for org, share := range orgs {
		k := instanceKey{month, tenant, resource, org}
		counts.instances[k] = max(counts.instances[k], float64(count)*share)
	}
	// The instance's own, whoever holds it (ResourceFigures).
	k := instanceKey{month, tenant, resource, ""}
	counts.instances[k] = max(counts.instances[k], float64(count))
}

// Monthly is the monthly report of SPEC.md section 7.
type Monthly struct {
	Month     string        `json:"month"`
	Resources []ResourceRow `json:"resources"`
	Workloads []WorkloadRow `json:"workloads"`
	Orgs      []OrgRow      `json:"orgs"`
}

// ResourceRow is the MAU or profiles of one resource credited to one
// location in the month.
type ResourceRow struct {
	Tenant   string  `json:"tenant"`
	Resource string  `json:"resource"`
	Workload string  `json:"workload"`
	Org      string  `json:"org"`
	Partner  string  `json:"partner"`
	MAU      float64 `json:"mau"`
	Profiles float64 `json:"profiles"`
}

// WorkloadRow is an organisation's MAU, profiles and MCV in one workload of
// one tenant.
type WorkloadRow struct {
	Tenant   string  `json:"tenant"`
	Org      string  `json:"org"`
	Workload string  `json:"workload"`
	MAU      float64 `json:"mau"`
	Profiles float64 `json:"profiles"`
	MCV      float64 `json:"mcv"`
}

// OrgRow is an organisation's month: its total MCV, the tenants in which it
// has MAU or profiles, and its deployments.
type OrgRow struct {
	Org string `json:"org"`
	// Name is the organisation's registered name (not in SPEC.md).
	Name        string  `json:"name"`
	MCV         float64 `json:"mcv"`
	Customers   int     `json:"customers"`
	Deployments int     `json:"deployments"`
}

// SegmentFunc returns an organisation's segment at the end of a month.
type SegmentFunc func(org, month string) string

// Report returns the monthly report of month (YYYY-MM). segment gives each
// organisation's segment at the end of the month, for its deployments.
func (a *Aggregator) Report(cfg Config, month string, segment SegmentFunc) Monthly {
	return Merge(cfg, month, []Monthly{a.Part(cfg, month, nil)}, segment)
}

// Part returns the rows of the monthly report of month (YYYY-MM) of the
// tenants owns names, every tenant when nil, and no organisations' totals:
// each row is of one tenant, and the totals sum over every tenant (Merge),
// since users are distinct within a tenant. Processes that own some
// tenants each make a part (SPEC.md section 10).
func (a *Aggregator) Part(cfg Config, month string, owns func(tenant string) bool) Monthly {
	m := Monthly{Month: month, Resources: []ResourceRow{}, Workloads: []WorkloadRow{}, Orgs: []OrgRow{}}
	resources := make(map[resourceKey]*ResourceRow)
	row := func(k resourceKey) *ResourceRow {
		r := resources[k]
		if r == nil {
			r = &ResourceRow{Tenant: k.tenant, Resource: k.resource, Workload: k.workload, Org: k.org, Partner: k.partner}
			resources[k] = r
		}
		return r
	}
	for _, c := range a.owned(owns) {
		for k, u := range c.resources {
			if k.month == month {
				row(k).MAU = round(u.count(), 4)
			}
		}
		for k, p := range c.profiles {
			if k.month == month {
				row(k).Profiles = round(p, 4)
			}
		}
	}
	for _, r := range resources {
		if r.MAU > 0 || r.Profiles > 0 {
			m.Resources = append(m.Resources, *r)
		}
	}
	workloads := make(map[workloadKey]*WorkloadRow)
	wrow := func(k workloadKey) *WorkloadRow {
		w := workloads[k]
		if w == nil {
			w = &WorkloadRow{Tenant: k.tenant, Org: k.org, Workload: k.workload}
			workloads[k] = w
		}
		return w
	}
	full := make(map[workloadKey]*roaring.Bitmap)
	for _, c := range a.owned(owns) {
		// A workload's users are its own (those seen under a shared
		// credit) and, for the users seen at share 1, those of its
		// resources.
		clear(full)
		for k, u := range c.workloads {
			if k.month == month {
				full[k] = u.bitmap().Clone()
			}
		}
		for k, u := range c.resources {
			if k.month != month {
				continue
			}
			wk := workloadKey{month, k.tenant, k.org, k.workload}
			if bm := full[wk]; bm != nil {
				bm.Or(u.bitmap())
			} else {
				full[wk] = u.bitmap().Clone()
			}
		}
		for k, bm := range full {
			u := users{full: bm}
			if w := c.workloads[k]; w != nil {
				u.partial = w.partial
			}
			wrow(k).MAU = u.count()
		}
		for k, p := range c.instances {
			if k.month == month && k.org != "" {
				wrow(workloadKey{month, k.tenant, k.org, event.CustomerInsights}).Profiles += p
			}
		}
	}
	for _, w := range workloads {
		if w.MAU == 0 && w.Profiles == 0 {
			continue
		}
		w.MCV = round((w.MAU+w.Profiles)*cfg.Rates[w.Workload], 2)
		w.MAU, w.Profiles = round(w.MAU, 4), round(w.Profiles, 4)
		m.Workloads = append(m.Workloads, *w)
	}
	sortRows(&m)
	return m
}

// owned returns the tallies of the tenants owns names, every tenant's when
// nil.
func (a *Aggregator) owned(owns func(tenant string) bool) []*counts {
	out := make([]*counts, 0, len(a.tenants))
	for t, c := range a.tenants {
		if owns == nil || owns(t) {
			out = append(out, c)
		}
	}
	return out
}

// sortRows sorts a report's rows, each kind by its key: every row is
// another's, so that the order is one whatever the parts they came in.
func sortRows(m *Monthly) {
	slices.SortFunc(m.Resources, func(a, b ResourceRow) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource),
			cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Org, b.Org), cmp.Compare(a.Partner, b.Partner))
	})
	slices.SortFunc(m.Workloads, func(a, b WorkloadRow) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Org, b.Org), cmp.Compare(a.Workload, b.Workload))
	})
}

// Merge returns the monthly report of month (YYYY-MM) of the parts (Part)
// of tenants apart: their rows together, and the organisations' totals
// summed from them. segment gives each organisation's segment at the end
// of the month, for its deployments.
func Merge(cfg Config, month string, parts []Monthly, segment SegmentFunc) Monthly {
	m := Monthly{Month: month, Resources: []ResourceRow{}, Workloads: []WorkloadRow{}}
	for _, p := range parts {
		m.Resources = append(m.Resources, p.Resources...)
		m.Workloads = append(m.Workloads, p.Workloads...)
	}
	sortRows(&m)
	m.Orgs = orgRows(cfg, m.Workloads, func(org string) string { return segment(org, month) })
	return m
}

// orgRows sums workload rows into one row per organisation, counting
// deployments with the threshold of each organisation's segment.
func orgRows(cfg Config, workloads []WorkloadRow, segment func(org string) string) []OrgRow {
	byOrg := make(map[string]*OrgRow)
	tenants := make(map[string]map[string]bool)
	for _, w := range workloads {
		o := byOrg[w.Org]
		if o == nil {
			o = &OrgRow{Org: w.Org}
			byOrg[w.Org] = o
			tenants[w.Org] = make(map[string]bool)
		}
		o.MCV += w.MCV
		tenants[w.Org][w.Tenant] = true
		if w.MCV >= cfg.DeploymentMCV[segmentOrDefault(segment(w.Org))] {
			o.Deployments++
		}
	}
	rows := []OrgRow{}
	for org, o := range byOrg {
		o.MCV = round(o.MCV, 2)
		o.Customers = len(tenants[org])
		rows = append(rows, *o)
	}
	slices.SortFunc(rows, func(a, b OrgRow) int { return cmp.Compare(a.Org, b.Org) })
	return rows
}

func segmentOrDefault(s string) string {
	if s == "" {
		return event.SMB
	}
	return s
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// NameOrgs fills in the names of the report's organisations from an engine.
func NameOrgs(m *Monthly, e *attribution.Engine) {
	for i, o := range m.Orgs {
		if org, ok := e.Org(o.Org); ok {
			m.Orgs[i].Name = org.Name
		}
	}
}

// SegmentsAtMonthEnd reads organisations' segments from an engine at the
// last instant of each month, as SPEC.md section 3 says they are read.
func SegmentsAtMonthEnd(e *attribution.Engine) SegmentFunc {
	return func(org, month string) string {
		start, err := time.Parse("2006-01", month)
		if err != nil {
			return ""
		}
		return e.Segment(org, start.AddDate(0, 1, 0).Add(-time.Nanosecond))
	}
}
