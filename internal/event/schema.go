package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

type fieldKind int

const (
	stringField fieldKind = iota
	stringsField
	intField
	resourcesField
	// numberField is a JSON number kept as written (Event.Cost).
	numberField
	// timeField is an RFC 3339 string other than the event's time
	// (Event.Until).
	timeField
)

type field struct {
	name     string
	kind     fieldKind
	required bool
}

func req(name string) field                { return field{name: name, required: true} }
func opt(name string) field                { return field{name: name} }
func reqOf(name string, k fieldKind) field { return field{name: name, kind: k, required: true} }

// schemas lists the fields of each event type, in the order they are written.
var schemas = map[string][]field{
	PartnerRegistered:   {req("org"), opt("name"), reqOf("locations", stringsField), opt("segment")},
	AccountCreated:      {req("tenant"), req("account"), req("kind"), opt("name")},
	AccountDisabled:     {req("tenant"), req("account")},
	AccountEnabled:      {req("tenant"), req("account")},
	AccountDeleted:      {req("tenant"), req("account")},
	EnvironmentCreated:  {req("tenant"), req("environment"), req("env_type")},
	EnvironmentChanged:  {req("tenant"), req("environment"), req("env_type")},
	EnvironmentDeleted:  {req("tenant"), req("environment")},
	ResourceCreated:     {req("tenant"), req("environment"), req("resource"), req("kind"), req("owner"), opt("name")},
	ResourceOwnerChange: {req("tenant"), req("resource"), req("owner")},
	ResourceCoownerAdd:  {req("tenant"), req("resource"), req("account")},
	ResourceCoownerDel:  {req("tenant"), req("resource"), req("account")},
	ResourceActivity:    {req("tenant"), req("resource"), req("account"), req("action")},
	ResourceDeleted:     {req("tenant"), req("resource")},
	SolutionImported:    {req("tenant"), req("environment"), req("account"), reqOf("resources", resourcesField)},
	PalLinked:           {req("tenant"), req("account"), req("partner")},
	PalRemoved:          {req("tenant"), req("account")},
	Usage:               {req("tenant"), req("resource"), req("user")},
	Profiles:            {req("tenant"), req("resource"), reqOf("count", intField)},
	PartnerMetrics: {req("org"), req("month"), reqOf("net_customer_adds", intField),
		reqOf("intermediate_certified", intField), reqOf("advanced_certified", intField)},

	AzureGroupPlaced:        {req("tenant"), req("group"), opt("parent")},
	AzureSubscriptionPlaced: {req("tenant"), req("subscription"), opt("group")},
	GroupCreated:            {req("tenant"), req("group"), opt("name")},
	GroupMemberAdded:        {req("tenant"), req("group"), req("account")},
	GroupMemberRemoved:      {req("tenant"), req("group"), req("account")},
	AzureRoleAssigned: {req("tenant"), req("assignment"), req("principal"), req("role"), req("scope"),
		opt("pim"), opt("principal_tenant")},
	AzureRoleActivated:   {req("tenant"), req("assignment"), reqOf("until", timeField)},
	AzureRoleDeactivated: {req("tenant"), req("assignment")},
	AzureRoleRemoved:     {req("tenant"), req("assignment")},
	AzureConsumption:     {req("tenant"), req("resource"), req("date"), reqOf("cost", numberField), opt("meter")},
}

