package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/demo"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/storetest"
)

// forEachBackend runs the test on SQLite, and on PostgreSQL when
// PAL_TEST_POSTGRES_URL is set.
func forEachBackend(t *testing.T, fn func(t *testing.T, open func(t *testing.T) store.Store)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.Fresh(t)) })
	}
}

// sqliteStore opens a fresh SQLite store.
func sqliteStore(t *testing.T) store.Store { return storetest.Backends()[0].Fresh(t)(t) }

type service struct {
	t     *testing.T
	url   string
	srv   *server.Server
	store store.Store
}

func start(t *testing.T, st store.Store, cfg server.Config) *service {
	t.Helper()
	cfg.Store = st
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &service{t: t, url: hs.URL, srv: srv, store: st}
}

func (s *service) token(role, tenant, account, org string) string {
	s.t.Helper()
	tok, _, err := server.IssueToken(context.Background(), s.store, store.Token{Role: role, Tenant: tenant, Account: account, Org: org})
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// call sends a request and returns the status and the body.
func (s *service) call(method, path, token string, body string) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (s *service) json(method, path, token, body string, out any) int {
	s.t.Helper()
	status, data := s.call(method, path, token, body)
	if out != nil && status == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return status
}

func demoLog(t testing.TB) string {
	var buf bytes.Buffer
	if err := demo.Write(&buf, 1); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

type ingest struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Refused    []struct {
		Line    int    `json:"line"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"refused"`
	Held []struct {
		Code string `json:"code"`
	} `json:"held"`
}

func (s *service) push(token, log string) ingest {
	s.t.Helper()
	var res ingest
	if status := s.json("POST", "/v1/events", token, log, &res); status != http.StatusOK {
		_, body := s.call("POST", "/v1/events", token, log)
		s.t.Fatalf("POST /v1/events: %d %s", status, body)
	}
	return res
}

func TestWhoMayDoWhat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		s := start(t, open(t), server.Config{})
		operator := s.token(store.RoleOperator, "", "", "")
		if res := s.push(operator, demoLog(t)); res.Accepted < 9000 || len(res.Refused) > 0 {
			t.Fatalf("demo push: %+v", res)
		}
		tokens := map[string]string{
			"none":             "",
			"bad":              "pal_not-a-token",
			"jwt-no-issuer":    "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
			"account":          s.token(store.RoleAccount, "contoso", "alice@fabrikam.example", ""),
			"admin-contoso":    s.token(store.RoleTenantAdmin, "contoso", "", ""),
			"admin-litware":    s.token(store.RoleTenantAdmin, "litware", "", ""),
			"reader-fabrikam":  s.token(store.RolePartnerReader, "", "", "1000001"),
			"reader-northwind": s.token(store.RolePartnerReader, "", "", "2000001"),
			"operator":         operator,
		}
		usage := `{"type":"usage","time":"2026-03-30T10:00:00Z","tenant":"contoso","resource":"expenses","user":"someone"}`
		link := "/providers/Microsoft.ManagementPartner/partners"
		whatif := `{"type":"resource.coowner_removed","time":"2026-04-01T00:00:00Z","tenant":"contoso","resource":"expenses","account":"bob@northwind.example"}`
		// Every route, as every caller: no token, a bad one, a JWT with no
		// issuer configured, and each role.
		type row struct{ none, account, adminContoso, adminLitware, readerFabrikam, readerNorthwind, operator int }
		tests := []struct {
			method, path, body string
			want               row
		}{
			{"GET", "/healthz", "", row{200, 200, 200, 200, 200, 200, 200}},
			{"GET", "/openapi.json", "", row{200, 200, 200, 200, 200, 200, 200}},
			{"GET", "/v1/attribution", "", row{401, 403, 200, 200, 200, 200, 200}},
			{"GET", "/v1/attribution?at=2025-07-01", "", row{401, 403, 200, 200, 200, 200, 200}},
			{"GET", "/v1/explain?tenant=contoso&resource=contoso-ci", "", row{401, 403, 200, 403, 200, 403, 200}},
			{"GET", "/v1/reports/monthly?month=2026-03", "", row{401, 403, 200, 200, 200, 200, 200}},
			{"GET", "/v1/reports/pcs?month=2026-03&org=1000001", "", row{401, 403, 403, 403, 200, 403, 200}},
			{"GET", "/v1/log", "", row{401, 403, 200, 200, 403, 403, 200}},
			{"POST", "/v1/events", usage, row{401, 200, 200, 200, 403, 403, 200}},
			{"GET", link, "", row{401, 200, 403, 403, 403, 403, 403}},
			{"GET", link + "/1000011?api-version=2018-02-01", "", row{401, 200, 403, 403, 403, 403, 403}},
			{"PUT", link + "/1000011", "", row{401, 409, 403, 403, 403, 403, 403}},
			{"PATCH", link + "/1000011", "", row{401, 200, 403, 403, 403, 403, 403}},
			{"DELETE", link + "/2000011", "", row{401, 404, 403, 403, 403, 403, 403}},
			{"GET", "/v1/me", "", row{401, 200, 200, 200, 200, 200, 200}},
			{"GET", "/v1/timeline?tenant=contoso&resource=expenses", "", row{401, 403, 200, 403, 200, 200, 200}},
			{"GET", "/v1/timeline?tenant=adatum&resource=onboarding", "", row{401, 403, 403, 403, 200, 403, 200}},
			{"GET", "/v1/links?tenant=contoso", "", row{401, 403, 200, 403, 200, 200, 200}},
			{"GET", "/v1/links?org=2000001", "", row{401, 403, 400, 400, 403, 200, 200}},
			{"POST", "/v1/whatif?tenant=contoso", whatif, row{401, 403, 200, 403, 403, 403, 200}},
			{"GET", "/v1/changes", "", row{401, 403, 200, 200, 200, 200, 200}},
			{"GET", "/v1/changes?tenant=contoso", "", row{401, 403, 200, 403, 200, 200, 200}},
		}
		for _, tt := range tests {
			w := tt.want
			for who, want := range map[string]int{"none": w.none, "bad": w.none, "jwt-no-issuer": w.none, "account": w.account,
				"admin-contoso": w.adminContoso, "admin-litware": w.adminLitware, "reader-fabrikam": w.readerFabrikam,
				"reader-northwind": w.readerNorthwind, "operator": w.operator} {
				token := tokens[who]
				status, body := s.call(tt.method, tt.path, token, tt.body)
				if status != want {
					t.Errorf("%s %s as %s: %d, want %d (%s)", tt.method, tt.path, who, status, want, body)
				}
				if status >= 400 {
					var e struct {
						Error struct{ Code, Message string } `json:"error"`
					}
					if json.Unmarshal(body, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
						t.Errorf("%s %s as %s: error body %s is not {\"error\": {\"code\", \"message\"}}", tt.method, tt.path, who, body)
					}
				}
			}
		}
		// The account's POST above pushed a usage line it may not push.
		var res ingest
		s.json("POST", "/v1/events", tokens["account"], usage, &res)
		if res.Accepted != 0 || len(res.Refused) != 1 || res.Refused[0].Code != "forbidden" {
			t.Errorf("an account's usage line: %+v, want refused as forbidden", res)
		}

		// What each role sees is filtered on the server.
		var attr struct {
			Resources []struct{ Tenant, Org string } `json:"resources"`
		}
		s.json("GET", "/v1/attribution", tokens["reader-northwind"], "", &attr)
		if len(attr.Resources) != 2 {
			t.Errorf("Northwind's reader sees %d resources, want its 2", len(attr.Resources))
		}
		for _, r := range attr.Resources {
			if r.Org != "2000001" {
				t.Errorf("Northwind's reader sees a resource of %s", r.Org)
			}
		}
		s.json("GET", "/v1/attribution", tokens["admin-litware"], "", &attr)
		for _, r := range attr.Resources {
			if r.Tenant != "litware" {
				t.Errorf("litware's administrator sees a resource of %s", r.Tenant)
			}
		}
		var monthly struct {
			Workloads []struct{ Tenant, Org string } `json:"workloads"`
			Orgs      []struct{ Org string }         `json:"orgs"`
		}
		s.json("GET", "/v1/reports/monthly?month=2026-03", tokens["admin-contoso"], "", &monthly)
		if len(monthly.Orgs) != 0 || len(monthly.Workloads) == 0 {
			t.Errorf("contoso's administrator gets %d organisation rows and %d workload rows, want none and some", len(monthly.Orgs), len(monthly.Workloads))
		}
		for _, w := range monthly.Workloads {
			if w.Tenant != "contoso" {
				t.Errorf("contoso's administrator sees workloads of %s", w.Tenant)
			}
		}
		// Its tenant's lines, and the directory's registrations its credit
		// reads; no other tenant's, no organisation's inputs.
		_, logBody := s.call("GET", "/v1/log", tokens["admin-litware"], "")
		registrations := 0
		for _, line := range strings.Split(strings.TrimSpace(string(logBody)), "\n") {
			switch {
			case strings.Contains(line, `"type":"partner.registered"`):
				registrations++
			case !strings.Contains(line, `"tenant":"litware"`):
				t.Errorf("litware's administrator's log has a line not litware's: %s", line)
			}
		}
		if registrations == 0 {
			t.Error("litware's administrator's log has no registration of the directory: pal could not credit anyone on it")
		}
		// Only the organisations its accounts link: not Tailspin's.
		if strings.Contains(string(logBody), `"org":"3000001"`) {
			t.Error("litware's administrator's log names an organisation none of its accounts links")
		}

		// A line the caller may not push is refused as forbidden; the rest applies.
		batch := usage + "\n" + strings.Replace(usage, "contoso", "litware", 1) + "\n" +
			`{"type":"pal.linked","time":"2026-03-30T10:00:00Z","tenant":"contoso","account":"carol@contoso.example","partner":"1000011"}`
		res = s.push(tokens["admin-contoso"], batch)
		if res.Accepted != 1 || len(res.Refused) != 2 || res.Refused[0].Code != "forbidden" || res.Refused[1].Code != "forbidden" {
			t.Errorf("tenant administrator's mixed batch: %+v, want 1 accepted and 2 forbidden", res)
		}
		// An assignment to another tenant's principal would tell it that
		// tenant's accounts (held or not, and the explanations after): only
		// the operator pushes Azure Lighthouse delegations. Its own
		// tenant's principal it may name.
		lighthouse := `{"type":"azure.role_assigned","time":"2026-03-30T10:00:00Z","tenant":"contoso","assignment":"probe","principal":"erin@northwind.example","principal_tenant":"litware","role":"Contributor","scope":"/subscriptions/probe"}`
		res = s.push(tokens["admin-contoso"], lighthouse+"\n"+strings.Replace(strings.Replace(lighthouse, `"litware"`, `"contoso"`, 1), `"probe"`, `"own"`, 1))
		if len(res.Refused) != 1 || res.Refused[0].Code != "forbidden" || !strings.Contains(res.Refused[0].Message, "principal of another tenant") || res.Accepted+len(res.Held) != 1 {
			t.Errorf("tenant administrator's assignments to principals of another tenant and its own: %+v, want the first forbidden, saying why, and the second stored", res)
		}

		_, metrics := s.call("GET", "/metrics", "", "")
		for _, want := range []string{`pal_auth_refusals_total{code="401"}`, `pal_auth_refusals_total{code="403"}`, `pal_events_total{outcome="accepted"}`,
			`pal_http_requests_total{code="403",route="GET /v1/attribution"}`, "pal_http_request_duration_seconds_bucket"} {
			if !strings.Contains(string(metrics), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

type linkBody struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Etag       int    `json:"etag"`
	Properties struct {
		PartnerID   string    `json:"partnerId"`
		PartnerName string    `json:"partnerName"`
		TenantID    string    `json:"tenantId"`
		ObjectID    string    `json:"objectId"`
		Version     int       `json:"version"`
		CreatedTime time.Time `json:"createdTime"`
		UpdatedTime time.Time `json:"updatedTime"`
		State       string    `json:"state"`
	} `json:"properties"`
}

func TestLinkAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		clock := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
		s := start(t, open(t), server.Config{Clock: func() time.Time { clock = clock.Add(time.Minute); return clock }})
		operator := s.token(store.RoleOperator, "", "", "")
		s.push(operator, demoLog(t))
		admin := s.token(store.RoleTenantAdmin, "contoso", "", "")
		if res := s.push(admin, `{"type":"account.created","time":"2026-04-01T08:00:00Z","tenant":"contoso","account":"zoe","kind":"guest"}`); res.Accepted != 1 {
			t.Fatalf("create zoe: %+v", res)
		}
		zoe := s.token(store.RoleAccount, "contoso", "zoe", "")
		path := "/providers/Microsoft.ManagementPartner/partners"

		steps := []struct {
			method, path string
			status       int
			partner      string
			version      int
			state        string
			inMessage    string
		}{
			{"GET", path, 404, "", 0, "", "no link"},
			{"PUT", path + "/1000001?api-version=2018-02-01", 400, "", 0, "", "global_partner_id: 1000001 is the global ID of organisation Fabrikam Consulting (1000001); link one of its location IDs instead: 1000011, 1000012"},
			{"PUT", path + "/12", 400, "", 0, "", "invalid_partner_id"},
			{"PUT", path + "/9999999", 400, "", 0, "", "unknown_partner_id"},
			{"PUT", path + "/2000011", 200, "2000011", 1, "Active", ""},
			{"PUT", path + "/2000011", 409, "", 0, "", "already links partner ID 2000011"},
			{"PATCH", path + "/1000011", 200, "1000011", 2, "Active", ""},
			{"PATCH", path + "/1000011", 200, "1000011", 2, "Active", ""},
			{"GET", path, 200, "1000011", 2, "Active", ""},
			{"GET", path + "/2000011", 404, "", 0, "", "no link to 2000011"},
			{"DELETE", path + "/2000011", 404, "", 0, "", "no link to 2000011"},
			{"DELETE", path + "/1000011", 200, "1000011", 3, "Deleted", ""},
			{"GET", path, 404, "", 0, "", ""},
			{"PATCH", path + "/1000011", 404, "", 0, "", "create one with PUT"},
			{"PUT", path + "/1000012", 200, "1000012", 4, "Active", ""},
		}
		for i, st := range steps {
			status, body := s.call(st.method, st.path, zoe, "")
			if status != st.status || !strings.Contains(string(body), st.inMessage) {
				t.Fatalf("step %d %s %s: %d %s, want %d containing %q", i, st.method, st.path, status, body, st.status, st.inMessage)
			}
			if status != 200 {
				continue
			}
			var l linkBody
			json.Unmarshal(body, &l)
			p := l.Properties
			if l.Name != st.partner || l.ID != "/providers/microsoft.managementpartner/partners/"+st.partner || l.Type != "Microsoft.ManagementPartner/partners" ||
				l.Etag != st.version || p.PartnerID != st.partner || p.Version != st.version || p.State != st.state ||
				p.TenantID != "contoso" || p.ObjectID != "zoe" || p.CreatedTime.IsZero() || p.UpdatedTime.Before(p.CreatedTime) {
				t.Errorf("step %d %s %s: %s", i, st.method, st.path, body)
			}
			if st.partner == "2000011" && p.PartnerName != "Northwind Partners" {
				t.Errorf("step %d: partnerName %q, want Northwind Partners", i, p.PartnerName)
			}
		}

		// Every change is an event of the log, made by the account itself.
		_, log := s.call("GET", "/v1/log", operator, "")
		var zoes []string
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, `"account":"zoe"`) && strings.HasPrefix(line, `{"type":"pal.`) {
				zoes = append(zoes, line)
			}
		}
		if len(zoes) != 4 || strings.Contains(strings.Join(zoes, ""), "imported") {
			t.Errorf("zoe's link events in the log:\n%s", strings.Join(zoes, "\n"))
		}
		// Links the operator imports are marked so.
		if !strings.Contains(string(log), `{"type":"pal.linked","time":"2025-01-02T11:00:00Z","id":"demo-00007","imported":true`) {
			t.Error("the demo's imported links are not marked imported in the log")
		}
	})
}

