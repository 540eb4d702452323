package server_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

// tableAnswer is an answer of /v1/tables.
type tableAnswer struct {
	Table   string    `json:"table"`
	Month   string    `json:"month"`
	At      time.Time `json:"at"`
	Current bool      `json:"current"`
	Columns []struct {
		Key, Label, Type string
	} `json:"columns"`
	Total    int                `json:"total"`
	All      int                `json:"all"`
	Offset   int                `json:"offset"`
	Limit    int                `json:"limit"`
	Sort     string             `json:"sort"`
	Order    string             `json:"order"`
	Rows     []map[string]any   `json:"rows"`
	Sums     map[string]float64 `json:"sums"`
	Currency string             `json:"currency"`
	OrgName  string             `json:"org_name"`
}

func (s *service) table(token, path string) tableAnswer {
	s.t.Helper()
	var t tableAnswer
	if status, body := s.call("GET", path, token, ""); status != 200 {
		s.t.Fatalf("GET %s: %d %s", path, status, body)
	} else if err := json.Unmarshal(body, &t); err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	return t
}

// find returns the rows whose column key holds value.
func (t tableAnswer) find(key, value string) []map[string]any {
	var out []map[string]any
	for _, r := range t.Rows {
		if r[key] == value {
			out = append(out, r)
		}
	}
	return out
}

func demoService(t *testing.T, cfg server.Config) (*service, map[string]string) {
	s := start(t, sqliteStore(t), cfg)
	op := s.token(store.RoleOperator, "", "", "")
	if res := s.push(op, demoLog(t)); len(res.Refused) > 0 {
		t.Fatalf("demo: %+v", res)
	}
	return s, map[string]string{
		"operator":  op,
		"fabrikam":  s.token(store.RolePartnerReader, "", "", "1000001"),
		"northwind": s.token(store.RolePartnerReader, "", "", "2000001"),
		"tailspin":  s.token(store.RolePartnerReader, "", "", "3000001"),
		"adatum":    s.token(store.RoleTenantAdmin, "adatum", "", ""),
		"contoso":   s.token(store.RoleTenantAdmin, "contoso", "", ""),
		"alice":     s.token(store.RoleAccount, "contoso", "alice@fabrikam.example", ""),
	}
}

// TestOneTimeFrame holds every table of a page to the month picked: in
// October 2025 Fabrikam had lost onboarding to Tailspin (on the 1st, a
// loss the 30 days to November 1st missed), gina was not yet disabled,
// and each answer says it is as of October's last instant.
func TestOneTimeFrame(t *testing.T) {
	s, tok := demoService(t, server.Config{})
	fab := tok["fabrikam"]
	october := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC).Add(-time.Nanosecond)
	for _, name := range []string{"credited", "missing", "at-risk", "links", "changes", "azure"} {
		got := s.table(fab, "/v1/tables/"+name+"?month=2025-10")
		if !got.At.Equal(october) || got.Current || got.Month != "2025-10" {
			t.Errorf("%s of 2025-10 is as of %s (current %v), want %s", name, got.At, got.Current, october)
		}
		now := s.table(fab, "/v1/tables/"+name+"?month=2026-03")
		if !now.Current || !now.At.Equal(time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC)) {
			t.Errorf("%s of 2026-03 is as of %s (current %v), want now, the last event", name, now.At, now.Current)
		}
	}
	missing := s.table(fab, "/v1/tables/missing?month=2025-10")
	if rows := missing.find("resource", "onboarding"); len(rows) != 1 || rows[0]["other"] != "partner 3000011 (Tailspin Support)" ||
		rows[0]["other_since"] != "2025-10-01T09:00:00Z" || !strings.Contains(rows[0]["why"].(string), "partner 3000011 (Tailspin Support) associated later, on 2025-10-01") {
		t.Errorf("October's missing credit lacks onboarding, lost to Tailspin: %v", missing.Rows)
	}
	if rows := s.table(fab, "/v1/tables/missing?month=2026-03").find("resource", "onboarding"); len(rows) != 0 {
		t.Errorf("March's missing credit lists onboarding, credited to Fabrikam again since February: %v", rows)
	}
	if rows := s.table(fab, "/v1/tables/credited?month=2025-10").find("resource", "onboarding"); len(rows) != 0 {
		t.Errorf("October's credited resources list onboarding: %v", rows)
	}
	if rows := s.table(fab, "/v1/tables/credited?month=2026-03").find("resource", "onboarding"); len(rows) != 1 {
		t.Errorf("March's credited resources lack onboarding")
	}
	// gina was disabled in February 2026: October's links say enabled,
	// March's disabled; October's missing credit does not blame it.
	for month, want := range map[string]string{"2025-10": "enabled", "2026-03": "disabled"} {
		links := s.table(fab, "/v1/tables/links?month="+month)
		if rows := links.find("account", "gina@fabrikam.example"); len(rows) != 1 || rows[0]["status"] != want {
			t.Errorf("gina's link in %s: %v, want %s", month, rows, want)
		}
	}
	if rows := missing.find("reason", "account_disabled"); len(rows) != 0 {
		t.Errorf("October's missing credit blames a disabled account: %v", rows)
	}
	changes := s.table(fab, "/v1/tables/changes?month=2025-10")
	if rows := changes.find("resource", "onboarding"); len(rows) != 1 || rows[0]["change"] != "lost to 3000011 (Tailspin Support)" ||
		rows[0]["time"] != "2025-10-01T09:00:00Z" || rows[0]["cause"] != "co-owner added" {
		t.Errorf("October's changes lack the loss of onboarding on the 1st: %v", changes.Rows)
	}
	if len(s.table(fab, "/v1/tables/changes?month=2025-11").Rows) != 0 {
		t.Errorf("November shows October's change")
	}
	// A month after the log's last event says so; a month before its
	// first is empty, and says as of when.
	status, body := s.call("GET", "/v1/tables/credited?month=2026-05", fab, "")
	if status != 400 || !strings.Contains(string(body), "after the log's last event (2026-03-31T23:00:00Z)") {
		t.Errorf("a month after the log: %d %s", status, body)
	}
	if got := s.table(fab, "/v1/tables/credited?month=2024-06"); got.Total != 0 || got.Current {
		t.Errorf("a month before the log: %+v", got)
	}
	// An empty service has no month; an organisation it does not know has
	// no page.
	empty := start(t, sqliteStore(t), server.Config{})
	op := empty.token(store.RoleOperator, "", "", "")
	if got := empty.table(op, "/v1/tables/months"); got.Total != 0 || len(got.Rows) != 0 {
		t.Errorf("the months of an empty log: %+v", got)
	}
	if status, body := empty.call("GET", "/v1/tables/credited?org=1000001", op, ""); status != 404 || !strings.Contains(string(body), "not registered") {
		t.Errorf("the credited resources of an unknown organisation: %d %s", status, body)
	}
}

