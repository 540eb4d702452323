package collect

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/imports"
)

// Options are what a collector is given besides its configuration.
type Options struct {
	// Credential returns the credential that signs in to a tenant: the
	// command line gives azidentity's DefaultAzureCredential.
	Credential func(tenant string) (azcore.TokenCredential, error)
	// Client is the base of every client's options: a transport, a cloud
	// whose endpoints are not Azure's (tests point them at a local
	// server). Its cloud, when it names no authority, is the
	// configuration's; its retries are the configuration's.
	Client policy.ClientOptions
	// GraphEndpoint, when set, is Microsoft Graph's endpoint instead of
	// the cloud's.
	GraphEndpoint string
	// PowerPlatformEndpoint, when set, answers for the Power Platform
	// admin API's three hosts (environments, apps, flows) instead of the
	// cloud's; OfficeEndpoint for the Office 365 Management Activity
	// API's. The tokens are still asked for the APIs' own scopes.
	PowerPlatformEndpoint, OfficeEndpoint string
	// RetryDelay, when set, is the first delay of the back-off between
	// retries (azcore's default otherwise); a Retry-After is always
	// honoured.
	RetryDelay time.Duration
	// UserKey, when set, pseudonymises the users of the audit's usage, as
	// pal import audit --pseudonymise-users does: each is its
	// HMAC-SHA256 under the key.
	UserKey []byte
	// Progress, when set, is told of each page read and of each source
	// done, one call at a time.
	Progress func(Progress)
	// Metrics, when set, counts what each run does.
	Metrics *Metrics
}

// Progress is how a source goes.
type Progress struct {
	Tenant, Source string
	Pages, Records int
	// Done is the source's result once it is over; nil while its pages
	// come.
	Done *Result
}

// Sink takes each source's new events, whole: a log file appended to, a
// service pushed to, standard output for a dry run.
type Sink interface {
	// Write writes events in time order and returns a word on what became
	// of them (a service's answer), or an error, which ends the run:
	// nothing more could be written.
	Write(ctx context.Context, events []*event.Event) (string, error)
}

// Result is what one source of one tenant did in a run.
type Result struct {
	Tenant, Source string
	// Pages and Records are what the API answered.
	Pages, Records int
	// Events is how many new events were written.
	Events int
	// Problems are what the importer said of the records: those it did
	// not import, and why; the rest is written.
	Problems []imports.Problem
	// Note is a word on the source: the sink's answer, a link the caller
	// does not hold.
	Note string
	// Missed are the scopes the source could not read while it read
	// others: it was written without them.
	Missed []Missed
	// Err is why the source failed: nothing of it was written.
	Err  error
	Took time.Duration
}

func (r Result) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s %s: failed, nothing written: %v%s", r.Tenant, r.Source, r.Err, hint(r.Tenant, r.Source, r.Err))
	}
	s := fmt.Sprintf("%s %s: %d %s, %d %s, %d new %s", r.Tenant, r.Source,
		r.Pages, plural(r.Pages, "page", "pages"), r.Records, plural(r.Records, "record", "records"), r.Events, plural(r.Events, "event", "events"))
	n := 0
	for _, p := range r.Problems {
		if p.Row() {
			n++
		}
	}
	if n > 0 {
		s += fmt.Sprintf(", %d %s not imported", n, plural(n, "record", "records"))
	}
	if r.Note != "" {
		s += "; " + r.Note
	}
	for _, m := range r.Missed {
		s += fmt.Sprintf("; %s not read, what the log holds of it kept: %v%s", m.Scope, m.Err, hint(r.Tenant, r.Source, m.Err))
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// privileges are the least privileges each source needs, for the message
// of a request refused (docs/collecting.md says the same).
var privileges = map[string]string{
	"management-groups": "Management Group Reader at the tenant root group",
	"users":             "Microsoft Graph User.Read.All",
	"groups":            "Microsoft Graph GroupMember.Read.All",
	"azure-roles":       "Reader at each subscription and management group read",
	"azure-pim":         "Reader at each subscription and management group read",
	"lighthouse":        "Reader at each subscription read",
	"links":             "no role: each credential reads its own link",
	"azure-costs":       "Cost Management Reader at each subscription read, or Storage Blob Data Reader on each cost_exports container",
	"powerapps":         "the Power Platform administrator role, or for a service principal its registration as a Power Platform management application",
	"audit":             "the Office 365 Management APIs' ActivityFeed.Read application permission, consented in the tenant",
}

// hint says what a refused or throttled request of a tenant's source
// needs.
func hint(tenant, source string, err error) string {
	var re *RequestError
	if !errors.As(err, &re) {
		return ""
	}
	switch {
	case re.Code == "AF20022":
		return fmt.Sprintf(" (the tenant's subscription to Audit.General was never started: an administrator starts it once, POST https://manage.office.com/api/v1.0/%s/activity/feed/subscriptions/start?contentType=Audit.General, and the API lists the content that comes after; pal only reads)", tenant)
	case re.Status == 401:
		return " (the token was refused: check the credential's sign-in, az login or the AZURE_* variables)"
	case re.Status == 403:
		return fmt.Sprintf(" (%s needs %s)", source, privileges[source])
	}
	return ""
}

// Report is what a run did.
type Report struct {
	// ObservedAt is the run's start, when every snapshot was observed.
	ObservedAt time.Time
	// Results are in the order the sources are read, then the tenants'.
	Results []Result
	Took    time.Duration
}

// Failed returns the results of the sources that failed.
func (r *Report) Failed() []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Err != nil {
			out = append(out, x)
		}
	}
	return out
}