func TestLogReplaysToTheSameAnswers(t *testing.T) {
	// The export is replayed by the command line in the cli package's tests;
	// here the service's own restart from its store must agree with itself.
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		st := open(t)
		s := start(t, st, server.Config{SnapshotEvery: 1000})
		operator := s.token(store.RoleOperator, "", "", "")
		lines := strings.Split(strings.TrimSpace(demoLog(t)), "\n")
		// Push in batches, some out of time order, so that the service folds
		// late events and takes snapshots on the way.
		for i := 0; i < len(lines); i += 2000 {
			batch := lines[i:min(i+2000, len(lines))]
			if i == 4000 {
				batch = append(batch, lines[5]) // a duplicate, early in time
			}
			s.push(operator, strings.Join(batch, "\n"))
		}
		late := `{"type":"usage","time":"2025-02-10T10:00:00Z","tenant":"contoso","resource":"expenses","user":"late-user"}`
		if res := s.push(operator, late); res.Accepted != 1 {
			t.Fatalf("late usage: %+v", res)
		}
		want := answers(t, s, operator)
		if _, _, err := st.LoadSnapshot(context.Background()); err != nil {
			t.Fatalf("no snapshot was saved: %v", err)
		}
		again := start(t, open(t), server.Config{SnapshotEvery: 1000})
		if got := answers(t, again, operator); got != want {
			t.Errorf("a restarted service answers differently:\n%s\nwant:\n%s", got, want)
		}
	})
}