// TestMonthsStayWhenNowMoves: the months table lists every month of the
// log, each with whether it has data, so the pages open on the latest
// month with data. A link made live at the wall clock moves the present,
// not the months: the old ones stay, the new ones are empty.
func TestMonthsStayWhenNowMoves(t *testing.T) {
	wall := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	s, tok := demoService(t, server.Config{Clock: func() time.Time { return wall }})
	months := func(token string, q string) []string {
		var out []string
		for _, r := range s.table(token, "/v1/tables/months?limit=1000"+q).Rows {
			mark := ""
			if r["data"] == true {
				mark = "*"
			}
			out = append(out, r["month"].(string)+mark)
		}
		return out
	}
	before := months(tok["fabrikam"], "")
	if len(before) != 15 || before[0] != "2026-03*" || before[14] != "2025-01*" {
		t.Errorf("Fabrikam's months: %v, want 2026-03 to 2025-01, newest first, each with data", before)
	}
	if got := months(tok["tailspin"], ""); got[0] != "2026-03" || !slices.Contains(got, "2026-01*") {
		t.Errorf("Tailspin's months: %v (its last data is in January 2026)", got)
	}
	// alice changes her link from the page: at the wall clock.
	if status, body := s.call("PATCH", "/providers/Microsoft.ManagementPartner/partners/1000012", tok["alice"], ""); status != 200 {
		t.Fatalf("PATCH the link: %d %s", status, body)
	}
	after := months(tok["fabrikam"], "")
	if len(after) != 24 || after[0] != "2026-12" || after[9] != "2026-03*" || after[23] != "2025-01*" {
		t.Errorf("after a link at the wall clock, Fabrikam's months: %v, want 2026-12 to 2025-01, the data still ending in 2026-03", after)
	}
	for _, m := range after[:9] {
		if strings.HasSuffix(m, "*") {
			t.Errorf("month %s after the data has data", m)
		}
	}
	// The present's month is now December, as of the link.
	if got := s.table(tok["fabrikam"], "/v1/tables/links?month=2026-12"); !got.Current || !got.At.Equal(wall) {
		t.Errorf("December's links are as of %s (current %v), want %s", got.At, got.Current, wall)
	}
}

