package imports

import (
	"cmp"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
)

func init() {
	register(Source{Name: "azure-pim", Signature: []string{"properties"}, NeedsTenant: true, read: readPIM,
		About: "the REST lists of role eligibility schedule instances, role assignment schedule instances and role assignment schedule requests (properties: principalId, roleDefinitionId, scope, memberType, assignmentType Activated/Assigned, startDateTime, endDateTime, linkedRoleEligibilityScheduleId, requestType SelfActivate/SelfDeactivate, status, createdOn, scheduleInfo): eligible assignments, their activations and their deactivations"})
}

// pimEligibility is an eligible assignment as an activation names it: in
// the log, or made by this import.
type pimEligibility struct {
	from   time.Time
	active bool // an active assignment, which no activation applies to
	ended  bool
	end    time.Time
}

// pimActivation is an activation read from an instance or a request:
// both name the same activation by its eligibility and start, and give
// the same event.
type pimActivation struct {
	rec          record
	eligibility  string
	start, until time.Time
	instance     bool
}

// pimDeactivation is a deactivation request that took effect.
type pimDeactivation struct {
	rec         record
	eligibility string
	at          time.Time
}

// readPIM turns Privileged Identity Management lists into eligible
// assignments (the eligibility schedules, new since the log), their
// activations (each activated instance, and each self-activation request
// that was provisioned, dated by itself) and their deactivations (each
// self-deactivation request that took effect, at its createdOn). Instances
// a group or a parent scope passes down (memberType other than Direct) are
// the group's or the parent's, imported from them; an Assigned instance or
// an AdminAssign request is a standing assignment, which az role assignment
// list gives.
func readPIM(each iter.Seq[record], o *Options, b *builder) {
	recs := slices.Collect(each)
	st := &pimState{b: b, o: o, tenant: o.Tenant, made: map[string]pimEligibility{}, byKey: map[string][]string{}, principals: map[string]bool{}}
	if b.known != nil {
		st.live = map[string]azure.LiveAssignment{}
		for _, a := range b.known.LiveAssignments(o.Tenant) {
			st.live[a.ID] = a
			if a.Eligible {
				k := roleKey(a.Principal, a.Role, a.Scope)
				st.byKey[k] = append(st.byKey[k], a.ID)
			}
		}
	}
	// Eligibilities first: the activations and requests of the same files
	// name them.
	var rest []record
	for _, r := range recs {
		p := props(r)
		if p.has("requestType") || p.has("assignmentType") {
			rest = append(rest, r)
			continue
		}
		st.eligibility(r, p)
	}
	for _, r := range rest {
		p := props(r)
		if p.has("requestType") {
			st.request(r, p)
		} else {
			st.instance(r, p)
		}
	}
	st.emit()
}

// props returns an ARM record's properties, or the record itself when it
// has none (a list already flattened).
func props(r record) record {
	if p, ok := r.sub("properties"); ok {
		return p
	}
	return r
}

// pimState is what a PIM import has read so far.
type pimState struct {
	b      *builder
	o      *Options
	tenant string
	live   map[string]azure.LiveAssignment // the log's, nil without a log
	made   map[string]pimEligibility       // eligibilities this import makes
	byKey  map[string][]string             // eligible assignments by roleKey
	acts   []pimActivation
	deacts []pimDeactivation
	// principals this import makes
	principals map[string]bool
}

// roleOfPIM is the role a PIM record gives: named in its expanded
// properties, or a built-in role's roleDefinitionId.
func roleOfPIM(p record) string {
	if x, ok := p.sub("expandedProperties"); ok {
		if rd, ok := x.sub("roleDefinition"); ok {
			if n := rd.str("displayName"); n != "" {
				return n
			}
		}
	}
	return builtinRoles[strings.ToLower(lastSegment(p.str("roleDefinitionId")))]
}