// answers is what the service says of the demo, as one string.
func answers(t *testing.T, s *service, token string) string {
	var b strings.Builder
	for _, path := range []string{"/v1/attribution", "/v1/attribution?at=2025-10-15", "/v1/reports/monthly?month=2025-02",
		"/v1/reports/monthly?month=2026-03", "/v1/reports/pcs?month=2026-03&org=1000001",
		"/v1/explain?tenant=adatum&resource=onboarding&at=2026-01-01", "/v1/changes"} {
		status, body := s.call("GET", path, token, "")
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		fmt.Fprintf(&b, "%s\n%s\n", path, body)
	}
	return b.String()
}

func TestChangesFeed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		s := start(t, open(t), server.Config{})
		operator := s.token(store.RoleOperator, "", "", "")
		s.push(operator, demoLog(t))
		type feed struct {
			Changes []struct {
				Seq      int64
				Tenant   string
				Resource string
				Cause    string
				From, To struct{ Partner, Org string }
			}
			Next int64
		}
		northwind := s.token(store.RolePartnerReader, "", "", "2000001")
		var f feed
		if status := s.json("GET", "/v1/changes", northwind, "", &f); status != 200 {
			t.Fatalf("GET /v1/changes: %d", status)
		}
		var moves []string
		for _, c := range f.Changes {
			if c.From.Org != "2000001" && c.To.Org != "2000001" {
				t.Errorf("Northwind's reader sees a change of %s to %s", c.From.Org, c.To.Org)
			}
			moves = append(moves, fmt.Sprintf("%s/%s %s %s->%s", c.Tenant, c.Resource, c.Cause, c.From.Partner, c.To.Partner))
		}
		want := []string{"contoso/expenses resource.coowner_added 1000011->2000011", "litware/field-service resource.owner_changed 1000011->2000011"}
		if fmt.Sprint(moves) != fmt.Sprint(want) {
			t.Errorf("Northwind's changes: %v, want %v", moves, want)
		}
		// Naming a tenant, it reads its organisation's changes there only.
		var contoso feed
		s.json("GET", "/v1/changes?tenant=contoso", northwind, "", &contoso)
		if len(contoso.Changes) != 1 || contoso.Changes[0].Tenant != "contoso" {
			t.Errorf("Northwind's changes in contoso: %+v, want the one of expenses", contoso.Changes)
		}
		var admin feed
		s.json("GET", "/v1/changes", s.token(store.RoleTenantAdmin, "litware", "", ""), "", &admin)
		for _, c := range admin.Changes {
			if c.Tenant != "litware" {
				t.Errorf("litware's administrator sees a change in %s", c.Tenant)
			}
		}
		if len(admin.Changes) < 3 {
			t.Errorf("litware's administrator sees %d changes, want its creations, hand-over and disabled owner", len(admin.Changes))
		}

		// Bob removes his link: the credit of expenses returns to Fabrikam,
		// and the feed says so from the next sequence number on.
		s.push(operator, `{"type":"pal.removed","time":"2026-04-01T00:00:00Z","tenant":"contoso","account":"bob@northwind.example"}`)
		var after feed
		s.json("GET", fmt.Sprintf("/v1/changes?since=%d", f.Next), northwind, "", &after)
		if len(after.Changes) != 1 || after.Changes[0].Cause != "pal.removed" || after.Changes[0].To.Partner != "1000011" || after.Changes[0].Seq <= f.Next || after.Next <= f.Next {
			t.Errorf("changes after %d: %+v", f.Next, after)
		}
		if status, _ := s.call("GET", "/v1/changes?since=-1", northwind, ""); status != 400 {
			t.Errorf("since=-1: %d, want 400", status)
		}
		if status, _ := s.call("GET", "/v1/changes", s.token(store.RoleAccount, "contoso", "zoe", ""), ""); status != 403 {
			t.Errorf("an account reading the feed: %d, want 403", status)
		}
	})
}