// Types lists the event types of format v1, sorted.
func Types() []string {
	types := make([]string, 0, len(schemas))
	for t := range schemas {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// str returns the address of the string field called name.
func (e *Event) str(name string) *string {
	switch name {
	case "tenant":
		return &e.Tenant
	case "account":
		return &e.Account
	case "kind":
		return &e.Kind
	case "name":
		return &e.Name
	case "environment":
		return &e.Environment
	case "env_type":
		return &e.EnvType
	case "resource":
		return &e.Resource
	case "owner":
		return &e.Owner
	case "action":
		return &e.Action
	case "partner":
		return &e.Partner
	case "user":
		return &e.User
	case "org":
		return &e.Org
	case "segment":
		return &e.Segment
	case "month":
		return &e.Month
	case "group":
		return &e.Group
	case "parent":
		return &e.Parent
	case "subscription":
		return &e.Subscription
	case "assignment":
		return &e.Assignment
	case "principal":
		return &e.Principal
	case "role":
		return &e.Role
	case "scope":
		return &e.Scope
	case "pim":
		return &e.PIM
	case "principal_tenant":
		return &e.PrincipalTenant
	case "date":
		return &e.Date
	case "cost":
		return &e.Cost
	case "meter":
		return &e.Meter
	}
	panic("event: no string field " + name)
}

// integer returns the address of the integer field called name.
func (e *Event) integer(name string) *int64 {
	switch name {
	case "count":
		return &e.Count
	case "net_customer_adds":
		return &e.NetCustomerAdds
	case "intermediate_certified":
		return &e.IntermediateCertified
	case "advanced_certified":
		return &e.AdvancedCertified
	}
	panic("event: no integer field " + name)
}

// raw holds every field any type may have, undecoded, so that a field is
// decoded only when the line's type has it (unknown fields are ignored).
type raw struct {
	ID                    json.RawMessage `json:"id"`
	Imported              json.RawMessage `json:"imported"`
	Type                  json.RawMessage `json:"type"`
	Time                  json.RawMessage `json:"time"`
	Tenant                json.RawMessage `json:"tenant"`
	Account               json.RawMessage `json:"account"`
	Kind                  json.RawMessage `json:"kind"`
	Name                  json.RawMessage `json:"name"`
	Environment           json.RawMessage `json:"environment"`
	EnvType               json.RawMessage `json:"env_type"`
	Resource              json.RawMessage `json:"resource"`
	Owner                 json.RawMessage `json:"owner"`
	Action                json.RawMessage `json:"action"`
	Partner               json.RawMessage `json:"partner"`
	User                  json.RawMessage `json:"user"`
	Org                   json.RawMessage `json:"org"`
	Segment               json.RawMessage `json:"segment"`
	Month                 json.RawMessage `json:"month"`
	Locations             json.RawMessage `json:"locations"`
	Resources             json.RawMessage `json:"resources"`
	Count                 json.RawMessage `json:"count"`
	NetCustomerAdds       json.RawMessage `json:"net_customer_adds"`
	IntermediateCertified json.RawMessage `json:"intermediate_certified"`
	AdvancedCertified     json.RawMessage `json:"advanced_certified"`
	Group                 json.RawMessage `json:"group"`
	Parent                json.RawMessage `json:"parent"`
	Subscription          json.RawMessage `json:"subscription"`
	Assignment            json.RawMessage `json:"assignment"`
	Principal             json.RawMessage `json:"principal"`
	Role                  json.RawMessage `json:"role"`
	Scope                 json.RawMessage `json:"scope"`
	PIM                   json.RawMessage `json:"pim"`
	PrincipalTenant       json.RawMessage `json:"principal_tenant"`
	Until                 json.RawMessage `json:"until"`
	Date                  json.RawMessage `json:"date"`
	Cost                  json.RawMessage `json:"cost"`
	Meter                 json.RawMessage `json:"meter"`
}

// field returns the address of the field called name, exactly as the
// format spells it; nil for any other name.
func (r *raw) field(name string) *json.RawMessage {
	switch name {
	case "id":
		return &r.ID
	case "imported":
		return &r.Imported
	case "type":
		return &r.Type
	case "time":
		return &r.Time
	case "tenant":
		return &r.Tenant
	case "account":
		return &r.Account
	case "kind":
		return &r.Kind
	case "name":
		return &r.Name
	case "environment":
		return &r.Environment
	case "env_type":
		return &r.EnvType
	case "resource":
		return &r.Resource
	case "owner":
		return &r.Owner
	case "action":
		return &r.Action
	case "partner":
		return &r.Partner
	case "user":
		return &r.User
	case "org":
		return &r.Org
	case "segment":
		return &r.Segment
	case "month":
		return &r.Month
	case "locations":
		return &r.Locations
	case "resources":
		return &r.Resources
	case "count":
		return &r.Count
	case "net_customer_adds":
		return &r.NetCustomerAdds
	case "intermediate_certified":
		return &r.IntermediateCertified
	case "advanced_certified":
		return &r.AdvancedCertified
	case "group":
		return &r.Group
	case "parent":
		return &r.Parent
	case "subscription":
		return &r.Subscription
	case "assignment":
		return &r.Assignment
	case "principal":
		return &r.Principal
	case "role":
		return &r.Role
	case "scope":
		return &r.Scope
	case "pim":
		return &r.PIM
	case "principal_tenant":
		return &r.PrincipalTenant
	case "until":
		return &r.Until
	case "date":
		return &r.Date
	case "cost":
		return &r.Cost
	case "meter":
		return &r.Meter
	}
	return nil
}

// decodeRaw decodes a line into r, keeping the fields whose names are
// exactly the format's: encoding/json would also take "Resource" or "TIME"
// for them, where a field the format does not name is ignored (SPEC.md
// section 3). Of a name given twice, the last value counts.
func decodeRaw(data []byte, r *raw) error {
	if plainKeys(data) {
		// Keys of a–z, 0–9 and _ alone match a field only when they are
		// its name: the struct's decoder, without a map, is exact.
		return json.Unmarshal(data, r)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	for name, v := range m {
		if f := r.field(name); f != nil {
			*f = v
		}
	}
	return nil
}

// plainKeys reports whether every key in a JSON text, at any depth, is
// written with a–z, 0–9 and _ alone, without escapes. It does not check
// the text: a malformed one answers false or true, and is refused by the
// decoder either way.
func plainKeys(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue
		}
		plain := true
		j := i + 1
		for ; j < len(data) && data[j] != '"'; j++ {
			switch c := data[j]; {
			case c == '\\':
				plain = false
				j++ // the escaped byte, which may be a quote
			case c < '0' || c > '9' && c < '_' || c > '_' && c < 'a' || c > 'z':
				plain = false
			}
		}
		k := j + 1
		for k < len(data) && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r' || data[k] == '\n') {
			k++
		}
		if !plain && k < len(data) && data[k] == ':' {
			return false
		}
		i = j
	}
	return true
}

