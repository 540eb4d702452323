package attribution

import "strings"

// reasonWords says each reason of section 4 (and of Azure recognition, section 9) in
// words that name nothing of the resource or account it concerns, so that
// any caller may read them. This is the one table of those sentences:
// explain, the Azure explanation, the pages and the command line say a
// reason through Words.
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