// eligibility reads an eligibility schedule (or its instance) into an
// eligible assignment, when the log does not hold it.
func (st *pimState) eligibility(r, p record) {
	b, o := st.b, st.o
	if m := p.str("memberType"); m != "" && !strings.EqualFold(m, "Direct") {
		return
	}
	id := lastSegment(p.str("roleEligibilityScheduleId"))
	if id == "" {
		id = r.str("name")
	}
	scope, err := canonicalScope(p.str("scope"), o.Tenant)
	principal, role := p.str("principalId"), roleOfPIM(p)
	switch {
	case id == "" || principal == "" || role == "":
		b.problem(r.problem("an eligibility needs its schedule ID, principalId and a role (named, or a built-in role's roleDefinitionId)"))
		return
	case err != nil:
		b.problem(r.problem("eligibility %s: scope %v", id, err))
		return
	}
	if _, ok := st.live[id]; ok {
		return
	}
	if _, ok := st.made[id]; ok {
		return
	}
	start, okStart := parseTime(p.str("startDateTime"))
	at := start
	if !okStart {
		at = b.notBefore(o.Tenant, observed(o, nil))
	}
	typ, name := p.str("principalType"), ""
	if x, ok := p.sub("expandedProperties"); ok {
		if pr, ok := x.sub("principal"); ok {
			typ, name = cmp.Or(typ, pr.str("type")), pr.str("displayName")
		}
	}
	kind, ok := principalKind(typ, name)
	if !ok {
		b.problem(r.problem("eligibility %s: principal type %q is not User, Group or ServicePrincipal", id, typ))
		return
	}
	if !st.principals[principal] {
		st.principals[principal] = true
		b.principal(o.Tenant, principal, kind, name, at)
	}
	st.made[id] = pimEligibility{from: at}
	k := roleKey(principal, role, scope)
	st.byKey[k] = append(st.byKey[k], id)
	b.add(event.Event{Type: event.AzureRoleAssigned, Time: at, Tenant: o.Tenant, Assignment: id, Principal: principal,
		PrincipalTenant: o.Tenant, Role: role, Scope: scope, PIM: event.PIMEligible}, o.Tenant, id)
}

// instance reads a role assignment schedule instance: an activation of
// the eligibility it names, from startDateTime to endDateTime.
func (st *pimState) instance(r, p record) {
	b := st.b
	if m := p.str("memberType"); m != "" && !strings.EqualFold(m, "Direct") {
		return
	}
	switch kind := p.str("assignmentType"); {
	case strings.EqualFold(kind, "Activated"):
		eligibility := lastSegment(p.str("linkedRoleEligibilityScheduleId"))
		start, okStart := parseTime(p.str("startDateTime"))
		end, okEnd := parseTime(p.str("endDateTime"))
		if eligibility == "" || !okStart || !okEnd || !end.After(start) {
			b.problem(r.problem("an activation needs its linkedRoleEligibilityScheduleId and a startDateTime before its endDateTime"))
			return
		}
		st.acts = append(st.acts, pimActivation{rec: r, eligibility: eligibility, start: start, until: end, instance: true})
	case strings.EqualFold(kind, "Assigned"):
	default:
		b.problem(r.problem("assignmentType %q is neither Activated nor Assigned", kind))
	}
}

// request reads a role assignment schedule request. Only what took effect
// counts: a self-activation provisioned (Granted is approved but not yet
// begun, and may still be cancelled; the list says Provisioned once it
// begins) and a self-deactivation provisioned or revoked (what PIM says of
// a deactivation carried out). Requests denied, failed, cancelled or
// pending change nothing, and are passed over; so are an administrator's
// requests, which make standing assignments (az role assignment list) or
// change eligibilities (their instances).
func (st *pimState) request(r, p record) {
	b := st.b
	typ, status := p.str("requestType"), p.str("status")
	if p.has("targetRoleEligibilityScheduleId") || strings.Contains(strings.ToLower(r.str("type")), "roleeligibilityschedulerequests") {
		b.problem(r.problem("%s request %s is a role eligibility schedule request: pal reads eligibilities from roleEligibilityScheduleInstances, and activations from roleAssignmentScheduleRequests", typ, r.str("name")))
		return
	}
	switch {
	case strings.EqualFold(typ, "SelfActivate") && strings.EqualFold(status, "Provisioned"):
		st.activationRequest(r, p)
	case strings.EqualFold(typ, "SelfDeactivate") && (strings.EqualFold(status, "Provisioned") || strings.EqualFold(status, "Revoked")):
		at, ok := parseTime(p.str("createdOn"))
		if !ok {
			b.problem(r.problem("SelfDeactivate request %s: createdOn %q is not a time", r.str("name"), p.str("createdOn")))
			return
		}
		eligibility, ok := st.eligibilityOf(r, p, "SelfDeactivate")
		if !ok {
			return
		}
		st.deacts = append(st.deacts, pimDeactivation{rec: r, eligibility: eligibility, at: at})
	}
}