// TestEveryRow: a partner with 1,740 credited resources reads all of
// them, in pages, with the total; sorted and filtered on the server; and
// all of them as CSV. The attribution's first page stops at 1,000.
func TestEveryRow(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	op := s.token(store.RoleOperator, "", "", "")
	s.push(op, attributiontest.ManyApps(1740, 12))
	reader := s.token(store.RolePartnerReader, "", "", "4000001")
	var first struct {
		Resources []attribution.Row `json:"resources"`
		Next      *string           `json:"next"`
	}
	s.json("GET", "/v1/attribution", reader, "", &first)
	if len(first.Resources) != 1000 || first.Next == nil {
		t.Fatalf("the attribution's first page: %d rows, next %v", len(first.Resources), first.Next)
	}
	seen := map[string]bool{}
	for offset := 0; ; offset += 1000 {
		page := s.table(reader, fmt.Sprintf("/v1/tables/credited?month=2026-01&limit=1000&offset=%d", offset))
		if page.Total != 1740 || page.All != 1740 {
			t.Fatalf("the total: %d of %d, want 1740", page.Total, page.All)
		}
		for _, r := range page.Rows {
			seen[r["resource"].(string)] = true
		}
		if offset+len(page.Rows) >= page.Total {
			break
		}
	}
	if len(seen) != 1740 {
		t.Errorf("the pages hold %d distinct resources, want 1740", len(seen))
	}
	// The operator reads the same organisation's, and every tenant's.
	if got := s.table(op, "/v1/tables/credited?month=2026-01&org=4000001&limit=1"); got.Total != 1740 || len(got.Rows) != 1 {
		t.Errorf("the operator's view of the organisation: %d rows of %d", len(got.Rows), got.Total)
	}
	if got := s.table(op, "/v1/tables/resources?month=2026-01"); got.Total != 1752 || len(got.Rows) != 50 {
		t.Errorf("every resource: %d rows of %d, want 50 of 1752", len(got.Rows), got.Total)
	}
	// Sorted on the server, by any column, either way.
	asc := s.table(reader, "/v1/tables/credited?month=2026-01&sort=name&order=asc&limit=2")
	desc := s.table(reader, "/v1/tables/credited?month=2026-01&sort=name&order=desc&limit=2")
	if asc.Rows[0]["name"] != "App 0001" || desc.Rows[0]["name"] != "App 1740" {
		t.Errorf("sorted by name: %v first ascending, %v descending", asc.Rows[0]["name"], desc.Rows[0]["name"])
	}
	byValue := s.table(reader, "/v1/tables/credited?month=2026-01&limit=3")
	if byValue.Sort != "value" || byValue.Order != "desc" || byValue.Rows[0]["mau"].(float64) < byValue.Rows[2]["mau"].(float64) {
		t.Errorf("the default order is by value, the most first: %s %s %v", byValue.Sort, byValue.Order, byValue.Rows)
	}
	// Filtered on the server, the total saying how many match.
	if got := s.table(reader, "/v1/tables/credited?month=2026-01&q=app%2017"); got.Total != 41 || got.All != 1740 {
		t.Errorf("filtered by 'app 17': %d of %d, want 41 (App 1700 to 1740) of 1740", got.Total, got.All)
	}
	// Every row as CSV, the filter and the order kept.
	status, body := s.call("GET", "/v1/tables/credited?month=2026-01&format=csv&sort=name", reader, "")
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if status != 200 || err != nil || len(recs) != 1741 || recs[0][1] != "resource" || recs[1][2] != "App 0001" || recs[1740][2] != "App 1740" {
		t.Errorf("the CSV: %d, %v, %d lines", status, err, len(recs))
	}
	status, body = s.call("GET", "/v1/tables/credited?month=2026-01&format=csv&q=app%20174", reader, "")
	if recs, _ := csv.NewReader(strings.NewReader(string(body))).ReadAll(); status != 200 || len(recs) != 2 {
		t.Errorf("the filtered CSV: %d lines, want the header and App 1740", len(recs))
	}
	for _, q := range []string{"limit=1001", "limit=0", "offset=-1", "order=up", "sort=nothing", "format=xml"} {
		if status, body := s.call("GET", "/v1/tables/credited?month=2026-01&"+q, reader, ""); status != 400 {
			t.Errorf("%s: %d %s, want 400", q, status, body)
		}
	}
}

// TestValueAtStake: missing and at-risk credit carry the MAU, MCV or ACR
// they carried that month, ranked by it; amounts carry their currency.
func TestValueAtStake(t *testing.T) {
	s, tok := demoService(t, server.Config{})
	fab := tok["fabrikam"]
	missing := s.table(fab, "/v1/tables/missing?month=2025-10")
	var order []string
	for _, r := range missing.Rows {
		order = append(order, fmt.Sprintf("%s %v", r["resource"], r["value"]))
	}
	// What Northwind and Tailspin were credited for in October, by the
	// monthly report.
	var rep struct {
		Resources []struct {
			Resource, Org string
			MAU           float64
		}
	}
	s.json("GET", "/v1/reports/monthly?month=2025-10", tok["operator"], "", &rep)
	mau := map[string]float64{}
	for _, r := range rep.Resources {
		if r.Org != "1000001" {
			mau[r.Resource] += r.MAU
		}
	}
	want := []string{fmt.Sprintf("expenses %v", mau["expenses"]*200), fmt.Sprintf("onboarding %v", mau["onboarding"]*200), "pilot-app 0"}
	if !slices.Equal(order, want) || mau["expenses"] == 0 {
		t.Errorf("October's missing credit by value: %v, want %v", order, want)
	}
	// fabrikam-ops alone carries Fabrikam's Azure revenue at fourthcoffee:
	// its ACR at risk is what the Azure report credits Fabrikam there.
	var az struct {
		Orgs []struct {
			Org string
			ACR float64
		}
	}
	s.json("GET", "/v1/reports/azure?month=2026-03", fab, "", &az)
	risk := s.table(fab, "/v1/tables/at-risk?month=2026-03")
	ops := risk.find("account", "fabrikam-ops")
	if len(ops) != 1 || ops[0]["acr"].(float64) <= 0 || ops[0]["acr"].(float64) > az.Orgs[0].ACR || risk.Currency != "USD" {
		t.Errorf("fabrikam-ops at risk: %v, currency %s, Fabrikam's ACR %v", ops, risk.Currency, az.Orgs)
	}
	if risk.Rows[0]["value"].(float64) < risk.Rows[1]["value"].(float64) {
		t.Errorf("credit at risk is not ranked by value: %v", risk.Rows)
	}
	// Kinds in words, names from the log, organisation names beside IDs.
	credited := s.table(fab, "/v1/tables/credited?month=2026-03")
	if rows := credited.find("resource", "inventory"); len(rows) != 1 || rows[0]["kind"] != "model-driven app" || rows[0]["name"] != "Inventory" ||
		rows[0]["org_name"] != "Fabrikam Consulting" || credited.OrgName != "Fabrikam Consulting" {
		t.Errorf("inventory: %v", rows)
	}
	// The currency is configuration.
	eur, tok2 := demoService(t, server.Config{Options: attribution.Options{Policy: attribution.Latest, Counted: []string{"production"},
		Azure: azure.Options{Currency: "EUR"}}})
	if got := eur.table(tok2["fabrikam"], "/v1/tables/azure?month=2026-03"); got.Currency != "EUR" || got.Total != 2 {
		t.Errorf("the Azure table in EUR: %s, %d rows", got.Currency, got.Total)
	}
}

