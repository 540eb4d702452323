package event

import (
	"bytes"
	"encoding/json"
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
}

func (r *raw) get(name string) json.RawMessage {
	var v json.RawMessage
	switch name {
	case "tenant":
		v = r.Tenant
	case "account":
		v = r.Account
	case "kind":
		v = r.Kind
	case "name":
		v = r.Name
	case "environment":
		v = r.Environment
	case "env_type":
		v = r.EnvType
	case "resource":
		v = r.Resource
	case "owner":
		v = r.Owner
	case "action":
		v = r.Action
	case "partner":
		v = r.Partner
	case "user":
		v = r.User
	case "org":
		v = r.Org
	case "segment":
		v = r.Segment
	case "month":
		v = r.Month
	case "locations":
		v = r.Locations
	case "resources":
		v = r.Resources
	case "count":
		v = r.Count
	case "net_customer_adds":
		v = r.NetCustomerAdds
	case "intermediate_certified":
		v = r.IntermediateCertified
	case "advanced_certified":
		v = r.AdvancedCertified
	default:
		panic("event: no field " + name)
	}
	if isNull(v) {
		return nil
	}
	return v
}

func isNull(v json.RawMessage) bool {
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

var jsonTypeNames = map[fieldKind]string{
	stringField:    "a string",
	stringsField:   "an array of strings",
	intField:       "an integer",
	resourcesField: `an array of {"resource", "kind", "name"} objects`,
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
	if err := json.Unmarshal(data, &r); err != nil {
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
	if !isNull(r.Imported) && json.Unmarshal(r.Imported, &ev.Imported) != nil {
		return refuse(Malformed, `field "imported" must be true or false`)
	}
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
	t, err := time.Parse(time.RFC3339Nano, tim)
	if err != nil {
		return refuse(InvalidTime, "time %q is not RFC 3339 with an offset; write it as 2026-01-31T09:00:00Z or 2026-01-31T10:00:00+01:00", tim)
	}
	ev.Time = t.UTC()
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
		if f.kind == stringField {
			missing = missing || *ev.str(f.name) == ""
		}
		if missing {
			return Refuse(ev, MissingField, "field %q is missing; a %s event needs %s", f.name, ev.Type, strings.Join(names, ", "))
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