// get returns the value of the field called name, nil when it is absent
// or null.
func (r *raw) get(name string) json.RawMessage {
	f := r.field(name)
	if f == nil {
		panic("event: no field " + name)
	}
	if isNull(*f) {
		return nil
	}
	return *f
}

func isNull(v json.RawMessage) bool {
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

var jsonTypeNames = map[fieldKind]string{
	stringField:    "a string",
	stringsField:   "an array of strings",
	intField:       "an integer",
	resourcesField: `an array of {"resource", "kind", "name"} objects`,
	numberField:    "a number",
	timeField:      "a string",
}

// Decode parses and validates one line of the log. line is the line's
// number, used in the refusal. It returns the event, or a refusal with the
// first problem in the order of SPEC.md section 3.
func Decode(data []byte, line int) (*Event, *Refusal) {
	ev := &Event{Line: line}
	refuse := func(code Code, format string, args ...any) (*Event, *Refusal) {
		return nil, Refuse(ev, code, format, args...)
	}
	if !utf8.Valid(data) {
		return refuse(Malformed, "the line is not valid UTF-8; the log must be UTF-8 text")
	}
	var r raw
	if err := decodeRaw(data, &r); err != nil {
		return refuse(Malformed, "the line is not a JSON object (%s); write one JSON object per line", jsonProblem(err))
	}
	var typ, tim string
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"type", r.Type, &typ}, {"time", r.Time, &tim}, {"id", r.ID, &ev.ID}} {
		if isNull(f.raw) {
			continue
		}
		if decodeString(f.raw, f.dst) != nil {
			return refuse(Malformed, "field %q must be a string", f.name)
		}
	}
	// imported is pal's own mark (the operator's imports), not a field
	// of SPEC.md's format: a value other than true is no mark, and does
	// not refuse the line.
	ev.Imported = bytes.Equal(r.Imported, []byte("true"))
	ev.Type = typ
	schema, known := schemas[typ]
	if known {
		if rf := ev.decodeFields(&r, schema); rf != nil {
			return nil, rf
		}
	}
	if typ == "" {
		return refuse(MissingField, `field "type" is missing; every event has a type such as "usage" or "pal.linked"`)
	}
	if tim == "" {
		return refuse(MissingField, `field "time" is missing; every event has a time in RFC 3339, such as "2026-01-31T09:00:00Z"`)
	}
	if known {
		if rf := ev.checkPresent(&r, schema); rf != nil {
			return nil, rf
		}
	} else {
		return refuse(UnknownType, "unknown event type %q; the types are %s", typ, strings.Join(Types(), ", "))
	}
	t, ok := ParseRFC3339(tim)
	if !ok {
		return refuse(InvalidTime, "time %q is not RFC 3339 with an offset; write it as 2026-01-31T09:00:00Z or 2026-01-31T10:00:00+01:00", tim)
	}
	ev.Time = t.UTC()
	if ev.Type == AzureRoleActivated {
		u, ok := ParseRFC3339(ev.untilText)
		if !ok {
			return refuse(InvalidTime, "until %q is not RFC 3339 with an offset; write it as 2026-01-31T17:00:00Z", ev.untilText)
		}
		ev.Until, ev.untilText = u.UTC(), ""
	}
	if rf := ev.checkValues(); rf != nil {
		return nil, rf
	}
	return ev, nil
}