// TestExplainTheLostInterval: a partner reader reads why it lost an
// interval — who won and when, by partner ID and organisation — with its
// own accounts by name, another partner's as that partner's, the
// customer's as a customer account; a partner with nothing to do with a
// resource reads nothing of it.
func TestExplainTheLostInterval(t *testing.T) {
	s, tok := demoService(t, server.Config{})
	var x struct {
		Candidates []attribution.Candidate `json:"candidates"`
		Winner     *attribution.Winner     `json:"winner"`
		Summary    string                  `json:"summary"`
	}
	status, body := s.call("GET", "/v1/explain?tenant=adatum&resource=onboarding&at=2025-12-01", tok["fabrikam"], "")
	if status != 200 {
		t.Fatalf("Fabrikam's explanation of the interval it lost: %d %s", status, body)
	}
	json.Unmarshal(body, &x)
	if !strings.Contains(x.Summary, "Credited to partner 3000011 (Tailspin Support): its account, a co-owner, associated on 2025-10-01.") ||
		!strings.Contains(x.Summary, "Your account frank@fabrikam.example (the owner) associated on 2025-04-01, earlier than the credited account") {
		t.Errorf("the summary: %q", x.Summary)
	}
	if x.Winner == nil || x.Winner.Account != "an account of partner 3000011 (Tailspin Support)" || x.Winner.Partner != "3000011" ||
		len(x.Candidates) != 2 || x.Candidates[0].Account != "frank@fabrikam.example" || strings.Contains(string(body), "hana") {
		t.Errorf("the explanation: %s", body)
	}
	// The customer's own co-owner of expenses, and Northwind's.
	s.json("GET", "/v1/explain?tenant=contoso&resource=expenses&at=2025-12-01", tok["fabrikam"], "", &x)
	var accounts []string
	for _, c := range x.Candidates {
		accounts = append(accounts, c.Account)
	}
	if want := []string{"alice@fabrikam.example", "an account of partner 2000011 (Northwind Partners)", "a customer account"}; !slices.Equal(accounts, want) {
		t.Errorf("expenses' candidates as Fabrikam sees them: %v, want %v", accounts, want)
	}
	// Northwind was never credited for onboarding and has no account on
	// it; the tenant's administrator reads it all.
	if status, _ := s.call("GET", "/v1/explain?tenant=adatum&resource=onboarding&at=2025-12-01", tok["northwind"], ""); status != 403 {
		t.Errorf("Northwind's explanation of onboarding: %d, want 403", status)
	}
	s.json("GET", "/v1/explain?tenant=adatum&resource=onboarding&at=2025-12-01", tok["adatum"], "", &x)
	if x.Winner == nil || x.Winner.Account != "hana@tailspin.example" || !strings.Contains(x.Summary, "through hana@tailspin.example") {
		t.Errorf("adatum's administrator's explanation: %+v", x)
	}
	// The feed of changes names no other partner's account to a reader.
	var feed struct {
		Changes []attribution.Change `json:"changes"`
	}
	s.json("GET", "/v1/changes", tok["fabrikam"], "", &feed)
	lost := false
	for _, c := range feed.Changes {
		if c.Resource == "onboarding" && c.To.Partner == "3000011" {
			lost = c.To.Account == "an account of partner 3000011 (Tailspin Support)" && c.From.Account == "frank@fabrikam.example"
		}
	}
	if !lost {
		t.Errorf("Fabrikam's feed: the loss of onboarding to Tailspin, its account unnamed, is missing: %+v", feed.Changes)
	}
}

