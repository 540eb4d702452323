package api

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/metrics"
)

// The answers of the routes that the command line reads, as the service
// writes them. Where an answer is the engine's own (an AzureReport, a
// Diagnosis, a Score), the route answers that type, and Client's method
// says so.

// AttributionPage is a page of GET /v1/attribution: who is credited for
// each resource the caller may see at At; Next is the after of the next
// page, nil after the last.
type AttributionPage struct {
	At        time.Time         `json:"at"`
	Resources []attribution.Row `json:"resources"`
	Next      *string           `json:"next"`
}

// MonthlyPage is a page of GET /v1/reports/monthly: the rows of some
// tenants, and the organisations' totals over every tenant.
type MonthlyPage struct {
	metrics.Monthly
	Next *string `json:"next"`
}

// ChangesPage is a page of GET /v1/changes: credit changes as filed (each
// a fold.Change), and the sequence number to ask from next.
type ChangesPage struct {
	Changes []json.RawMessage `json:"changes"`
	Next    int64             `json:"next"`
}

// Explanation is GET /v1/explain of a Power Platform resource, with its
// verdict in words as the caller may read it.
type Explanation struct {
	attribution.Explanation
	Summary string `json:"summary"`
}

// AzureExplanation is GET /v1/explain of an Azure resource.
type AzureExplanation struct {
	azure.Explanation
	Summary string `json:"summary"`
}

// Me is GET /v1/me: who the caller is, and the time of the service's
// state.
type Me struct {
	Role    string    `json:"role"`
	Tenant  string    `json:"tenant"`
	Account string    `json:"account"`
	Org     string    `json:"org"`
	OrgName string    `json:"org_name"`
	Now     time.Time `json:"now"`
	// ScoreMax is what each subcategory of the capability score counts
	// for at most, as the service scores (--metrics-config): the pages
	// draw the score on it.
	ScoreMax metrics.Points `json:"score_max"`
}

// WhatIf is POST /v1/whatif: a tenant's attribution before and after
// hypothetical events, the refusals of those that would not apply, and a
// verdict for each resource the events name or whose credit they move.
type WhatIf struct {
	Tenant   string            `json:"tenant"`
	Before   []attribution.Row `json:"before"`
	After    []attribution.Row `json:"after"`
	Refused  []*event.Refusal  `json:"refused"`
	Verdicts []WhatIfVerdict   `json:"verdicts"`
}

// WhatIfVerdict is what a what-if does to one resource: who is credited
// before and after (a partner ID and organisation, or no one and why),
// why after in words, and what the resource carried in Month, the
// present's, which moves with its credit.
type WhatIfVerdict struct {
	Resource string  `json:"resource"`
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	Before   string  `json:"before"`
	After    string  `json:"after"`
	Changes  bool    `json:"changes"`
	Words    string  `json:"words"`
	Month    string  `json:"month"`
	MAU      float64 `json:"mau"`
	Profiles float64 `json:"profiles"`
	MCV      float64 `json:"mcv"`
}

// OrgLinks is GET /v1/links?org=: the accounts linked to an organisation's
// location IDs, in every tenant (or the one asked).
type OrgLinks struct {
	Org   string                `json:"org"`
	Links []attribution.OrgLink `json:"links"`
}

// TenantLinks is GET /v1/links?tenant=: the accounts of a tenant that hold
// a link, with the partner ID only.
type TenantLinks struct {
	Tenant string                    `json:"tenant"`
	Links  []attribution.AccountLink `json:"links"`
}

// CSVText is text for a cell of a CSV file that a spreadsheet opens: one
// that begins with =, +, -, @, a tab or a carriage return is a formula
// there, and is written after a ' that keeps it text. Names in the log
// come from other parties (a customer names its apps), and a download
// must not run them.
func CSVText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