// decodeString decodes a JSON value known to be valid into a string. A
// string without escapes, the common case, is taken as it is, without a
// second pass of the JSON decoder.
func decodeString(v json.RawMessage, dst *string) error {
	if n := len(v); n >= 2 && v[0] == '"' && v[n-1] == '"' && bytes.IndexByte(v, '\\') < 0 {
		*dst = string(v[1 : n-1])
		return nil
	}
	return json.Unmarshal(v, dst)
}

func jsonProblem(err error) string {
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field == "" {
		return "found " + te.Value
	}
	return err.Error()
}

// decodeFields decodes the fields of the event's type that are present.
func (ev *Event) decodeFields(r *raw, schema []field) *Refusal {
	for _, f := range schema {
		v := r.get(f.name)
		if v == nil {
			continue
		}
		var err error
		switch f.kind {
		case stringField:
			err = decodeString(v, ev.str(f.name))
		case stringsField:
			err = json.Unmarshal(v, &ev.Locations)
		case intField:
			err = json.Unmarshal(v, ev.integer(f.name))
		case resourcesField:
			err = json.Unmarshal(v, &ev.Resources)
		case numberField:
			var n json.Number
			if err = json.Unmarshal(v, &n); err == nil && (len(v) == 0 || v[0] == '"') {
				err = errors.New("a string")
			}
			ev.Cost = string(n)
		case timeField:
			err = decodeString(v, &ev.untilText)
		}
		if err != nil {
			return Refuse(ev, Malformed, "field %q must be %s", f.name, jsonTypeNames[f.kind])
		}
	}
	return nil
}

// checkPresent refuses an event that lacks a required field.
func (ev *Event) checkPresent(r *raw, schema []field) *Refusal {
	var names []string
	for _, f := range schema {
		if f.required {
			names = append(names, f.name)
		}
	}
	for _, f := range schema {
		if !f.required {
			continue
		}
		missing := r.get(f.name) == nil
		if f.kind == stringField || f.kind == numberField {
			missing = missing || *ev.str(f.name) == ""
		}
		if missing {
			article := "a"
			if strings.ContainsRune("aeiou", rune(ev.Type[0])) {
				article = "an"
			}
			return Refuse(ev, MissingField, "field %q is missing; %s %s event needs %s", f.name, article, ev.Type, strings.Join(names, ", "))
		}
	}
	for i, sr := range ev.Resources {
		if sr.Resource == "" || sr.Kind == "" {
			return Refuse(ev, MissingField, `resources[%d] needs "resource" and "kind"`, i)
		}
	}
	return nil
}

