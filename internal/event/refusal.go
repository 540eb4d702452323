package event

import "fmt"

// Code is a refusal code of SPEC.md section 3.
type Code string

// The refusal codes, in the order in which a line's problems are reported.
const (
	Malformed           Code = "malformed"
	MissingField        Code = "missing_field"
	UnknownType         Code = "unknown_type"
	InvalidTime         Code = "invalid_time"
	InvalidPartnerID    Code = "invalid_partner_id"
	InvalidKind         Code = "invalid_kind"
	InvalidValue        Code = "invalid_value"
	UnknownPartnerID    Code = "unknown_partner_id"
	GlobalPartnerID     Code = "global_partner_id"
	UnknownTenantObject Code = "unknown_tenant_object"
	AlreadyExists       Code = "already_exists"
	CoownerNotSupported Code = "coowner_not_supported"
	NotCoowner          Code = "not_coowner"
	NoLink              Code = "no_link"
	// Forbidden is used by the service: the caller may not push this line.
	Forbidden Code = "forbidden"
)

// Refusal says why an event was not applied. It is an error so that it can
// travel as one; a refusal never stops the rest of a log.
type Refusal struct {
	Line    int    `json:"line"`
	Type    string `json:"type"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (r *Refusal) Error() string {
	if r.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", r.Line, r.Code, r.Message)
	}
	return fmt.Sprintf("%s: %s", r.Code, r.Message)
}

// Refuse builds the refusal of ev with a formatted message.
func Refuse(ev *Event, code Code, format string, args ...any) *Refusal {
	return &Refusal{Line: ev.Line, Type: ev.Type, Code: code, Message: fmt.Sprintf(format, args...)}
}
