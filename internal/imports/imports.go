package imports

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
)

// Log is what an import needs to know of the log so far, folded (Known
// makes one of an engine): what each tenant holds, so that an inventory
// adds only what changed since, and a change names what exists.
type Log interface {
	Inventory(tenant string) (envs map[string]string, resources map[string]attribution.ResourceState)
	AccountExists(tenant, account string) bool
	AccountCreated(tenant, account string) (time.Time, bool)
	AccountDisabled(tenant, account string) bool
	AccountsNamed(tenant string) map[string]string
	Link(tenant, account string) (attribution.Link, bool)
	AzureLog
}

// AzureLog is what an import needs to know of the tenants' Azure
// directories and roles so far.
type AzureLog interface {
	IsGroup(tenant, id string) bool
	GroupMembers(tenant, group string) []string
	LiveAssignments(tenant string) []azure.LiveAssignment
	AssignmentEnd(tenant, assignment string) (time.Time, bool)
	KnownUntil(tenant string) time.Time
	Placements(tenant string) (groups, subscriptions map[string]string)
}

// Known returns what an import reads of a log that e folded: its Power
// Platform side and its Azure side.
func Known(e *attribution.Engine) Log { return folded{e, e.Azure()} }

// azureEngine lets folded embed both engines, which share a type name.
type azureEngine = azure.Engine

type folded struct {
	*attribution.Engine
	*azureEngine
}

// Options are what an import is told besides its files.
type Options struct {
	// Tenant names the tenant of an export that does not say it.
	Tenant string
	// ObservedAt is when an inventory was observed; zero: the newest time
	// in its files.
	ObservedAt time.Time
	// Known is the log so far, folded: an inventory adds only what changed
	// since. Nil: an empty log.
	Known Log
	// Group names the group of a group members export.
	Group string
	// UserKey, when set, pseudonymises usage users: each becomes its
	// HMAC-SHA256 under this key.
	UserKey []byte
	// Covered, when set, says which scopes a snapshot of role assignments
	// (azure-roles) lists: a live assignment at any other scope is not
	// taken as removed when the snapshot omits it. pal collect reads the
	// subscriptions and management groups its configuration names, not
	// always a whole tenant. Nil: every scope.
	Covered func(scope string) bool
	// Progress, when set, is told how a long import goes: a line, rewritten
	// about once a second, of the rows read, rows a second and rows
	// reported, and the last one kept. For a terminal.
	Progress io.Writer
}

// File is an export to read.
type File struct {
	Name string
	R    io.Reader
}

// Import is what an import makes: events in time order, and the rows it
// could not read.
type Import struct {
	Events   []*event.Event
	Problems []Problem
}

// Source reads one kind of export.
type Source struct {
	Name  string
	About string
	// NeedsTenant marks the exports that never say their tenant. One
	// that says it on some records reads it with builder.tenant.
	NeedsTenant bool
	// Signature lists fields of which every record of the export has one:
	// a file whose first record has none is another export.
	Signature []string
	// Streams marks the exports whose events need no order (uses): they
	// are handed on as they are made, so that an export of any size
	// imports in little memory.
	Streams bool
	// restate turns a JSON file of another shape of the same records into
	// the shape read (the admin API's lists into the cmdlets' objects).
	restate func([]byte) []byte
	// runs marks the exports written a run at a time, each holding its
	// period so far: one run a period is read (oneRunAPeriod).
	runs bool
	read func(rows iter.Seq[record], o *Options, b *builder)
}

// Sources are the exports pal reads, by name.
var Sources = map[string]Source{}

func register(s Source) { Sources[s.Name] = s }