// checkValues refuses a value out of its range (SPEC.md section 3).
func (ev *Event) checkValues() *Refusal {
	partnerID := func(what, id string) *Refusal {
		if IsPartnerID(id) {
			return nil
		}
		return Refuse(ev, InvalidPartnerID, "%s %q is not a partner ID; partner IDs are 6 to 10 digits", what, id)
	}
	oneOf := func(what, v string, allowed []string) *Refusal {
		if slices.Contains(allowed, v) {
			return nil
		}
		return Refuse(ev, InvalidValue, "%s %q is not one of %s", what, v, strings.Join(allowed, ", "))
	}
	resourceKind := func(kind string) *Refusal {
		if _, ok := Kinds[kind]; ok {
			return nil
		}
		return Refuse(ev, InvalidKind, "resource kind %q is not one of %s", kind, strings.Join(kindNames(), ", "))
	}
	nonNegative := func(name string, v int64) *Refusal {
		if v >= 0 {
			return nil
		}
		return Refuse(ev, InvalidValue, "%s is %d; it cannot be negative", name, v)
	}
	switch ev.Type {
	case PartnerRegistered:
		if rf := partnerID("organisation ID", ev.Org); rf != nil {
			return rf
		}
		if len(ev.Locations) == 0 {
			return Refuse(ev, InvalidValue, "organisation %s lists no location IDs; an organisation has at least one", ev.Org)
		}
		for _, loc := range ev.Locations {
			if rf := partnerID("location ID", loc); rf != nil {
				return rf
			}
		}
		if ev.Segment == "" {
			ev.Segment = SMB
		}
		return oneOf("segment", ev.Segment, []string{SMB, Enterprise})
	case AccountCreated:
		kinds := []string{AccountUser, AccountGuest, AccountServicePrincipal}
		if !slices.Contains(kinds, ev.Kind) {
			return Refuse(ev, InvalidKind, "account kind %q is not one of %s", ev.Kind, strings.Join(kinds, ", "))
		}
	case EnvironmentCreated, EnvironmentChanged:
		return oneOf("env_type", ev.EnvType, EnvTypes)
	case ResourceCreated:
		return resourceKind(ev.Kind)
	case ResourceActivity:
		return oneOf("action", ev.Action, []string{"edit", "publish", "use"})
	case SolutionImported:
		if len(ev.Resources) == 0 {
			return Refuse(ev, InvalidValue, "the solution lists no resources; list at least one")
		}
		for _, sr := range ev.Resources {
			if rf := resourceKind(sr.Kind); rf != nil {
				return rf
			}
		}
	case PalLinked:
		return partnerID("partner ID", ev.Partner)
	case Profiles:
		return nonNegative("count", ev.Count)
	case PartnerMetrics:
		if rf := partnerID("organisation ID", ev.Org); rf != nil {
			return rf
		}
		if _, err := time.Parse("2006-01", ev.Month); err != nil {
			return Refuse(ev, InvalidValue, "month %q is not YYYY-MM", ev.Month)
		}
		if rf := nonNegative("intermediate_certified", ev.IntermediateCertified); rf != nil {
			return rf
		}
		return nonNegative("advanced_certified", ev.AdvancedCertified)
	case AzureGroupPlaced, AzureSubscriptionPlaced, GroupCreated, GroupMemberAdded, GroupMemberRemoved,
		AzureRoleAssigned, AzureRoleActivated, AzureRoleDeactivated, AzureRoleRemoved, AzureConsumption:
		return ev.checkAzure(oneOf)
	}
	return nil
}

// checkAzure refuses an Azure value out of its range (SPEC.md section 9.2)
// and puts paths, management groups and subscriptions in canonical form.
func (ev *Event) checkAzure(oneOf func(what, v string, allowed []string) *Refusal) *Refusal {
	segment := func(what string, v *string, root bool) *Refusal {
		if *v == "" && root {
			return nil
		}
		if !IsSegment(*v) {
			return Refuse(ev, InvalidValue, "%s %q is not an Azure ID: an ID is one path segment, with no /", what, *v)
		}
		*v = strings.ToLower(*v)
		return nil
	}
	switch ev.Type {
	case AzureGroupPlaced:
		if rf := segment("management group", &ev.Group, false); rf != nil {
			return rf
		}
		if rf := segment("parent management group", &ev.Parent, true); rf != nil {
			return rf
		}
		if ev.Group == ev.Parent {
			return Refuse(ev, InvalidValue, "management group %s cannot be placed under itself; name another parent, or \"\" for the root", ev.Group)
		}
	case AzureSubscriptionPlaced:
		if rf := segment("subscription", &ev.Subscription, false); rf != nil {
			return rf
		}
		return segment("management group", &ev.Group, true)
	case AzureRoleAssigned:
		sc, err := ParseScope(ev.Scope)
		if err != nil {
			return Refuse(ev, InvalidValue, "scope %s", err)
		}
		ev.Scope = sc.Path
		if ev.PIM == "" {
			ev.PIM = PIMActive
		}
		if ev.PrincipalTenant == "" {
			ev.PrincipalTenant = ev.Tenant
		}
		return oneOf("pim", ev.PIM, []string{PIMActive, PIMEligible})
	case AzureRoleActivated:
		if !ev.Until.After(ev.Time) {
			return Refuse(ev, InvalidValue, "until %s is not after the activation's time %s; an activation runs from its time until a later instant", ev.Until.Format(time.RFC3339Nano), ev.Time.Format(time.RFC3339Nano))
		}
	case AzureConsumption:
		sc, err := ParseResourcePath(ev.Resource)
		if err != nil {
			return Refuse(ev, InvalidValue, "resource %s", err)
		}
		ev.Resource = sc.Path
		if !IsDay(ev.Date) {
			return Refuse(ev, InvalidValue, "date %q is not a day; write it as YYYY-MM-DD, such as 2026-01-31", ev.Date)
		}
		if negative(ev.Cost) {
			return Refuse(ev, InvalidValue, "cost %s is negative; a day's cost is 0 or more", ev.Cost)
		}
		if ev.Meter == "" {
			ev.Meter = MeterStandard
		}
		return oneOf("meter", ev.Meter, Meters)
	}
	return nil
}

