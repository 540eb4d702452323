package directory

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
)

// Directory is the partner directory as the log has it (SPEC.md section 2):
// the registered organisations, the location IDs each lists now and those
// it listed once, and the capability-score inputs of partner.metrics. It is
// the state of the records of no tenant; a Directory is not safe for
// concurrent use.
type Directory struct {
	orgs      map[string]*Org
	locations map[string]string // location ID → organisation, while listed
	former    map[string]string // location ID → organisation that dropped it
	inputs    map[orgMonth]Inputs
}

// Org is a registered organisation. Its fields are the directory's own:
// read them, change none.
type Org struct {
	ID        string
	Name      string
	Locations []string
	// Registrations are the organisation's applied partner.registered
	// events, oldest first: its history, as a refolded directory is
	// compared with the one it replaces.
	Registrations []Registration
	segments      []segmentChange
}

// Registration is one applied partner.registered event of an organisation.
type Registration struct {
	At        time.Time
	Name      string
	Locations []string
	Segment   string
}

type segmentChange struct {
	at      time.Time
	segment string
}

type orgMonth struct {
	org, month string
}

// Inputs are the capability-score inputs that PAL does not produce, from a
// partner.metrics event.
type Inputs struct {
	NetCustomerAdds       int64
	IntermediateCertified int64
	AdvancedCertified     int64
}

// New returns an empty directory.
func New() *Directory {
	return &Directory{orgs: map[string]*Org{}, locations: map[string]string{}, former: map[string]string{}, inputs: map[orgMonth]Inputs{}}
}

// Register applies a partner.registered event, and returns the location
// IDs whose organisation changed (listed or dropped), or its refusal.
func (d *Directory) Register(ev *event.Event) (changed []string, rf *event.Refusal) {
	if owner, ok := d.locations[ev.Org]; ok {
		return nil, event.Refuse(ev, event.AlreadyExists, "%s is already a location ID of organisation %s; an organisation's global ID cannot also be a location ID", ev.Org, owner)
	}
	var locs []string
	for _, loc := range ev.Locations {
		if loc == ev.Org {
			return nil, event.Refuse(ev, event.GlobalPartnerID, "location %s is the organisation's own global ID; list its location IDs only", loc)
		}
		if o := d.orgs[loc]; o != nil {
			return nil, event.Refuse(ev, event.GlobalPartnerID, "location %s is the global ID of organisation %s; a global ID cannot be a location ID", loc, o.Name)
		}
		if owner, ok := d.locations[loc]; ok && owner != ev.Org {
			return nil, event.Refuse(ev, event.AlreadyExists, "location %s already belongs to organisation %s", loc, owner)
		}
		if !slices.Contains(locs, loc) {
			locs = append(locs, loc)
		}
	}
	o := d.orgs[ev.Org]
	if o == nil {
		o = &Org{ID: ev.Org}
		d.orgs[ev.Org] = o
	}
	for _, loc := range o.Locations {
		if !slices.Contains(locs, loc) {
			delete(d.locations, loc)
			d.former[loc] = ev.Org
			changed = append(changed, loc)
		}
	}
	for _, loc := range locs {
		if _, ok := d.locations[loc]; !ok {
			d.locations[loc] = ev.Org
			delete(d.former, loc)
			changed = append(changed, loc)
		}
	}
	o.Name = ev.Name
	o.Locations = locs
	o.Registrations = append(o.Registrations, Registration{ev.Time, ev.Name, locs, ev.Segment})
	if n := len(o.segments); n == 0 || o.segments[n-1].segment != ev.Segment {
		o.segments = append(o.segments, segmentChange{at: ev.Time, segment: ev.Segment})
	}
	return changed, nil
}

// Metrics applies a partner.metrics event, or returns its refusal.
func (d *Directory) Metrics(ev *event.Event) *event.Refusal {
	if owner, ok := d.locations[ev.Org]; ok {
		return event.Refuse(ev, event.UnknownPartnerID, "%s is a location ID of organisation %s; partner.metrics takes the organisation's global ID %s", ev.Org, owner, owner)
	}
	if d.orgs[ev.Org] == nil {
		return event.Refuse(ev, event.UnknownPartnerID, "organisation %s is not registered at %s; send partner.registered first", ev.Org, ev.Time.UTC().Format(time.RFC3339))
	}
	d.inputs[orgMonth{ev.Org, ev.Month}] = Inputs{
		NetCustomerAdds:       ev.NetCustomerAdds,
		IntermediateCertified: ev.IntermediateCertified,
		AdvancedCertified:     ev.AdvancedCertified,
	}
	return nil
}

// CheckLink refuses a link to a partner ID that is not a location ID the
// directory lists now, saying what to link instead; nil when it is one.
func (d *Directory) CheckLink(ev *event.Event) *event.Refusal {
	if o := d.orgs[ev.Partner]; o != nil {
		return event.Refuse(ev, event.GlobalPartnerID, "%s is the global ID of organisation %s; link one of its location IDs instead: %s", ev.Partner, o.Label(), strings.Join(o.Locations, ", "))
	}
	if _, ok := d.locations[ev.Partner]; !ok {
		if prev, ok := d.former[ev.Partner]; ok {
			return event.Refuse(ev, event.UnknownPartnerID, "%s is no longer a location ID of organisation %s; link one of its current location IDs: %s", ev.Partner, d.orgs[prev].Label(), strings.Join(d.orgs[prev].Locations, ", "))
		}
		return event.Refuse(ev, event.UnknownPartnerID, "partner ID %s is not the location ID of any registered organisation; use the associated partner ID shown in the partner profile", ev.Partner)
	}
	return nil
}