// activationRequest reads a provisioned self-activation: from its
// scheduled start (createdOn when it names none) for its expiration.
func (st *pimState) activationRequest(r, p record) {
	b := st.b
	name := r.str("name")
	sched, _ := p.sub("scheduleInfo")
	start, ok := parseTime(sched.str("startDateTime"))
	if !ok {
		if start, ok = parseTime(p.str("createdOn")); !ok {
			b.problem(r.problem("SelfActivate request %s names no start: neither scheduleInfo.startDateTime nor createdOn is a time", name))
			return
		}
	}
	exp, _ := sched.sub("expiration")
	var until time.Time
	switch typ := exp.str("type"); {
	case strings.EqualFold(typ, "AfterDuration") || typ == "" && exp.str("duration") != "":
		d, ok := isoDuration(exp.str("duration"))
		if !ok || d <= 0 {
			b.problem(r.problem("SelfActivate request %s: duration %q is not an ISO 8601 duration of days, hours, minutes and seconds (PT8H, P1DT2H)", name, exp.str("duration")))
			return
		}
		until = start.Add(d)
	case strings.EqualFold(typ, "AfterDateTime") || typ == "" && exp.str("endDateTime") != "":
		end, ok := parseTime(exp.str("endDateTime"))
		if !ok {
			b.problem(r.problem("SelfActivate request %s: endDateTime %q is not a time", name, exp.str("endDateTime")))
			return
		}
		until = end
	default:
		b.problem(r.problem("SelfActivate request %s has no end (expiration %q): an activation lasts until an instant, which pal needs", name, typ))
		return
	}
	if !until.After(start) {
		b.problem(r.problem("SelfActivate request %s ends at %s, not after its start %s", name, until.Format(time.RFC3339), start.Format(time.RFC3339)))
		return
	}
	eligibility, ok := st.eligibilityOf(r, p, "SelfActivate")
	if !ok {
		return
	}
	st.acts = append(st.acts, pimActivation{rec: r, eligibility: eligibility, start: start, until: until})
}

// eligibilityOf returns the eligibility a request names: its
// linkedRoleEligibilityScheduleId, or the one eligible assignment the log
// or this import holds that gives its role to its principal at its scope
// (a deactivation may name only those).
func (st *pimState) eligibilityOf(r, p record, typ string) (string, bool) {
	if id := lastSegment(p.str("linkedRoleEligibilityScheduleId")); id != "" {
		return id, true
	}
	principal, role := p.str("principalId"), roleOfPIM(p)
	scope, err := canonicalScope(p.str("scope"), st.tenant)
	if principal == "" || role == "" || err != nil {
		st.b.problem(r.problem("%s request %s names no linkedRoleEligibilityScheduleId, nor the principalId, role and scope of an eligibility", typ, r.str("name")))
		return "", false
	}
	switch ids := st.byKey[roleKey(principal, role, scope)]; len(ids) {
	case 1:
		return ids[0], true
	case 0:
		st.b.problem(r.problem("%s request %s: no eligibility gives %s to %s at %s in the log or these files: import the roleEligibilityScheduleInstances first, then this file again (nothing doubles)", typ, r.str("name"), role, principal, scope))
	default:
		st.b.problem(r.problem("%s request %s: eligibilities %s all give %s to %s at %s, and it names none (linkedRoleEligibilityScheduleId)", typ, r.str("name"), strings.Join(ids, ", "), role, principal, scope))
	}
	return "", false
}

// known returns what the log and this import know of an eligibility;
// false when neither does.
func (st *pimState) known(id string) (pimEligibility, bool) {
	if e, ok := st.made[id]; ok {
		return e, true
	}
	if st.b.known == nil {
		return pimEligibility{}, false
	}
	if a, ok := st.live[id]; ok {
		return pimEligibility{from: a.From, active: !a.Eligible}, true
	}
	if end, ok := st.b.known.AssignmentEnd(st.tenant, id); ok {
		return pimEligibility{ended: true, end: end}, true
	}
	return pimEligibility{}, false
}

// applies reports whether the log would take a change of an eligibility at
// an instant, and reports the record when it would not. Without the log
// nothing is known, and everything is written.
func (st *pimState) applies(rec record, what, id string, at time.Time) bool {
	if st.b.known == nil {
		return true
	}
	e, ok := st.known(id)
	switch {
	case !ok:
		st.b.problem(rec.problem("%s of eligibility %s, which the log does not hold in tenant %s: import the roleEligibilityScheduleInstances first, then this file again (nothing doubles)", what, id, st.tenant))
	case e.active:
		st.b.problem(rec.problem("%s of assignment %s, which the log holds as active, not eligible: only an eligible assignment is activated", what, id))
	case e.ended && !at.Before(e.end):
		st.b.problem(rec.problem("%s of eligibility %s at %s, which ended at %s", what, id, at.Format(time.RFC3339), e.end.Format(time.RFC3339)))
	case !e.ended && at.Before(e.from):
		st.b.problem(rec.problem("%s of eligibility %s at %s, before the eligibility begins (%s)", what, id, at.Format(time.RFC3339), e.from.Format(time.RFC3339)))
	default:
		return true
	}
	return false
}