// TestNoNameItShouldNotSee posts every role's token to every route that
// reads, and reads every table, with hostile combinations of tenant,
// resource, organisation, instant and month: no answer names an account a
// partner reader may not see (another partner's, the customer's own), or
// one of another tenant to a tenant's administrator or an account.
func TestNoNameItShouldNotSee(t *testing.T) {
	s, tok := demoService(t, server.Config{})
	op := tok["operator"]
	// Every account of the demo: its tenant, its display name, and the
	// organisations it ever linked.
	type acct struct {
		tenant, name string
		orgs         []string
	}
	accounts := map[string]acct{}
	_, logBody := s.call("GET", "/v1/log", op, "")
	orgOf := map[string]string{"1000011": "1000001", "1000012": "1000001", "2000011": "2000001", "3000011": "3000001"}
	for line := range strings.Lines(string(logBody)) {
		var ev struct{ Type, Tenant, Account, Name, Partner string }
		json.Unmarshal([]byte(line), &ev)
		switch ev.Type {
		case "account.created":
			accounts[ev.Account] = acct{tenant: ev.Tenant, name: ev.Name}
		case "pal.linked":
			a := accounts[ev.Account]
			a.orgs = append(a.orgs, orgOf[ev.Partner])
			accounts[ev.Account] = a
		}
	}
	if len(accounts) != 13 {
		t.Fatalf("the demo's accounts: %d, want 13", len(accounts))
	}
	// Its groups and role assignments, whose IDs name their principals:
	// each seen by the organisations of the accounts that act through it.
	for line := range strings.Lines(string(logBody)) {
		var ev struct{ Type, Tenant, Group, Name, Account, Assignment, Principal string }
		json.Unmarshal([]byte(line), &ev)
		switch ev.Type {
		case "group.created":
			accounts[ev.Group] = acct{tenant: ev.Tenant, name: ev.Name}
		case "group.member_added":
			g := accounts[ev.Group]
			g.orgs = append(g.orgs, accounts[ev.Account].orgs...)
			accounts[ev.Group] = g
		case "azure.role_assigned":
			accounts[ev.Assignment] = acct{tenant: ev.Tenant, orgs: accounts[ev.Principal].orgs}
		}
	}
	// The resources, the instants and the months asked of.
	var attr struct{ Resources []attribution.Row }
	s.json("GET", "/v1/attribution?at=2026-01-01", op, "", &attr)
	var now struct{ Resources []attribution.Row }
	s.json("GET", "/v1/attribution", op, "", &now)
	resources := map[[2]string]bool{}
	for _, r := range append(attr.Resources, now.Resources...) {
		resources[[2]string{r.Tenant, r.Resource}] = true
	}
	instants := []string{"", "2025-06-30", "2025-10-15T12:00:00Z", "2026-02-10T10:00:00Z", "2026-03-31T23:00:00Z"}
	var paths []string
	for k := range resources {
		for _, at := range instants {
			q := url.Values{"tenant": {k[0]}, "resource": {k[1]}}
			if at != "" {
				q.Set("at", at)
			}
			for _, route := range []string{"/v1/explain", "/v1/timeline"} {
				paths = append(paths, route+"?"+q.Encode())
			}
		}
	}
	tenants := []string{"adatum", "contoso", "litware", "woodgrove", "fourthcoffee", "fabrikam-hq", "nowhere"}
	orgs := []string{"", "1000001", "2000001", "3000001", "9999999"}
	for _, tenant := range append(tenants, "") {
		for _, org := range orgs {
			q := url.Values{}
			if tenant != "" {
				q.Set("tenant", tenant)
			}
			if org != "" {
				q.Set("org", org)
			}
			for _, route := range []string{"/v1/attribution", "/v1/links", "/v1/diagnosis", "/v1/changes", "/v1/me", "/v1/me/credit",
				"/v1/log", "/v1/refusals", "/v1/intake", "/v1/webhooks", "/providers/Microsoft.ManagementPartner/partners"} {
				paths = append(paths, route+"?"+q.Encode())
			}
			for _, month := range []string{"2025-06", "2025-10", "2026-02", "2026-03"} {
				q := url.Values{"month": {month}}
				for k, v := range map[string]string{"tenant": tenant, "org": org} {
					if v != "" {
						q.Set(k, v)
					}
				}
				for _, route := range []string{"/v1/reports/monthly", "/v1/reports/azure", "/v1/reports/pcs"} {
					paths = append(paths, route+"?"+q.Encode())
				}
				for _, table := range []string{"months", "credited", "missing", "at-risk", "links", "changes", "azure", "resources", "organisations", "workloads"} {
					paths = append(paths, "/v1/tables/"+table+"?"+q.Encode(), "/v1/tables/"+table+"?format=csv&"+q.Encode())
				}
			}
		}
	}
	// Every route that reads, as the service lists them, is asked.
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	s.json("GET", "/openapi.json", "", "", &doc)
	for path, methods := range doc.Paths {
		if _, ok := methods["get"]; !ok || strings.Contains(path, "{") {
			continue
		}
		if !slices.ContainsFunc(paths, func(p string) bool { return strings.HasPrefix(p, path+"?") }) {
			paths = append(paths, path+"?")
		}
	}
	callers := map[string]func(a acct, id string) bool{
		// A partner reader sees the accounts its organisation ever linked.
		"fabrikam":  func(a acct, _ string) bool { return slices.Contains(a.orgs, "1000001") },
		"northwind": func(a acct, _ string) bool { return slices.Contains(a.orgs, "2000001") },
		"tailspin":  func(a acct, _ string) bool { return slices.Contains(a.orgs, "3000001") },
		// A tenant's administrator its tenant's.
		"adatum":  func(a acct, _ string) bool { return a.tenant == "adatum" },
		"contoso": func(a acct, _ string) bool { return a.tenant == "contoso" },
		// An account itself.
		"alice": func(_ acct, id string) bool { return id == "alice@fabrikam.example" },
	}
	asked := 0
	for who, sees := range callers {
		for _, path := range paths {
			status, body := s.call("GET", path, tok[who], "")
			asked++
			if status >= 500 {
				t.Errorf("GET %s as %s: %d %s", path, who, status, body)
			}
			for id, a := range accounts {
				if sees(a, id) {
					continue
				}
				for _, name := range []string{id, a.name} {
					if name != "" && strings.Contains(string(body), name) && !strings.Contains(path, url.QueryEscape(name)) {
						t.Errorf("GET %s as %s names %q: %s", path, who, name, body)
					}
				}
			}
		}
		// The what-if posts an account's name: refused to those who may
		// not read the tenant (a tenant administrator naming another), and
		// answered without other tenants'.
		status, body := s.call("POST", "/v1/whatif?tenant=adatum", tok[who],
			`{"type":"resource.coowner_added","time":"2026-04-02T00:00:00Z","tenant":"adatum","resource":"onboarding","account":"hana@tailspin.example"}`)
		switch {
		case who == "adatum" && status != 200, who != "adatum" && status != 403:
			t.Errorf("POST /v1/whatif?tenant=adatum as %s: %d %s", who, status, body)
		}
	}
	t.Logf("%d requests", asked)
}

