package credit

import "strings"

// Share is one location's part of a resource's credit: under policy split,
// or on Azure under every policy.
type Share struct {
	Partner string  `json:"partner"`
	Org     string  `json:"org"`
	Share   float64 `json:"share"`
}

// Reasons why a resource is unattributed or a candidate is not eligible
// (section 4).
const (
	EnvironmentNotCounted = "environment_not_counted"
	NoEligibleAccount     = "no_eligible_account"
	AccountDisabled       = "account_disabled"
	NoLink                = "no_link"
	PartnerIDNotEligible  = "partner_id_not_eligible"
	ResourceNotFound      = "resource_not_found"
	ResourceDeleted       = "resource_deleted"
)

// Why an organisation is not credited for a resource on which one of its
// linked accounts has a role (a diagnosis).
const (
	LaterPartner     = "another_partner_later"
	EarlierPartner   = "another_partner_earlier"
	NotProduction    = EnvironmentNotCounted
	Disabled         = AccountDisabled
	DroppedLocation  = "location_dropped"
	RoleEarnsNothing = "role_earns_nothing"
	NoActivityYet    = "no_activity_yet"
	// NotActivated is an account acting through an eligible (PIM)
	// assignment that is not activated at the instant.
	NotActivated = "not_activated"
)

// reasonWords says each reason in words that name nothing of the resource
// or account it concerns, so that any caller may read them. This is the
// one table of those sentences: explain, the Azure explanation, the pages
// and the command line say a reason through Words.
var reasonWords = map[string]string{
	AccountDisabled:       "the account is disabled, so its link does not count",
	NoLink:                "the account holds no partner link in its tenant",
	PartnerIDNotEligible:  "the linked ID is not a location ID of a registered organisation",
	EnvironmentNotCounted: "its environment is not counted",
	NoEligibleAccount:     "none of its accounts holds an eligible link",
	ResourceNotFound:      "it does not exist",
	ResourceDeleted:       "it was deleted",
	RoleEarnsNothing:      "the role cannot change anything: it earns no recognition",
	NotActivated:          "eligible assignment, not activated at this instant: only active time counts",
}

// Words says a reason in words; a code it does not know, with its
// underscores as spaces.
func Words(reason string) string {
	if w, ok := reasonWords[reason]; ok {
		return w
	}
	return strings.ReplaceAll(reason, "_", " ")
}