// Names lists the sources, sorted.
func Names() []string {
	out := make([]string, 0, len(Sources))
	for n := range Sources {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Run reads files of a source into events, in time order.
func Run(name string, files []File, o Options) (Import, error) {
	var events []*event.Event
	problems, err := RunTo(name, files, o, func(ev *event.Event) error {
		events = append(events, ev)
		return nil
	})
	if err != nil {
		return Import{}, err
	}
	fold.Sort(events)
	return Import{Events: events, Problems: problems}, nil
}

// RunTo reads files of a source and hands each event to emit: in time
// order, or, for a source that streams, as it is made. It returns the
// rows it could not read.
func RunTo(name string, files []File, o Options, emit func(*event.Event) error) ([]Problem, error) {
	src, ok := Sources[name]
	if !ok {
		return nil, fmt.Errorf("unknown export %q: pal reads %s", name, strings.Join(Names(), ", "))
	}
	if src.NeedsTenant && o.Tenant == "" {
		return nil, fmt.Errorf("a %s export does not say its tenant: name it with --tenant", name)
	}
	if src.runs {
		if err := oneRunAPeriod(files); err != nil {
			return nil, err
		}
	}
	b := &builder{source: name, known: o.Known, tenant: o.Tenant}
	if src.Streams {
		b.emit = emit
	}
	var failed error
	progress := newProgress(o.Progress, name)
	defer func() { progress.done(len(b.problems)) }()
	rows := func(yield func(record) bool) {
		for _, f := range files {
			stop, first := false, true
			err := eachRecord(f.Name, f.R, src.restate, func(r record) bool {
				if first {
					first = false
					if failed = src.shape(f.Name, r); failed != nil {
						return false
					}
				}
				progress.row(len(b.problems))
				stop = b.emitted != nil || b.failed != nil || !yield(r)
				return !stop
			}, b.problem)
			if err != nil {
				failed = err
			}
			if stop || failed != nil || b.failed != nil {
				return
			}
		}
	}
	src.read(rows, &o, b)
	switch {
	case failed != nil:
		return nil, failed
	case b.failed != nil:
		return nil, b.failed
	case b.emitted != nil:
		return nil, b.emitted
	}
	fold.Sort(b.events)
	for _, ev := range b.events {
		if err := emit(ev); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(b.problems, func(a, b Problem) int { return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line)) })
	return b.problems, nil
}

// shape checks that a file's first record is one of the source's: a file
// of another shape is one error, naming the sources it looks like.
func (src Source) shape(file string, r record) error {
	typ := r.str("type")
	if other, ok := armTypes[strings.ToLower(typ)]; ok {
		if other != src.Name {
			return fmt.Errorf("%s is no %s export: its records are Azure's %s, which pal import %s reads: pal import %s %s", file, src.Name, typ, other, other, file)
		}
		return nil
	}
	if slices.ContainsFunc(src.Signature, r.has) {
		return nil
	}
	if strings.HasPrefix(strings.ToLower(typ), "microsoft.") && strings.Contains(typ, "/") {
		// A REST object of a type no source reads: its id and properties
		// would make it look like several.
		return fmt.Errorf("%s is no %s export: its records are %s objects, which pal import does not read; pal reads %s", file, src.Name, typ, strings.Join(Names(), ", "))
	}
	var like []string
	for _, n := range Names() {
		if n != src.Name && slices.ContainsFunc(Sources[n].Signature, r.has) {
			like = append(like, n)
		}
	}
	hint := "pal reads " + strings.Join(Names(), ", ")
	if len(like) > 0 {
		hint = "it looks like " + strings.Join(like, " or ") + ": pal import " + strings.Join(like, "|") + " " + file
	}
	return fmt.Errorf("%s is no %s export: its first record has none of %s; %s", file, src.Name, strings.Join(src.Signature, ", "), hint)
}

// armTypes names the source that reads each Azure Resource Manager type
// (the "type" of a REST object, which the az CLI keeps): a file of one
// source's records handed to another is told by it, however alike their
// fields.
var armTypes = map[string]string{
	"microsoft.authorization/roleassignments":                  "azure-roles",
	"microsoft.authorization/roledefinitions":                  "azure-roles",
	"microsoft.authorization/roleeligibilityscheduleinstances": "azure-pim",
	"microsoft.authorization/roleeligibilityschedules":         "azure-pim",
	"microsoft.authorization/roleassignmentscheduleinstances":  "azure-pim",
	"microsoft.authorization/roleassignmentschedulerequests":   "azure-pim",
	"microsoft.managedservices/registrationassignments":        "lighthouse",
	"microsoft.managementpartner/partner":                      "links",
	"microsoft.managementpartner/partners":                     "links",
	"microsoft.management/managementgroups":                    "management-groups",
	"microsoft.management/managementgroups/subscriptions":      "management-groups",
	"microsoft.consumption/usagedetails":                       "azure-costs",
	"microsoft.costmanagement/query":                           "azure-costs",
}

// builder collects an import's events, or hands them on as they are made
// (emit); emitted is the first error doing so, which ends the import.
type builder struct {
	source  string
	known   Log
	events  []*event.Event
	emit    func(*event.Event) error
	emitted error
	// failed is a mistake that ends the import: a --tenant that the
	// export contradicts.
	failed   error
	problems []Problem
	tenant   string // Options.Tenant
}

// add adds an event whose id derives from the source and key: the same
// record imported again is the same event, a duplicate.
func (b *builder) add(ev event.Event, key ...string) {
	h := sha256.Sum256([]byte(b.source + "\x00" + ev.Type + "\x00" + strings.Join(key, "\x00")))
	ev.ID = "imp-" + b.source + "-" + hex.EncodeToString(h[:10])
	switch {
	case b.emit == nil:
		b.events = append(b.events, &ev)
	case b.emitted == nil:
		b.emitted = b.emit(&ev)
	}
}

func (b *builder) problem(p Problem) { b.problems = append(b.problems, p) }

// tenantOf returns the tenant of a record whose export names it (said),
// or --tenant where it does not. A --tenant that the export contradicts
// ends the import with an error naming both; a record of no tenant at all
// is reported. Tenant IDs compare without regard to case; --tenant's
// spelling is kept, so that one import writes one tenant one way.
func (b *builder) tenantOf(r record, said string) (string, bool) {
	switch {
	case said != "" && b.tenant != "" && !strings.EqualFold(said, b.tenant):
		if b.failed == nil {
			b.failed = fmt.Errorf("%s line %d names tenant %s, and --tenant says %s: drop --tenant (the export says its tenant) or import the right file", r.file, r.line, said, b.tenant)
		}
		return "", false
	case said != "" && b.tenant == "":
		return said, true
	case b.tenant != "":
		return b.tenant, true
	}
	b.problem(r.problem("the %s export does not say this record's tenant: name it with --tenant", b.source))
	return "", false
}

// accountFrom returns an instant no earlier than the account's creation in
// the log: an event the export dates before it (a link updated, an app
// created, before the log first heard of its account) could not be applied
// there.
func (b *builder) accountFrom(tenant, account string, t time.Time) time.Time {
	if b.known != nil {
		if c, ok := b.known.AccountCreated(tenant, account); ok && t.Before(c) {
			return c
		}
	}
	return t
}

// notBefore returns an instant no earlier than what the log already knows
// of a tenant's Azure directory and roles: a change a snapshot shows, and
// does not date itself, happened after the log's last word on them. A
// record the export dates keeps its own time.
func (b *builder) notBefore(tenant string, t time.Time) time.Time {
	if b.known != nil {
		if k := b.known.KnownUntil(tenant); t.Before(k) {
			return k
		}
	}
	return t
}

// observed returns the instant an inventory was observed: the one given,
// or the newest of times.
func observed(o *Options, times []time.Time) time.Time {
	if !o.ObservedAt.IsZero() {
		return o.ObservedAt
	}
	var t time.Time
	for _, x := range times {
		if x.After(t) {
			t = x
		}
	}
	if t.IsZero() {
		t = time.Now().UTC().Truncate(time.Second)
	}
	return t
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// progress tells a terminal how a long import goes.
type progress struct {
	w            io.Writer
	name         string
	rows         int
	start, shown time.Time
}

func newProgress(w io.Writer, name string) *progress {
	now := time.Now()
	return &progress{w: w, name: name, start: now, shown: now}
}

// row counts a row read, and shows the count when a second has passed
// (the clock is read every few thousand rows).
func (p *progress) row(reported int) {
	p.rows++
	if p.w == nil || p.rows%4096 != 0 {
		return
	}
	if now := time.Now(); now.Sub(p.shown) >= time.Second {
		p.shown = now
		p.show(reported)
	}
}

// done shows the last count, on a line of its own.
func (p *progress) done(reported int) {
	if p.w != nil {
		p.show(reported)
		fmt.Fprintln(p.w)
	}
}

// show rewrites the line: the counts only grow, so nothing of the last
// one is left over.
func (p *progress) show(reported int) {
	rate := float64(p.rows) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\rpal import %s: %d rows read, %.0f rows/s, %d reported", p.name, p.rows, rate, reported)
}
