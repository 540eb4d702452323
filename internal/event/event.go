package event

import (
	"encoding/json"
	"time"
)

// The event types of format v1.
const (
	PartnerRegistered   = "partner.registered"
	AccountCreated      = "account.created"
	AccountDisabled     = "account.disabled"
	AccountEnabled      = "account.enabled"
	AccountDeleted      = "account.deleted"
	EnvironmentCreated  = "environment.created"
	EnvironmentChanged  = "environment.changed"
	EnvironmentDeleted  = "environment.deleted"
	ResourceCreated     = "resource.created"
	ResourceOwnerChange = "resource.owner_changed"
	ResourceCoownerAdd  = "resource.coowner_added"
	ResourceCoownerDel  = "resource.coowner_removed"
	ResourceActivity    = "resource.activity"
	ResourceDeleted     = "resource.deleted"
	SolutionImported    = "solution.imported"
	PalLinked           = "pal.linked"
	PalRemoved          = "pal.removed"
	Usage               = "usage"
	Profiles            = "profiles"
	PartnerMetrics      = "partner.metrics"

	// Azure (SPEC.md section 9).
	AzureGroupPlaced        = "azure.group_placed"
	AzureSubscriptionPlaced = "azure.subscription_placed"
	GroupCreated            = "group.created"
	GroupMemberAdded        = "group.member_added"
	GroupMemberRemoved      = "group.member_removed"
	AzureRoleAssigned       = "azure.role_assigned"
	AzureRoleActivated      = "azure.role_activated"
	AzureRoleDeactivated    = "azure.role_deactivated"
	AzureRoleRemoved        = "azure.role_removed"
	AzureConsumption        = "azure.consumption"
)

// Event is one line of the log. Only the fields of its type are set; the
// others are zero. Time is always in UTC.
type Event struct {
	// Line is the 1-based line number in the source the event was read from,
	// or 0 for an event made in memory.
	Line int
	ID   string
	Type string
	Time time.Time
	// Imported marks an event the operator imported into the service from
	// another log, rather than one its subject sent.
	Imported bool

	Tenant      string
	Account     string
	Kind        string
	Name        string
	Environment string
	EnvType     string
	Resource    string
	Owner       string
	Action      string
	Partner     string
	User        string
	Org         string
	Segment     string
	Month       string
	Locations   []string
	Resources   []SolutionResource
	Count       int64

	NetCustomerAdds       int64
	IntermediateCertified int64
	AdvancedCertified     int64

	// Azure. Paths, management groups and subscriptions are canonical
	// (lower case, see ParseScope) once decoded; Cost is the JSON number as
	// written, exact.
	Group           string
	Parent          string
	Subscription    string
	Assignment      string
	Principal       string
	Role            string
	Scope           string
	PIM             string
	PrincipalTenant string
	Until           time.Time
	Date            string
	Cost            string
	Meter           string

	untilText string
}

// PIM states of an Azure role assignment.
const (
	PIMActive   = "active"
	PIMEligible = "eligible"
)

// Meters of Azure consumption.
const (
	MeterStandard    = "standard"
	MeterReservation = "reservation"
	MeterSavingsPlan = "savings_plan"
	MeterSpot        = "spot"
	MeterMarketplace = "marketplace"
)

var meters = [...]string{MeterStandard, MeterReservation, MeterSavingsPlan, MeterSpot, MeterMarketplace}

// Meters lists the meters of azure.consumption.
var Meters = meters[:]

// MeterCount is the number of meters.
const MeterCount = len(meters)

// IsAzure reports whether the event is one of SPEC.md section 9.
func (e *Event) IsAzure() bool {
	switch e.Type {
	case AzureGroupPlaced, AzureSubscriptionPlaced, GroupCreated, GroupMemberAdded, GroupMemberRemoved,
		AzureRoleAssigned, AzureRoleActivated, AzureRoleDeactivated, AzureRoleRemoved, AzureConsumption:
		return true
	}
	return false
}

// SolutionResource is one entry of a solution.imported event.
type SolutionResource struct {
	Resource string `json:"resource"`
	Kind     string `json:"kind"`
	Name     string `json:"name,omitempty"`
}

// UnmarshalJSON reads the names exactly as the format spells them, as
// Decode reads an event's (raw.UnmarshalJSON): any other is ignored.
func (r *SolutionResource) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	for name, dst := range map[string]*string{"resource": &r.Resource, "kind": &r.Kind, "name": &r.Name} {
		if v := m[name]; !isNull(v) {
			if err := json.Unmarshal(v, dst); err != nil {
				return err
			}
		}
	}
	return nil
}