// TestLostCreditReachesItsOrganisation: a late event that takes a credit
// away from an organisation, to no one, files a correction that its feed
// shows, from it to no one with the reason the timeline gives.
func TestLostCreditReachesItsOrganisation(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, `{"id":"t4-0","type":"partner.registered","time":"2025-01-01T00:00:00Z","org":"4000000","name":"Tailspin","locations":["4000001","4000002"]}
{"id":"t4-1","type":"account.created","time":"2025-04-01T00:00:00Z","tenant":"t4","account":"dep","kind":"service_principal"}
{"id":"t4-2","type":"environment.created","time":"2025-04-01T00:00:00Z","tenant":"t4","environment":"pilot","env_type":"sandbox"}
{"id":"t4-3","type":"pal.linked","time":"2025-04-02T00:00:00Z","tenant":"t4","account":"dep","partner":"4000002"}
{"id":"t4-4","type":"resource.created","time":"2025-04-03T00:00:00Z","tenant":"t4","environment":"pilot","resource":"pa","kind":"canvas_app","owner":"dep"}
{"id":"t4-5","type":"environment.changed","time":"2025-06-01T00:00:00Z","tenant":"t4","environment":"pilot","env_type":"production"}`)
	reader := s.token(store.RolePartnerReader, "", "", "4000000")
	type change struct {
		Time       time.Time
		From, To   struct{ Partner, Org, Reason string }
		Correction bool
	}
	var feed struct{ Changes []change }
	s.json("GET", "/v1/changes", reader, "", &feed)
	if len(feed.Changes) != 1 || feed.Changes[0].To.Partner != "4000002" {
		t.Fatalf("Tailspin's feed before the late line: %+v, want pa gained", feed.Changes)
	}
	// Registered again without the location, late: pa is credited to no
	// one from June on.
	s.push(operator, `{"id":"t4-6","type":"partner.registered","time":"2025-05-01T00:00:00Z","org":"4000000","name":"Tailspin","locations":["4000001"]}`)
	s.json("GET", "/v1/changes", reader, "", &feed)
	june := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	if n := len(feed.Changes); n != 2 || !feed.Changes[1].Correction || !feed.Changes[1].Time.Equal(june) ||
		feed.Changes[1].From.Org != "4000000" || feed.Changes[1].To.Partner != "" || feed.Changes[1].To.Reason != "no_eligible_account" {
		t.Errorf("Tailspin's feed after the late line: %+v, want a correction from it to no one (no_eligible_account) on June 1st", feed.Changes)
	}
}