func kindNames() []string {
	names := make([]string, 0, len(Kinds))
	for k := range Kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// ConsumptionReader makes the azure.consumption events of a consumption
// file, read apart from a log: it checks each record as a log line is
// checked, and remembers the paths and dates it has checked, which a file
// of daily costs repeats on every row.
type ConsumptionReader struct {
	paths map[string]scopeCheck
	dates map[string]bool
}

type scopeCheck struct {
	path string
	err  error
}

// NewConsumptionReader returns a reader with nothing checked yet.
func NewConsumptionReader() *ConsumptionReader {
	return &ConsumptionReader{paths: make(map[string]scopeCheck), dates: make(map[string]bool)}
}

// Event makes the event of a record reported at instant at, or refuses it
// with the code a log line would get. cost is the JSON number as written.
func (cr *ConsumptionReader) Event(line int, at time.Time, tenant, resource, date, cost, meter string) (*Event, *Refusal) {
	ev := &Event{Line: line, Type: AzureConsumption, Time: at, Tenant: tenant, Resource: resource, Date: date, Meter: meter}
	if !isNumber(cost) {
		return nil, Refuse(ev, Malformed, "cost %s is not a number", cost)
	}
	ev.Cost = cost
	for _, f := range schemas[AzureConsumption] {
		if f.required && *ev.str(f.name) == "" {
			return nil, Refuse(ev, MissingField, "field %q is missing; a consumption record has tenant, resource, date and cost", f.name)
		}
	}
	pc, ok := cr.paths[resource]
	if !ok {
		sc, err := ParseResourcePath(resource)
		pc = scopeCheck{sc.Path, err}
		cr.paths[resource] = pc
	}
	valid, ok := cr.dates[date]
	if !ok {
		valid = IsDay(date)
		cr.dates[date] = valid
	}
	if pc.err == nil && valid {
		// Known good: the remaining checks are those of the cost and meter.
		ev.Resource = pc.path
		if negative(ev.Cost) {
			return nil, Refuse(ev, InvalidValue, "cost %s is negative; a day's cost is 0 or more", ev.Cost)
		}
		if ev.Meter == "" {
			ev.Meter = MeterStandard
		}
		if !slices.Contains(Meters, ev.Meter) {
			return nil, Refuse(ev, InvalidValue, "meter %q is not one of %s", ev.Meter, strings.Join(Meters, ", "))
		}
		return ev, nil
	}
	if rf := ev.checkValues(); rf != nil {
		return nil, rf
	}
	return ev, nil
}

// isNumber reports whether s is a JSON number.
func isNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}

// IsDay reports whether s is a real day written YYYY-MM-DD.
func IsDay(s string) bool {
	d, err := time.Parse(time.DateOnly, s)
	return err == nil && d.Format(time.DateOnly) == s
}

// DayNumber returns the days since 1970-01-01 of a date YYYY-MM-DD known
// to be a day (IsDay): how consumption records are kept by day.
func DayNumber(date string) int32 {
	d, _ := time.Parse(time.DateOnly, date)
	return DayOf(d)
}

// DayOf returns the number of the day (as DayNumber numbers it) that holds
// an instant from its midnight, UTC, on.
func DayOf(t time.Time) int32 { return int32(t.Unix() / 86400) }

// DayStart returns the first instant of a day numbered as DayNumber
// numbers it.
func DayStart(day int32) time.Time { return time.Unix(int64(day)*86400, 0).UTC() }

// MeterIndex returns the index in Meters of a consumption record's meter,
// "" being standard, the default; -1 for a name that is no meter.
func MeterIndex(name string) int {
	if name == "" {
		name = MeterStandard
	}
	return slices.Index(Meters, name)
}

// negative reports whether a JSON number is less than zero: "-0", "-0.0"
// and "-0e3" are zero, as JSON's grammar allows writing it.
func negative(number string) bool {
	mantissa, _, _ := strings.Cut(strings.ToLower(number), "e")
	return strings.HasPrefix(mantissa, "-") && strings.ContainsAny(mantissa, "123456789")
}