// emit writes the activations and deactivations. An activation read from
// both its instance and its request is one event, ending where the
// instance says. A deactivation ends the activation these files show
// running then; with none, the log would refuse it, and it is reported.
func (st *pimState) emit() {
	b := st.b
	type key struct {
		eligibility string
		start       int64
	}
	byKey := map[key]int{}
	var acts []pimActivation
	for _, a := range st.acts {
		k := key{a.eligibility, a.start.UnixNano()}
		if i, ok := byKey[k]; ok {
			if a.instance && !acts[i].instance {
				acts[i].until, acts[i].instance = a.until, true
			}
			continue
		}
		byKey[k] = len(acts)
		acts = append(acts, a)
	}
	type change struct {
		at    time.Time
		act   *pimActivation
		deact *pimDeactivation
	}
	var changes []change
	for i := range acts {
		if st.applies(acts[i].rec, "activation", acts[i].eligibility, acts[i].start) {
			changes = append(changes, change{at: acts[i].start, act: &acts[i]})
		}
	}
	for i := range st.deacts {
		d := &st.deacts[i]
		if st.applies(d.rec, "deactivation", d.eligibility, d.at) {
			changes = append(changes, change{at: d.at, deact: d})
		}
	}
	// In time order, activations before deactivations of the same instant,
	// as the log applies them.
	slices.SortStableFunc(changes, func(x, y change) int {
		return cmp.Or(x.at.Compare(y.at), cmp.Compare(boolInt(x.act == nil), boolInt(y.act == nil)))
	})
	running := map[string]time.Time{} // eligibility → end of its running activation
	for _, c := range changes {
		if a := c.act; a != nil {
			// One while another runs moves its end to the later of the two.
			if end, ok := running[a.eligibility]; !ok || !end.After(a.start) || a.until.After(end) {
				running[a.eligibility] = a.until
			}
			b.add(event.Event{Type: event.AzureRoleActivated, Time: a.start, Tenant: st.tenant, Assignment: a.eligibility, Until: a.until},
				st.tenant, a.eligibility, a.start.Format(time.RFC3339Nano))
			continue
		}
		d := c.deact
		if end, ok := running[d.eligibility]; !ok || !end.After(d.at) {
			b.problem(d.rec.problem("SelfDeactivate of eligibility %s at %s: no activation of it that these files hold runs then, and the log refuses a deactivation with none running: import the SelfActivate request or the activation instance with it", d.eligibility, d.at.Format(time.RFC3339)))
			continue
		}
		running[d.eligibility] = d.at
		b.add(event.Event{Type: event.AzureRoleDeactivated, Time: d.at, Tenant: st.tenant, Assignment: d.eligibility},
			st.tenant, d.eligibility, d.at.Format(time.RFC3339Nano))
	}
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// isoDuration reads an ISO 8601 duration of fixed length, as PIM writes an
// activation's: days (and weeks), then after "T" hours, minutes and
// seconds, each at most once and in that order, only the seconds with a
// fraction (PT8H, PT30M, P1D, P1DT2H, PT1H30M15.5S). Years and months,
// whose length depends on the calendar, a sign, or an empty "P" or "T"
// are not read.
func isoDuration(s string) (time.Duration, bool) {
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" {
		return 0, false
	}
	const units = "WDTHMS"
	sizes := map[byte]time.Duration{'W': 7 * 24 * time.Hour, 'D': 24 * time.Hour, 'H': time.Hour, 'M': time.Minute, 'S': time.Second}
	var total time.Duration
	last := -1 // index in units of the last part read
	for rest != "" {
		if rest[0] == 'T' {
			if last >= strings.IndexByte(units, 'T') || len(rest) == 1 {
				return 0, false
			}
			last, rest = strings.IndexByte(units, 'T'), rest[1:]
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, false
		}
		num, unit := rest[:i], rest[i]
		rest = rest[i+1:]
		u := strings.IndexByte(units, unit)
		inTime := last >= strings.IndexByte(units, 'T')
		switch {
		case u < 0 || unit == 'T' || u <= last:
			return 0, false
		case (unit == 'W' || unit == 'D') && inTime, (unit == 'H' || unit == 'M' || unit == 'S') && !inTime:
			// M before T is months; H, M, S need the T.
			return 0, false
		}
		last = u
		whole, frac, dotted := strings.Cut(num, ".")
		if whole == "" || dotted && (unit != 'S' || frac == "" || rest != "" || strings.Contains(frac, ".")) {
			return 0, false
		}
		n, err := strconv.ParseInt(whole, 10, 64)
		size := sizes[unit]
		if err != nil || n > int64((1<<63-1)/size) {
			return 0, false
		}
		part := time.Duration(n) * size
		if dotted {
			if len(frac) > 9 {
				frac = frac[:9]
			}
			f, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
			if err != nil {
				return 0, false
			}
			part += time.Duration(f)
		}
		if part > 1<<63-1-total {
			return 0, false
		}
		total += part
	}
	return total, true
}