func TestWhatIfWritesNothing(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	admin := s.token(store.RoleTenantAdmin, "contoso", "", "")
	before, _ := s.store.LastSeq(context.Background())
	var res struct {
		Before, After []struct{ Resource, Partner string }
		Refused       []struct{ Code string }
	}
	// A bad line is refused, and the lines after it are read.
	body := `{"type":"resource.coowner_removed","time":
{"type":"resource.coowner_removed","time":"2026-04-02T00:00:00Z","tenant":"contoso","resource":"expenses","account":"bob@northwind.example"}
{"type":"usage","time":"2026-04-02T00:00:00Z","tenant":"litware","resource":"timesheets","user":"u"}
{"type":"pal.linked","time":"2025-01-01T00:00:00Z","tenant":"contoso","account":"carol@contoso.example","partner":"3000011"}
{"type":"azure.role_assigned","time":"2026-04-02T00:00:00Z","tenant":"contoso","assignment":"probe","principal":"erin@northwind.example","principal_tenant":"litware","role":"Contributor","scope":"/subscriptions/probe"}`
	if status := s.json("POST", "/v1/whatif", admin, body, &res); status != 200 {
		t.Fatalf("POST /v1/whatif: %d", status)
	}
	partner := func(rows []struct{ Resource, Partner string }) string {
		for _, r := range rows {
			if r.Resource == "expenses" {
				return r.Partner
			}
		}
		return ""
	}
	if partner(res.Before) != "2000011" || partner(res.After) != "1000011" {
		t.Errorf("expenses before %q after %q, want Northwind then Fabrikam", partner(res.Before), partner(res.After))
	}
	// A principal of another tenant is forbidden, as in a push: its
	// verdict would say whether that tenant has the account.
	if len(res.Refused) != 4 || res.Refused[0].Code != "malformed" || res.Refused[1].Code != "forbidden" || res.Refused[2].Code != "forbidden" || res.Refused[3].Code != "invalid_time" {
		t.Errorf("refused %+v, want the bad line, the other tenant's line, the other tenant's principal and the one in the past", res.Refused)
	}
	after, _ := s.store.LastSeq(context.Background())
	var attr struct {
		Resources []struct{ Resource, Partner string }
	}
	s.json("GET", "/v1/attribution", admin, "", &attr)
	if after != before || partner(attr.Resources) != "2000011" {
		t.Errorf("the what-if changed the service: log %d -> %d, expenses now %q", before, after, partner(attr.Resources))
	}
}