// TestWhoReadsWhichTable: each role reads the tables of its own scope only.
func TestWhoReadsWhichTable(t *testing.T) {
	s, tok := demoService(t, server.Config{})
	tests := []struct {
		who, path string
		want      int
	}{
		{"fabrikam", "/v1/tables/credited", 200},
		{"fabrikam", "/v1/tables/credited?org=1000001", 200},
		{"fabrikam", "/v1/tables/credited?org=2000001", 403},
		{"fabrikam", "/v1/tables/links?tenant=adatum", 400},
		{"fabrikam", "/v1/tables/resources", 403},
		{"fabrikam", "/v1/tables/organisations", 403},
		{"fabrikam", "/v1/tables/nothing", 404},
		{"adatum", "/v1/tables/resources", 200},
		{"adatum", "/v1/tables/links", 200},
		{"adatum", "/v1/tables/resources?tenant=contoso", 403},
		{"adatum", "/v1/tables/credited", 403},
		{"adatum", "/v1/tables/missing?org=1000001", 400},
		{"alice", "/v1/tables/months", 403},
		{"", "/v1/tables/months", 401},
		{"operator", "/v1/tables/resources", 200},
		{"operator", "/v1/tables/missing", 400},
		{"operator", "/v1/tables/missing?org=1000001", 200},
		{"operator", "/v1/tables/links?tenant=adatum", 200},
		{"operator", "/v1/tables/organisations", 200},
		{"operator", "/v1/tables/credited?org=1000001&tenant=adatum", 400},
	}
	for _, tt := range tests {
		if status, body := s.call("GET", tt.path, tok[tt.who], ""); status != tt.want {
			t.Errorf("GET %s as %q: %d, want %d (%s)", tt.path, tt.who, status, tt.want, body)
		}
	}
	// The tenant administrator's resources are its tenant's.
	got := s.table(tok["adatum"], "/v1/tables/resources?month=2026-03")
	for _, r := range got.Rows {
		if r["tenant"] != "adatum" {
			t.Errorf("adatum's administrator reads %v", r)
		}
	}
	if got.Total != 2 {
		t.Errorf("adatum's resources: %d, want 2", got.Total)
	}
}

// TestWorkloadsAddUpToMonths: the workloads table splits each month of the
// months table by workload, for every scope, in words.
func TestWorkloadsAddUpToMonths(t *testing.T) {
	s, tok := demoService(t, server.Config{})
	for _, tt := range []struct{ who, scope string }{{"fabrikam", ""}, {"operator", "org=2000001&"}, {"adatum", ""}, {"operator", ""}} {
		months := s.table(tok[tt.who], "/v1/tables/months?"+tt.scope+"limit=1000")
		workloads := s.table(tok[tt.who], "/v1/tables/workloads?"+tt.scope+"limit=1000")
		if len(workloads.Rows) == 0 || workloads.Rows[0]["month"] != months.Rows[0]["month"] {
			t.Errorf("%s %s: the workloads table does not start with the latest month: %v", tt.who, tt.scope, workloads.Rows)
			continue
		}
		sum := map[string][3]float64{}
		for _, r := range workloads.Rows {
			if r["label"] == r["workload"] || r["label"] == "" {
				t.Errorf("%s %s: workload %v is not in words", tt.who, tt.scope, r["workload"])
			}
			m := sum[r["month"].(string)]
			m[0], m[1], m[2] = m[0]+r["mau"].(float64), m[1]+r["profiles"].(float64), m[2]+r["mcv"].(float64)
			sum[r["month"].(string)] = m
		}
		data := 0
		for _, m := range months.Rows {
			got, want := sum[m["month"].(string)], [3]float64{m["mau"].(float64), m["profiles"].(float64), m["mcv"].(float64)}
			for i := range got {
				if math.Abs(got[i]-want[i]) > 0.01 {
					t.Errorf("%s %s %s: the workloads add up to %v, the month is %v", tt.who, tt.scope, m["month"], got, want)
					break
				}
			}
			if want[2] > 0 {
				data++
			}
		}
		if data == 0 {
			t.Errorf("%s %s: no month with MCV", tt.who, tt.scope)
		}
	}
}