// Partial returns the results of the sources written without some of
// their scopes (Result.Missed).
func (r *Report) Partial() []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Err == nil && len(x.Missed) > 0 {
			out = append(out, x)
		}
	}
	return out
}

// Events is how many new events the run wrote.
func (r *Report) Events() int {
	n := 0
	for _, x := range r.Results {
		n += x.Events
	}
	return n
}

// Collector reads a configuration's tenants, run after run. Its
// credentials and clients live as long as it does, so that tokens are
// cached between runs.
type Collector struct {
	cfg  Config
	opts Options
	arm  map[string]*armClients // by the tenant signed in to
	own  map[string]*tenantClients
	// exports are the cost exports' containers, by tenant (lower case).
	exports map[string][]*costExport
}

// tenantClients are the clients of the APIs that answer for a tenant's own
// directory rather than for a subscription: Microsoft Graph, the Power
// Platform admin API and the Office 365 Management Activity API. A
// partner's credential reaches none of them across Azure Lighthouse.
type tenantClients struct {
	graph, bap, powerApps, flow, office *apiClient
}

// New makes a collector, with a credential for each tenant signed in to.
// It fails when a credential cannot be made (azidentity finds none of its
// ways to sign in), or a cost export's container URL cannot be used.
func New(cfg Config, opts Options) (*Collector, error) {
	// A configuration made in code gets the defaults and checks one read
	// from a file gets (ReadConfig): without them no request would go.
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &Collector{cfg: cfg, opts: opts, arm: map[string]*armClients{}, own: map[string]*tenantClients{}, exports: map[string][]*costExport{}}
	co := opts.Client
	if co.Cloud.ActiveDirectoryAuthorityHost == "" {
		co.Cloud = clouds[cfg.cloud()].arm
	}
	co.Retry = policy.RetryOptions{
		MaxRetries:    int32(cfg.Retries),
		TryTimeout:    time.Duration(cfg.RequestTimeout),
		RetryDelay:    opts.RetryDelay,
		MaxRetryDelay: 5 * time.Minute,
	}
	co.PerCallPolicies = append(slices.Clip(co.PerCallPolicies), reauthorize{})
	// A collector never writes to Azure: not even to register a resource
	// provider that a subscription lacks, as the SDK would on its own.
	ao := &arm.ClientOptions{ClientOptions: co, DisableRPRegistration: true}
	ep := clouds[cfg.cloud()]
	graph := strings.TrimRight(cmp.Or(opts.GraphEndpoint, ep.graph), "/")
	pp := opts.PowerPlatformEndpoint
	creds := map[string]azcore.TokenCredential{}
	for _, t := range cfg.Tenants {
		signIn := t.signIn()
		cred := creds[signIn]
		if cred == nil {
			var err error
			if cred, err = opts.Credential(signIn); err != nil {
				return nil, fmt.Errorf("tenant %s: no credential: %w", signIn, err)
			}
			creds[signIn] = cred
			if c.arm[signIn], err = newARMClients(cred, ao); err != nil {
				return nil, fmt.Errorf("tenant %s: %w", signIn, err)
			}
			c.own[signIn] = &tenantClients{
				graph:     newAPIClient(cred, graph, graph+"/.default", linkIn("@odata.nextLink"), co),
				bap:       newAPIClient(cred, cmp.Or(pp, ep.bap), powerAppsScope, linkIn("nextLink"), co),
				powerApps: newAPIClient(cred, cmp.Or(pp, ep.powerApps), powerAppsScope, linkIn("nextLink"), co),
				flow:      newAPIClient(cred, cmp.Or(pp, ep.flow), flowScope, linkIn("nextLink"), co),
				office:    newAPIClient(cred, cmp.Or(opts.OfficeEndpoint, ep.office), officeScope, linkHeader("NextPageUri"), co),
			}
		}
		for _, e := range t.CostExports {
			x, err := newCostExport(e, cred, co)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: cost export %s: %w", t.Tenant, e.Container, err)
			}
			c.exports[strings.ToLower(t.Tenant)] = append(c.exports[strings.ToLower(t.Tenant)], x)
		}
	}
	return c, nil
}