// TestTokensEnd revokes a token and lets another expire, with two replicas
// on one store: both refuse them at once.
func TestTokensEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		later := time.Now().Add(2 * time.Hour)
		a := start(t, open(t), server.Config{})
		b := start(t, open(t), server.Config{})
		tok, issued, err := server.IssueToken(context.Background(), a.store, store.Token{Role: store.RoleOperator})
		if err != nil {
			t.Fatal(err)
		}
		short, _, err := server.IssueToken(context.Background(), a.store, store.Token{Role: store.RoleOperator, Created: time.Now(), Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*service{a, b} {
			for _, token := range []string{tok, short} {
				if status, body := s.call("GET", "/v1/me", token, ""); status != 200 {
					t.Fatalf("a fresh token: %d %s", status, body)
				}
			}
		}
		if ok, err := a.store.RevokeToken(context.Background(), issued.ID); !ok || err != nil {
			t.Fatalf("RevokeToken: %v %v", ok, err)
		}
		for _, s := range []*service{a, b} {
			if status, body := s.call("GET", "/v1/me", tok, ""); status != 401 || !strings.Contains(string(body), "revoked") {
				t.Errorf("a revoked token: %d %s, want 401 saying revoked", status, body)
			}
		}
		// Two hours on, the one-hour token has expired on both replicas.
		for _, s := range []*service{a, b} {
			clocked := start(t, s.store, server.Config{Clock: func() time.Time { return later }})
			if status, body := clocked.call("GET", "/v1/me", short, ""); status != 401 || !strings.Contains(string(body), "expired") {
				t.Errorf("an expired token: %d %s, want 401 saying expired", status, body)
			}
		}
		tokens, _ := a.store.Tokens(context.Background())
		used := 0
		for _, tk := range tokens {
			if !tk.LastUsed.IsZero() {
				used++
			}
		}
		if used != 2 {
			t.Errorf("%d tokens have a last use, want 2", used)
		}
	})
}