// IsControl reports whether the event changes who is credited (every type but
// usage, profiles, partner.metrics and azure.consumption).
func (e *Event) IsControl() bool {
	switch e.Type {
	case Usage, Profiles, PartnerMetrics, AzureConsumption:
		return false
	}
	return true
}

// Account kinds.
const (
	AccountUser             = "user"
	AccountGuest            = "guest"
	AccountServicePrincipal = "service_principal"
)

// Environment types.
const (
	Production = "production"
	Sandbox    = "sandbox"
	Trial      = "trial"
	Developer  = "developer"
	Default    = "default"
)

// EnvTypes lists the environment types in the order of SPEC.md.
var EnvTypes = []string{Production, Sandbox, Trial, Developer, Default}

// Segments of a partner organisation.
const (
	SMB        = "smb"
	Enterprise = "enterprise"
)

// Workloads, as named in the monthly report.
const (
	PowerApps        = "power_apps"
	PowerAutomate    = "power_automate"
	PowerBI          = "power_bi"
	CopilotStudio    = "copilot_studio"
	PowerPages       = "power_pages"
	CustomerInsights = "customer_insights"
)

// KindSpec is what SPEC.md section 2 says of a resource kind.
type KindSpec struct {
	Workload string
	// CoOwners tells whether co-owners may be added at all.
	CoOwners bool
	// CoOwnersCredited tells whether co-owners are attributable accounts.
	CoOwnersCredited bool
	// ByActivity marks the kinds whose attributable accounts are those with
	// activity on the resource (the owner too only once active). Such a kind
	// is measured in unified profiles, not in monthly active users.
	ByActivity bool
}

// Kinds lists the resource kinds of SPEC.md section 2.
var Kinds = map[string]KindSpec{
	"canvas_app":       {Workload: PowerApps, CoOwners: true, CoOwnersCredited: true},
	"model_driven_app": {Workload: PowerApps},
	"flow":             {Workload: PowerAutomate, CoOwners: true},
	"powerbi_dataset":  {Workload: PowerBI},
	"bot":              {Workload: CopilotStudio},
	"pages_site":       {Workload: PowerPages, CoOwners: true, CoOwnersCredited: true},
	"ci_instance":      {Workload: CustomerInsights, ByActivity: true},
}

// IsPartnerID reports whether s has the form of a partner ID: 6 to 10 ASCII
// digits.
func IsPartnerID(s string) bool {
	if len(s) < 6 || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseRFC3339 reads a time written as RFC 3339 says (section 5.6), and
// nothing else: a four-digit year and two-digit fields, "T" and "Z" in
// either case, a fraction after a dot, and an offset of "Z" or ±hh:mm.
// time.Parse alone would also take a one-digit hour or a comma before the
// fraction. A leap second (":60") is read as the last instant of its
// minute, since time.Time has none.
func ParseRFC3339(s string) (time.Time, bool) {
	b := []byte(s)
	digits := func(i, n int) bool {
		if i+n > len(b) {
			return false
		}
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	if !digits(0, 4) || len(b) < 20 || b[4] != '-' || !digits(5, 2) || b[7] != '-' || !digits(8, 2) ||
		(b[10] != 'T' && b[10] != 't') || !digits(11, 2) || b[13] != ':' || !digits(14, 2) || b[16] != ':' || !digits(17, 2) {
		return time.Time{}, false
	}
	i := 19
	if b[i] == '.' {
		j := i + 1
		for digits(j, 1) {
			j++
		}
		if j == i+1 {
			return time.Time{}, false
		}
		i = j
	}
	switch {
	case i == len(b)-1 && (b[i] == 'Z' || b[i] == 'z'):
		b[i] = 'Z'
	case i == len(b)-6 && (b[i] == '+' || b[i] == '-') && digits(i+1, 2) && b[i+3] == ':' && digits(i+4, 2):
	default:
		return time.Time{}, false
	}
	b[10] = 'T'
	leap := b[17] == '6' && b[18] == '0'
	if leap {
		b[17], b[18] = '5', '9'
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, false
	}
	if leap {
		t = t.Truncate(time.Second).Add(time.Second - 1)
	}
	return t, true
}

// MonthOf returns the calendar month of t in UTC as YYYY-MM.
func MonthOf(t time.Time) string {
	return t.UTC().Format("2006-01")
}

// ParseInstant reads an instant given by a person: RFC 3339 (read in UTC),
// or a date, meaning its first instant in UTC.
func ParseInstant(s string) (time.Time, bool) {
	if t, ok := ParseRFC3339(s); ok {
		return t.UTC(), true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}