// run is one collection.
type run struct {
	c       *Collector
	at      time.Time
	sink    Sink
	log     []*event.Event
	ids     map[string]bool
	known   *attribution.Engine
	targets []*target
	// progress serialises the calls of Options.Progress.
	progress sync.Mutex
}

// Run collects once: every source of every tenant, observed at at (the
// run's start), against the log so far (its events in log order), each
// source's new events handed to sink whole. The sources are read in the
// order of Sources, each one of every tenant at once, and written in the
// order of the tenants. It returns what each source did; its error is the
// sink's or the context's, which end the run.
func (c *Collector) Run(ctx context.Context, at time.Time, log []*event.Event, sink Sink) (*Report, error) {
	start := time.Now()
	r := &run{c: c, at: at.UTC(), sink: sink, log: slices.Clone(log), ids: map[string]bool{}}
	for _, ev := range log {
		if ev.ID != "" {
			r.ids[ev.ID] = true
		}
	}
	r.known = fold.Events(attribution.DefaultOptions(), r.log)
	rep := &Report{ObservedAt: r.at}
	defer func() {
		rep.Took = time.Since(start)
		if c.opts.Metrics != nil {
			c.opts.Metrics.observe(rep)
		}
	}()
	r.targets = r.discover(ctx)
	for _, source := range Sources {
		results, err := r.phase(ctx, source)
		rep.Results = append(rep.Results, results...)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// phase reads one source of every tenant: the requests of all at once,
// then each tenant's import and write in turn.
func (r *run) phase(ctx context.Context, source string) ([]Result, error) {
	var ts []*target
	for _, t := range r.targets {
		if t.reads(source) {
			ts = append(ts, t)
		}
	}
	got := make([]fetched, len(ts))
	results := make([]Result, len(ts))
	counters := make([]*counter, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		counters[i] = &counter{r: r, tenant: t.tenant, source: source, start: time.Now()}
		if source == "groups" {
			t.members = r.groupsOf(t)
		}
		wg.Go(func() {
			got[i], results[i].Err = r.fetch(ctx, t, source, counters[i])
		})
	}
	wg.Wait()
	dirty := false
	for i, t := range ts {
		res := &results[i]
		res.Tenant, res.Source = t.tenant, source
		res.Pages, res.Records = counters[i].pages, counters[i].records
		if res.Err == nil {
			res.Missed = got[i].missed
			n, err := r.commit(ctx, t, source, got[i], res)
			dirty = dirty || n > 0
			if errors.Is(err, errSink) {
				res.Err = err
				r.done(res, counters[i])
				return results[:i+1], err
			}
			res.Err = err
		}
		r.done(res, counters[i])
	}
	if err := ctx.Err(); err != nil {
		return results, err
	}
	if dirty {
		r.known = fold.Events(attribution.DefaultOptions(), r.log)
	}
	return results, nil
}

// done tells the progress a source is over.
func (r *run) done(res *Result, c *counter) {
	res.Took = time.Since(c.start)
	if r.c.opts.Progress != nil {
		r.progress.Lock()
		defer r.progress.Unlock()
		r.c.opts.Progress(Progress{Tenant: res.Tenant, Source: res.Source, Pages: res.Pages, Records: res.Records, Done: res})
	}
}

// errSink marks the sink's failure, which ends the run.
var errSink = errors.New("could not write")

// commit imports a source's pages against the log so far and writes the
// new events whole. It returns how many it wrote.
func (r *run) commit(ctx context.Context, t *target, source string, f fetched, res *Result) (int, error) {
	res.Note = f.note
	var events []*event.Event
	seen := map[string]bool{}
	for _, c := range f.calls {
		files := make([]imports.File, len(c.pages))
		for i, pg := range c.pages {
			files[i] = imports.File{Name: pg.name, R: bytes.NewReader(pg.body)}
		}
		o := imports.Options{Tenant: t.tenant, ObservedAt: r.at, Known: imports.Known(r.known), Group: c.group, UserKey: r.c.opts.UserKey}
		if source == "azure-roles" {
			o.Covered = r.covered(t, f.missed)
		}
		probs, err := imports.RunTo(source, files, o, func(ev *event.Event) error {
			// What the log holds, or this source made already (a
			// principal two groups name), is not written again.
			if !r.ids[ev.ID] && !seen[ev.ID] {
				seen[ev.ID] = true
				events = append(events, ev)
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("import: %w", err)
		}
		res.Problems = append(res.Problems, probs...)
	}
	if len(events) == 0 {
		return 0, nil
	}
	fold.Sort(events)
	note, err := r.sink.Write(ctx, events)
	if err != nil {
		return 0, fmt.Errorf("%w %d events: %w", errSink, len(events), err)
	}
	for _, ev := range events {
		r.ids[ev.ID] = true
	}
	r.log = append(r.log, events...)
	res.Events = len(events)
	res.Note = strings.Join(slices.DeleteFunc([]string{res.Note, note}, func(s string) bool { return s == "" }), "; ")
	return len(events), nil
}

// covered says which scopes a target's snapshot of role assignments
// lists (imports.Covered): its subscriptions and management groups read
// (all but those missed) and everything below them, and what lies above
// them — the root, and the management groups that hold them as the log
// places them — whose assignments every list below shows.
func (r *run) covered(t *target, missed []Missed) func(string) bool {
	groups, subs := r.known.Azure().Placements(t.tenant)
	var read []string
	for _, s := range t.scopes() {
		if !slices.ContainsFunc(missed, func(m Missed) bool { return m.Scope == s.path }) {
			read = append(read, "/"+s.path)
		}
	}
	return imports.Covered(read, true, groups, subs)
}

// groupsOf lists the groups whose members a target reads: those its
// configuration names, and those the log knows in its tenant that hold a
// live role in any tenant read (a Lighthouse delegation's groups live in
// the partner's tenant).
func (r *run) groupsOf(t *target) []string {
	var cfg []string
	for _, tc := range r.c.cfg.Tenants {
		if strings.EqualFold(tc.Tenant, t.tenant) {
			cfg = tc.Groups
		}
	}
	groups := slices.Clone(cfg)
	for _, other := range r.targets {
		for _, a := range r.known.Azure().LiveAssignments(other.tenant) {
			if cmp.Or(a.PrincipalTenant, other.tenant) == t.tenant && r.known.Azure().IsGroup(t.tenant, a.Principal) && !slices.Contains(groups, a.Principal) {
				groups = append(groups, a.Principal)
			}
		}
	}
	slices.Sort(groups)
	return groups
}

// discover makes a run's targets: the configured tenants, with their
// subscriptions (listed where the configuration names none), and the
// tenants of the subscriptions delegated through Azure Lighthouse.
func (r *run) discover(ctx context.Context) []*target {
	cfg := r.c.cfg
	var out []*target
	byTenant := map[string]*target{}
	type delegation struct {
		tenant  string
		sub     subscription
		sources []string
	}
	var delegated []delegation
	for _, tc := range cfg.Tenants {
		t := &target{tenant: tc.Tenant, sources: tc.Sources, arm: r.c.arm[tc.signIn()], groups: tc.ManagementGroups,
			exports: r.c.exports[strings.ToLower(tc.Tenant)], sem: make(chan struct{}, cfg.Concurrency)}
		if tc.signIn() == tc.Tenant {
			t.own = r.c.own[tc.signIn()]
		}
		for _, s := range tc.Subscriptions {
			t.subs = append(t.subs, subscription{id: strings.ToLower(s), arm: t.arm})
		}
		out = append(out, t)
		byTenant[strings.ToLower(tc.Tenant)] = t
		if !tc.Lighthouse && (len(tc.Subscriptions) > 0 || !slices.ContainsFunc(tc.Sources, t.readsSubscriptions)) {
			continue
		}
		subs, err := r.subscriptions(ctx, t)
		if err != nil {
			t.unlisted = err
			continue
		}
		for _, s := range subs {
			switch {
			case strings.EqualFold(s.tenant, tc.Tenant) && len(tc.Subscriptions) == 0:
				t.subs = append(t.subs, subscription{id: s.id, arm: t.arm})
			case !strings.EqualFold(s.tenant, tc.Tenant) && tc.Lighthouse:
				delegated = append(delegated, delegation{tenant: s.tenant, sub: subscription{id: s.id, arm: t.arm}, sources: tc.Sources})
			}
		}
	}
	for _, d := range delegated {
		t := byTenant[strings.ToLower(d.tenant)]
		if t == nil {
			t = &target{tenant: d.tenant, sem: make(chan struct{}, cfg.Concurrency)}
			byTenant[strings.ToLower(d.tenant)] = t
			out = append(out, t)
		}
		if t.arm == nil {
			// Read only through Lighthouse: what Resource Manager answers
			// for a subscription.
			for _, s := range d.sources {
				if slices.Contains(armSources, s) && !slices.Contains(t.sources, s) {
					t.sources = append(t.sources, s)
				}
			}
		}
		if !slices.ContainsFunc(t.subs, func(s subscription) bool { return s.id == d.sub.id }) {
			t.subs = append(t.subs, d.sub)
		}
	}
	return out
}

// listed is a subscription the credential sees, in its own tenant.
type listed struct{ id, tenant string }

// subscriptions lists the subscriptions a target's credential sees: its
// tenant's, and those delegated to it. Deleted ones are left out.
func (r *run) subscriptions(ctx context.Context, t *target) ([]listed, error) {
	var out []listed
	_, err := withSlot(ctx, t, func() ([]page, error) {
		p := t.arm.subscriptions.NewListPager(nil)
		for p.More() {
			pg, err := p.NextPage(ctx)
			if err != nil {
				return nil, requestError(err)
			}
			for _, s := range pg.Value {
				if s == nil || s.SubscriptionID == nil || s.TenantID == nil || s.State != nil && *s.State == armsubscriptions.SubscriptionStateDeleted {
					continue
				}
				out = append(out, listed{id: strings.ToLower(*s.SubscriptionID), tenant: *s.TenantID})
			}
		}
		return nil, nil
	})
	return out, err
}

// counter counts a source's pages and records as they come.
type counter struct {
	r              *run
	tenant, source string
	start          time.Time
	mu             sync.Mutex
	pages, records int
}

// page counts a page read and tells the progress.
func (c *counter) page(pg page) {
	n := records(pg.body)
	c.mu.Lock()
	c.pages++
	c.records += n
	p := Progress{Tenant: c.tenant, Source: c.source, Pages: c.pages, Records: c.records}
	c.mu.Unlock()
	if f := c.r.c.opts.Progress; f != nil {
		c.r.progress.Lock()
		defer c.r.progress.Unlock()
		f(p)
	}
}

// records counts the records of a page: its "value" array's, an array's,
// one object, or a CSV file's rows (gzipped or not) after its header.
func records(body []byte) int {
	if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		z, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return 0
		}
		n, _ := lineCount(z)
		return max(n-1, 0)
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] != '[' && body[0] != '{' {
		n, _ := lineCount(bytes.NewReader(body))
		return max(n-1, 0)
	}
	if len(body) > 0 && body[0] == '[' {
		var a []json.RawMessage
		json.Unmarshal(body, &a)
		return len(a)
	}
	var v struct {
		Value []json.RawMessage `json:"value"`
	}
	if json.Unmarshal(body, &v) == nil && v.Value != nil {
		return len(v.Value)
	}
	return 1
}

// lineCount counts the lines of a text, the last one whether it ends in
// a newline or not.
func lineCount(r io.Reader) (int, error) {
	buf := make([]byte, 64<<10)
	n, last := 0, byte('\n')
	for {
		k, err := r.Read(buf)
		if k > 0 {
			n += bytes.Count(buf[:k], []byte("\n"))
			last = buf[k-1]
		}
		if err == io.EOF {
			if last != '\n' {
				n++
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// signIn is the tenant a configured tenant's credential signs in to.
func (t Tenant) signIn() string { return cmp.Or(t.SignIn, t.Tenant) }