// TestAttributionPages reads the demo's attribution in pages of one and
// three rows: joined, they are the whole answer, for every reader.
func TestAttributionPages(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	type page struct {
		At        string
		Resources []json.RawMessage
		Next      *string
	}
	for _, token := range []string{operator, s.token(store.RolePartnerReader, "", "", "1000001"), s.token(store.RoleTenantAdmin, "contoso", "", "")} {
		var whole page
		s.json("GET", "/v1/attribution?at=2026-02-01", token, "", &whole)
		if len(whole.Resources) < 2 || whole.Next != nil {
			t.Fatalf("the whole attribution: %d rows, next %v", len(whole.Resources), whole.Next)
		}
		for _, size := range []int{1, 3} {
			var joined []json.RawMessage
			after := ""
			for n := 0; ; n++ {
				var p page
				if status := s.json("GET", fmt.Sprintf("/v1/attribution?at=2026-02-01&limit=%d&after=%s", size, after), token, "", &p); status != 200 {
					t.Fatalf("page %d: %d", n, status)
				}
				if len(p.Resources) > size {
					t.Fatalf("a page of %d rows, limit %d", len(p.Resources), size)
				}
				joined = append(joined, p.Resources...)
				if p.Next == nil {
					break
				}
				after = *p.Next
			}
			if fmt.Sprint(joined) != fmt.Sprint(whole.Resources) {
				t.Errorf("pages of %d joined differ from the whole answer", size)
			}
		}
	}
	if status, _ := s.call("GET", "/v1/attribution?after=not-a-cursor", operator, ""); status != 400 {
		t.Errorf("after=not-a-cursor: %d, want 400", status)
	}
	if status, _ := s.call("GET", "/v1/attribution?limit=20000", operator, ""); status != 400 {
		t.Errorf("limit past the most: %d, want 400", status)
	}
}

// TestOperationsList reads the provider's operations as Azure's SDKs do.
func TestOperationsList(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	account := s.token(store.RoleAccount, "contoso", "alice", "")
	var ops struct {
		Value []struct {
			Name    string
			Display struct{ Provider, Resource, Operation, Description string }
		}
		NextLink *string
	}
	if status := s.json("GET", "/providers/Microsoft.ManagementPartner/operations?api-version=2018-02-01", account, "", &ops); status != 200 {
		t.Fatalf("GET operations: %d", status)
	}
	var names []string
	for _, op := range ops.Value {
		names = append(names, op.Name)
		if op.Display.Provider == "" || op.Display.Resource == "" || op.Display.Operation == "" || op.Display.Description == "" {
			t.Errorf("operation %s has an empty display field: %+v", op.Name, op.Display)
		}
	}
	want := "[Microsoft.ManagementPartner/partners/read Microsoft.ManagementPartner/partners/write Microsoft.ManagementPartner/partners/delete]"
	if fmt.Sprint(names) != want || ops.NextLink != nil {
		t.Errorf("operations %v, nextLink %v; want %s and null", names, ops.NextLink, want)
	}
	if status, _ := s.call("GET", "/providers/Microsoft.ManagementPartner/operations", "", ""); status != 401 {
		t.Errorf("operations without a token: %d, want 401", status)
	}
}

