package api

import "github.com/palproject/pal/internal/store"

// Route is one route of the API: its method and path, what it answers, and
// who may call it (no roles: it needs no token). What each caller then sees
// of the answer is the service's rule for that role (internal/server's
// Principal).
type Route struct {
	Method, Path string
	Summary      string
	Roles        []string
}

// ProviderPath and LinkPath are the partner link's routes, as Azure
// Resource Manager serves them (Microsoft.ManagementPartner), so that
// Microsoft's own clients call pal as they call Azure.
const (
	ProviderPath = "/providers/Microsoft.ManagementPartner"
	LinkPath     = ProviderPath + "/partners"
)

// Who may call each route.
var (
	readers     = []string{store.RoleOperator, store.RoleTenantAdmin, store.RolePartnerReader}
	pushers     = []string{store.RoleOperator, store.RoleTenantAdmin, store.RoleAccount}
	accounts    = []string{store.RoleAccount}
	logReaders  = []string{store.RoleOperator, store.RoleTenantAdmin}
	subscribers = []string{store.RolePartnerReader, store.RoleTenantAdmin}
	costPushers = []string{store.RoleOperator, store.RoleTenantAdmin}
	everyone    = []string{store.RoleOperator, store.RoleTenantAdmin, store.RolePartnerReader, store.RoleAccount}
)