// Org returns the organisation with global ID id, nil when none is
// registered.
func (d *Directory) Org(id string) *Org { return d.orgs[id] }

// Owner returns the organisation that lists location ID id now.
func (d *Directory) Owner(id string) (string, bool) {
	org, ok := d.locations[id]
	return org, ok
}

// OwnerEver returns the organisation that lists a location ID, or that
// listed it last, "" when none ever did.
func (d *Directory) OwnerEver(id string) string {
	if org, ok := d.locations[id]; ok {
		return org
	}
	return d.former[id]
}

// Inputs returns the partner.metrics inputs of an organisation for a month
// (YYYY-MM).
func (d *Directory) Inputs(org, month string) (Inputs, bool) {
	in, ok := d.inputs[orgMonth{org, month}]
	return in, ok
}

// IDs returns the global IDs of the registered organisations, sorted.
func (d *Directory) IDs() []string {
	return slices.Sorted(maps.Keys(d.orgs))
}

// Label names an organisation in a message: its name and global ID.
func (o *Org) Label() string {
	if o.Name == "" {
		return o.ID
	}
	return fmt.Sprintf("%s (%s)", o.Name, o.ID)
}

// IDs lists the organisation's global ID and every location ID it ever
// listed.
func (o *Org) IDs() []string {
	ids := []string{o.ID}
	for _, r := range o.Registrations {
		ids = append(ids, r.Locations...)
	}
	return ids
}

// Lists reports whether a partner ID is a location ID the organisation
// lists or once listed.
func (o *Org) Lists(partner string) bool {
	return partner != "" && slices.Contains(o.IDs(), partner)
}

// SegmentAt returns the organisation's segment at an instant, "" before it
// was registered.
func (o *Org) SegmentAt(at time.Time) string {
	seg := ""
	for _, s := range o.segments {
		if s.at.After(at) {
			break
		}
		seg = s.segment
	}
	return seg
}

// Adopt replaces d's contents with from's, and returns the partner IDs,
// global and location, of every organisation whose history differs between
// the two: the tenants whose accounts link to one of them, or tried to,
// must be folded again.
func (d *Directory) Adopt(from *Directory) []string {
	var changed []string
	for id, o := range d.orgs {
		if from.orgs[id] == nil {
			changed = append(changed, o.IDs()...)
		}
	}
	for id, o := range from.orgs {
		old := d.orgs[id]
		if old == nil {
			changed = append(changed, o.IDs()...)
			continue
		}
		if !slices.EqualFunc(old.Registrations, o.Registrations, Registration.equal) {
			changed = append(changed, old.IDs()...)
			changed = append(changed, o.IDs()...)
		}
	}
	*d = *from
	slices.Sort(changed)
	return slices.Compact(changed)
}

func (r Registration) equal(s Registration) bool {
	return r.At.Equal(s.At) && r.Name == s.Name && r.Segment == s.Segment && slices.Equal(r.Locations, s.Locations)
}

// SnapOrg is an organisation in a snapshot, with exported fields for gob.
type SnapOrg struct {
	Name      string
	Locations []string
	Segments  []time.Time
	SegNames  []string
	Regs      []Registration
}

// Snapshot returns the directory's contents with exported fields, for gob:
// the organisations, the location IDs dropped, and the inputs by
// organisation then month.
func (d *Directory) Snapshot() (orgs map[string]SnapOrg, former map[string]string, inputs map[string]map[string]Inputs) {
	orgs, inputs = map[string]SnapOrg{}, map[string]map[string]Inputs{}
	for id, o := range d.orgs {
		so := SnapOrg{Name: o.Name, Locations: o.Locations, Regs: o.Registrations}
		for _, c := range o.segments {
			so.Segments = append(so.Segments, c.at)
			so.SegNames = append(so.SegNames, c.segment)
		}
		orgs[id] = so
	}
	for k, in := range d.inputs {
		if inputs[k.org] == nil {
			inputs[k.org] = map[string]Inputs{}
		}
		inputs[k.org][k.month] = in
	}
	return orgs, d.former, inputs
}

// Restore returns the directory that Snapshot described.
func Restore(orgs map[string]SnapOrg, former map[string]string, inputs map[string]map[string]Inputs) *Directory {
	d := New()
	for id, so := range orgs {
		o := &Org{ID: id, Name: so.Name, Locations: so.Locations, Registrations: so.Regs}
		for i, at := range so.Segments {
			o.segments = append(o.segments, segmentChange{at: at, segment: so.SegNames[i]})
		}
		d.orgs[id] = o
		for _, loc := range so.Locations {
			d.locations[loc] = id
		}
	}
	maps.Copy(d.former, former)
	for org, months := range inputs {
		for month, in := range months {
			d.inputs[orgMonth{org, month}] = in
		}
	}
	return d
}