// TestWhereMyLinksAre: a partner reader sees the accounts linked to its
// location IDs in every tenant, and nothing of another organisation's.
func TestWhereMyLinksAre(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	type links struct {
		Org   string
		Links []struct {
			Tenant, Account, Partner string
			Resources                int
		}
	}
	var north links
	s.json("GET", "/v1/links", s.token(store.RolePartnerReader, "", "", "2000001"), "", &north)
	var got []string
	for _, l := range north.Links {
		got = append(got, fmt.Sprintf("%s/%s %s %d", l.Tenant, l.Account, l.Partner, l.Resources))
	}
	// ivan works on Azure, where resources are recognised by role and
	// scope rather than carried by a role on each.
	if want := "[contoso/bob@northwind.example 2000011 1 fourthcoffee/ivan@northwind.example 2000011 0 litware/erin@northwind.example 2000011 1]"; fmt.Sprint(got) != want {
		t.Errorf("Northwind's links: %v, want %s", got, want)
	}
	fabrikam := s.token(store.RolePartnerReader, "", "", "1000001")
	var fab links
	s.json("GET", "/v1/links", fabrikam, "", &fab)
	if len(fab.Links) == 0 {
		t.Fatal("Fabrikam's reader sees no link")
	}
	for _, l := range fab.Links {
		if !strings.HasPrefix(l.Partner, "100001") {
			t.Errorf("Fabrikam's reader sees %s linked to %s", l.Account, l.Partner)
		}
	}
	var narrowed links
	s.json("GET", "/v1/links?tenant=contoso", fabrikam, "", &narrowed)
	for _, l := range narrowed.Links {
		if l.Tenant != "contoso" {
			t.Errorf("?tenant=contoso gives a link in %s", l.Tenant)
		}
	}
	if len(narrowed.Links) == 0 || len(narrowed.Links) >= len(fab.Links) {
		t.Errorf("?tenant=contoso: %d of %d links", len(narrowed.Links), len(fab.Links))
	}
	if status, _ := s.call("GET", "/v1/links?org=2000001", fabrikam, ""); status != 403 {
		t.Errorf("Fabrikam's reader asking for Northwind's links: %d, want 403", status)
	}
}

// TestDiagnosisIsTheOrganisations: a partner reader reads where its own
// credit is missing, the operator any organisation's, no one else any.
func TestDiagnosisIsTheOrganisations(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	var d struct {
		Org     string
		Missing []struct{ Tenant, Resource, Reason, Words string }
	}
	tailspin := s.token(store.RolePartnerReader, "", "", "3000001")
	if status := s.json("GET", "/v1/diagnosis", tailspin, "", &d); status != 200 || d.Org != "3000001" {
		t.Fatalf("Tailspin's diagnosis: %d %+v", status, d)
	}
	var reasons []string
	for _, m := range d.Missing {
		reasons = append(reasons, m.Resource+" "+m.Reason)
	}
	if want := "[approvals role_earns_nothing onboarding another_partner_later"; !strings.HasPrefix(fmt.Sprint(reasons), want) {
		t.Errorf("Tailspin's missing credit: %v, want it to begin %s", reasons, want)
	}
	for _, c := range []struct {
		token, query string
		status       int
	}{
		{tailspin, "?org=1000001", 403},
		{s.token(store.RoleTenantAdmin, "adatum", "", ""), "?org=3000001", 403},
		{operator, "", 400},
		{operator, "?org=1000001", 200},
	} {
		if status, body := s.call("GET", "/v1/diagnosis"+c.query, c.token, ""); status != c.status {
			t.Errorf("GET /v1/diagnosis%s: %d %s, want %d", c.query, status, body, c.status)
		}
	}
}

// slowLog is a store whose log reads wait until released: a cold start
// that takes its time.
type slowLog struct {
	store.Store
	release chan struct{}
}

func (s slowLog) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	<-s.release
	return s.Store.Scan(ctx, after, fn)
}

// TestLoadingInBackground: a service that folds its log at start answers
// /healthz with "loading" and every other route 503 with Retry-After
// meanwhile, then answers as usual.
func TestLoadingInBackground(t *testing.T) {
	st := sqliteStore(t)
	first := start(t, st, server.Config{})
	operator := first.token(store.RoleOperator, "", "", "")
	first.push(operator, demoLog(t))

	slow := slowLog{Store: st, release: make(chan struct{})}
	s := start(t, slow, server.Config{LoadInBackground: true, SnapshotEvery: 1 << 30})
	var health struct {
		Status  string
		Records int64
	}
	if status := s.json("GET", "/healthz", "", "", &health); status != 200 || health.Status != "loading" {
		t.Fatalf("/healthz while loading: %d %+v, want 200 loading", status, health)
	}
	req, _ := http.NewRequest("GET", s.url+"/v1/attribution", nil)
	req.Header.Set("Authorization", "Bearer "+operator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "folding its log") {
		t.Fatalf("/v1/attribution while loading: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	close(slow.release)
	if err := s.srv.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status := s.json("GET", "/healthz", "", "", &health); status != 200 || health.Status != "ok" {
		t.Fatalf("/healthz once loaded: %d %+v, want 200 ok", status, health)
	}
	var attr struct{ Resources []json.RawMessage }
	if status := s.json("GET", "/v1/attribution", operator, "", &attr); status != 200 || len(attr.Resources) == 0 {
		t.Fatalf("/v1/attribution once loaded: %d, %d rows", status, len(attr.Resources))
	}
}