// TestWhatIfVerdict: a what-if says, for the resource its event names, who
// is credited before and after, why in words, and what moves with it.
func TestWhatIfVerdict(t *testing.T) {
	s, tok := demoService(t, server.Config{})
	var res struct {
		Verdicts []struct {
			Resource, Name, Kind, Before, After, Words, Month string
			Changes                                           bool
			MAU, MCV                                          float64
		}
	}
	body := `{"type":"resource.owner_changed","time":"2026-04-02T00:00:00Z","tenant":"adatum","resource":"onboarding","owner":"hana@tailspin.example"}`
	if status := s.json("POST", "/v1/whatif?tenant=adatum", tok["adatum"], body, &res); status != 200 || len(res.Verdicts) == 0 {
		t.Fatalf("POST /v1/whatif: %d %+v", status, res)
	}
	v := res.Verdicts[0]
	if v.Resource != "onboarding" || v.Name != "Onboarding" || v.Kind != "canvas app" || !v.Changes ||
		v.Before != "partner 1000012 (Fabrikam Consulting)" || v.After != "partner 3000011 (Tailspin Support)" || v.Month != "2026-03" {
		t.Errorf("the verdict: %+v", v)
	}
	if !strings.Contains(v.Words, "Credited to partner 3000011 (Tailspin Support), through hana@tailspin.example: its account, the owner, associated on 2026-04-02") {
		t.Errorf("the verdict's reason: %q", v.Words)
	}
	// What moves is what onboarding carried in March 2026.
	credited := s.table(tok["fabrikam"], "/v1/tables/credited?month=2026-03&q=onboarding")
	if len(credited.Rows) != 1 || v.MAU == 0 || v.MAU != credited.Rows[0]["mau"] || v.MCV != credited.Rows[0]["mcv"] {
		t.Errorf("what moves: MAU %v MCV %v; onboarding carried %v", v.MAU, v.MCV, credited.Rows)
	}
	// An event that changes nothing still has its verdict, saying so.
	body = `{"type":"resource.activity","time":"2026-04-02T00:00:00Z","tenant":"adatum","resource":"onboarding","account":"frank@fabrikam.example","action":"edit"}`
	if status := s.json("POST", "/v1/whatif?tenant=adatum", tok["adatum"], body, &res); status != 200 || len(res.Verdicts) != 1 {
		t.Fatalf("POST /v1/whatif: %d %+v", status, res)
	}
	if v := res.Verdicts[0]; v.Changes || v.Before != v.After || !strings.Contains(v.Words, "frank@fabrikam.example") {
		t.Errorf("a what-if that changes nothing: %+v", v)
	}
}

// TestOutrankedLink: an account reads where another partner outranks its
// link, that partner by ID and organisation only.
func TestOutrankedLink(t *testing.T) {
	s, tok := demoService(t, server.Config{})
	var credit struct {
		Outranked []struct {
			Resource, Name, Kind, Role, Partner, Words string
			OrgName                                    string `json:"org_name"`
		}
	}
	status, body := s.call("GET", "/v1/me/credit", tok["alice"], "")
	if status != 200 {
		t.Fatalf("GET /v1/me/credit: %d %s", status, body)
	}
	json.Unmarshal(body, &credit)
	if len(credit.Outranked) != 1 {
		t.Fatalf("alice is outranked on %+v, want expenses", credit.Outranked)
	}
	o := credit.Outranked[0]
	if o.Resource != "expenses" || o.Name != "Expenses" || o.Role != "the owner" || o.Partner != "2000011" || o.OrgName != "Northwind Partners" ||
		o.Words != "Partner 2000011 (Northwind Partners) is credited: its account associated on 2025-06-10, later than yours (the owner, on 2025-01-06). The latest association wins: an edit or publish of yours renews it." {
		t.Errorf("alice outranked: %+v", o)
	}
	if strings.Contains(string(body), "bob") {
		t.Errorf("alice reads of Northwind's account: %s", body)
	}
	// Once bob's link is removed, nothing outranks her.
	s.push(tok["operator"], `{"type":"pal.removed","time":"2026-03-31T22:00:00Z","tenant":"contoso","account":"bob@northwind.example"}`)
	s.json("GET", "/v1/me/credit", tok["alice"], "", &credit)
	if len(credit.Outranked) != 0 {
		t.Errorf("after bob's link is removed, alice is outranked on %+v", credit.Outranked)
	}
}