// Routes is the API: every route the service serves, in the order
// /openapi.json lists them.
var Routes = []Route{
	{"GET", "/healthz", "Liveness: 200 while the service runs, with status ok, or loading and the records folded so far while it folds its log at start (every other route answers 503 Loading meanwhile).", nil},
	{"GET", "/openapi.json", "This document.", nil},
	{"POST", "/v1/events", "Push a batch of events (NDJSON, log format v1): each line that passes the line checks is stored, and accepted (applied now) or held (refused by the state as of now, applied when what it needs arrives); the others are refused.", pushers},
	{"POST", "/v1/consumption", "Push a consumption file (Parquet, the columns of pal report azure --consumption: tenant, resource, date, cost, meter): each row is checked as a log line is and stored as the azure.consumption event it stands for, reported at the time of the service's state, so that a row replaces the record of its resource, day and meter; the answer is that of a batch of events, refused rows by row number.", costPushers},
	{"GET", "/v1/log", "The log as NDJSON v1: all of it for the operator, its own tenant's events for a tenant administrator.", logReaders},
	{"GET", "/v1/intake", "What comes in: the stored events by the day of their time (the last ?days=, 30 by default), and the events held (stored, refused by the state as it stands) by code.", []string{store.RoleOperator}},
	{"GET", "/v1/refusals", "The stored events the state refuses as it stands, by sequence number after ?after=SEQ, at most ?limit=N a page; next is the after of the next page, null at the end.", logReaders},
	{"GET", "/v1/attribution", "Who is credited for each resource the caller may see, at ?at= (default: now), by tenant then resource, in pages of ?limit= rows (1,000 by default, at most 10,000) after ?after=; next is the after of the next page, null after the last.", readers},
	{"GET", "/v1/explain", "Why a resource is credited, or not: ?tenant=&resource=&at=, with summary, the verdict in words. A partner reader reads of the resources its organisation is, was or could be credited for (one of its accounts a candidate): another partner's account as that partner's ID and organisation, the customer's own as a customer account.", readers},
	{"GET", "/v1/changes", "The feed of credit changes after ?since=SEQ (default 0), at most ?limit=N a page (the operator may narrow it to one ?tenant=): resource, from, to, time, cause, activity_before (whether the gaining account had worked on the resource in the 90 days before), role_only (gained by a role alone), and correction when a late event changed the past; next is the SEQ to ask from next.", readers},
	{"POST", "/v1/webhooks", "Register an https:// URL to which each credit change of the caller's organisation (a partner reader) or tenant (a tenant administrator) is posted, signed with HMAC-SHA256 (X-Pal-Signature); private and loopback destinations are refused.", subscribers},
	{"GET", "/v1/webhooks", "The webhooks of the caller's organisation or tenant.", subscribers},
	{"DELETE", "/v1/webhooks/{id}", "Remove one of the caller's webhooks.", subscribers},
	{"POST", "/v1/webhooks/{id}/secret", "Give one of the caller's webhooks a new secret, shown once.", subscribers},
	{"GET", "/v1/me", "Who the caller is, and the time of the service's state.", everyone},
	{"GET", "/v1/me/credit", "The resources whose credit the calling account carries now, through its link, and outranked: those on which it is an eligible candidate but another partner is credited, that partner by its ID and organisation, with why in words.", accounts},
	{"GET", "/v1/timeline", "A resource's credit as intervals: ?tenant=&resource=; a partner reader's when its organisation was ever credited for it, or one of its accounts is a candidate now or at ?at=, with other partners' accounts as their partner ID.", readers},
	{"GET", "/v1/links", "The accounts of a tenant that hold a link, with the partner ID only (?tenant=); or, for a partner reader (or the operator with ?org=), the accounts linked to the organisation's location IDs in every tenant, with the partner ID, since when, and how many resources each carries.", readers},
	{"GET", "/v1/diagnosis", "Where an organisation's credit is missing: every resource on which one of its linked accounts has a role but it is not credited, why in plain words and what would fix it, and the resources whose credit hangs on one account. ?org= for the operator; a partner reader's own.", []string{store.RoleOperator, store.RolePartnerReader}},
	{"POST", "/v1/whatif", "Apply hypothetical events (NDJSON) of a tenant to a copy of the state: its attribution before and after, and verdicts: for each resource the events name or whose credit they change, who is credited before and after, why in words, and the MAU, profiles and MCV it carried in the present's month. Nothing is written.", logReaders},
	{"GET", "/v1/reports/monthly", "Monthly metrics: ?month=YYYY-MM, the rows of ?limit= tenants a page (1,000 by default, at most 10,000) after the tenant ?after=, the organisations' totals on every page; next is the after of the next page, null after the last.", readers},
	{"GET", "/v1/reports/azure", "Azure recognition of ?month=YYYY-MM: consumed revenue (ACR), PEC-eligible cost and recognised hours by resource, subscription and organisation: all of it for the operator, its tenant for a tenant administrator, its organisation for a partner reader.", readers},
	{"GET", "/v1/tables/{table}", "The tables of the web UI's pages, whole: months (every month of the log, with its MAU, MCV and ACR), workloads (every month of the log by workload: MAU, profiles, MCV), credited, missing, at-risk, links, changes, azure (an organisation's: ?org= for the operator, a partner reader's own), resources, links, changes (a tenant's: ?tenant=, a tenant administrator's own), organisations (the operator's): each as of ?month= (its last instant, or now for the present's month), filtered by ?q=, sorted by ?sort=&order=asc|desc, in pages of ?limit= rows (50 by default, at most 1,000) from ?offset=, with the total; ?format=csv answers every row as CSV.", readers},
	{"GET", "/v1/reports/pcs", "Partner Capability Score: ?month=YYYY-MM&org=ORG.", []string{store.RoleOperator, store.RolePartnerReader}},
	{"GET", ProviderPath + "/operations", "The operations of the Microsoft.ManagementPartner provider, as Azure lists them.", everyone},
	{"GET", LinkPath, "The caller's own partner link.", accounts},
	{"GET", LinkPath + "/{partnerId}", "The caller's own link to this partner ID.", accounts},
	{"PUT", LinkPath + "/{partnerId}", "Link the caller's account to a partner ID.", accounts},
	{"PATCH", LinkPath + "/{partnerId}", "Change the caller's link to this partner ID.", accounts},
	{"DELETE", LinkPath + "/{partnerId}", "Remove the caller's link.", accounts},
}