// TestMyAzureCredit: an account reads the Azure resources its link
// carries, in its own tenant and in those that delegate to it through
// Azure Lighthouse, as the links table counts them, each row naming it.
func TestMyAzureCredit(t *testing.T) {
	s, tok := demoService(t, server.Config{})
	var links struct {
		Rows []struct {
			Tenant, Account string
			Resources       int
		}
	}
	s.json("GET", "/v1/tables/links?limit=1000", tok["fabrikam"], "", &links)
	checked := 0
	for _, l := range links.Rows {
		if l.Tenant != "fourthcoffee" && l.Tenant != "fabrikam-hq" {
			continue
		}
		var credit struct {
			Resources []struct{ Tenant, Resource, Kind, Partner, Account string }
		}
		s.json("GET", "/v1/me/credit", s.token(store.RoleAccount, l.Tenant, l.Account, ""), "", &credit)
		azure := 0
		for _, r := range credit.Resources {
			if r.Kind == "azure_resource" {
				azure++
				if r.Account != l.Account || r.Partner == "" {
					t.Errorf("%s's credit: %+v, want the row to name the account", l.Account, r)
				}
			}
		}
		if azure != l.Resources || azure == 0 {
			t.Errorf("%s/%s reads %d Azure resources its link carries (%+v); the links table counts %d", l.Tenant, l.Account, azure, credit.Resources, l.Resources)
		}
		checked++
	}
	if checked < 2 {
		t.Errorf("the demo's links table lists %d Azure accounts of Fabrikam (%+v), want kim and fabrikam-ops", checked, links.Rows)
	}
}

// TestResourcesCarryTheirOwnFigures: the resources table says what each
// resource carried in the month, each user once whoever was credited, and
// on Azure what its customer paid: a user seen under two partners in the
// month is one user of the app, and a virtual machine that two partners
// are recognised for under --azure-policy all cost what it cost, once. The
// partners' own tables say their share.
func TestResourcesCarryTheirOwnFigures(t *testing.T) {
	opts := attribution.DefaultOptions()
	opts.Azure.Policy = azure.All
	s := start(t, sqliteStore(t), server.Config{Options: opts})
	operator := s.token(store.RoleOperator, "", "", "")
	vm := "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
	res := s.push(operator, `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"200001","name":"Northwind","locations":["200011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"c","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"c","account":"alice","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"c","account":"bob","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"c","account":"alice","partner":"100011"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"c","account":"bob","partner":"200011"}
{"type":"resource.created","time":"2026-01-02T00:00:00Z","tenant":"c","environment":"prod","resource":"app","kind":"canvas_app","owner":"alice"}
{"type":"usage","time":"2026-01-03T00:00:00Z","tenant":"c","resource":"app","user":"u1"}
{"type":"usage","time":"2026-01-04T00:00:00Z","tenant":"c","resource":"app","user":"u2"}
{"type":"resource.coowner_added","time":"2026-01-10T00:00:00Z","tenant":"c","resource":"app","account":"bob"}
{"type":"usage","time":"2026-01-12T00:00:00Z","tenant":"c","resource":"app","user":"u1"}
{"type":"azure.role_assigned","time":"2026-01-01T00:00:00Z","tenant":"c","assignment":"a1","principal":"alice","role":"Contributor","scope":"/subscriptions/s1"}
{"type":"azure.role_assigned","time":"2026-01-01T00:00:00Z","tenant":"c","assignment":"a2","principal":"bob","role":"Contributor","scope":"/subscriptions/s1"}
{"type":"azure.consumption","time":"2026-01-06T00:00:00Z","tenant":"c","resource":"`+vm+`","date":"2026-01-05","cost":10}`)
	if res.Accepted != 15 {
		t.Fatalf("push: %+v", res)
	}
	type figures struct {
		Rows []struct {
			Resource string
			MAU, ACR float64
		}
	}
	read := func(token, query string) map[string][2]float64 {
		var tb figures
		if status := s.json("GET", "/v1/tables/"+query, token, "", &tb); status != http.StatusOK {
			t.Fatalf("%s: %d", query, status)
		}
		out := map[string][2]float64{}
		for _, r := range tb.Rows {
			out[r.Resource] = [2]float64{r.MAU, r.ACR}
		}
		return out
	}
	vm = strings.ToLower(vm) // as the log keeps a resource's path
	if got, want := read(operator, "resources?month=2026-01"), map[string][2]float64{"app": {2, 0}, vm: {0, 10}}; !maps.Equal(got, want) {
		t.Errorf("the resources of January: %v, want %v: u1 once, the machine's cost once", got, want)
	}
	for org, want := range map[string]map[string][2]float64{"100001": {vm: {0, 10}}, "200001": {"app": {1, 0}, vm: {0, 10}}} {
		if got := read(operator, "credited?month=2026-01&org="+org); !maps.Equal(got, want) {
			t.Errorf("%s's credited resources: %v, want %v", org, got, want)
		}
	}
}
