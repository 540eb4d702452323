package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/sqlite"
)

// The fuzzed service's data: two tenants and two organisations. Each
// marker names something only its owners may see.
const (
	markerLitware = "lw-ledger-7f3a"     // a resource of tenant litware
	markerNorth   = "nw-only-app-5d1c"   // contoso's resource credited to Northwind only
	markerBob     = "bob-northwind-9b2e" // Northwind's consultant in contoso
	markerLisa    = "lisa-litware-31c7"  // the owner of litware's resource
)

var fuzzLog = strings.Join([]string{
	`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`,
	`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"200001","name":"Northwind","locations":["200011"]}`,
	`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","environment":"prod","env_type":"production"}`,
	`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"litware","environment":"prod","env_type":"production"}`,
	`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}`,
	`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"` + markerBob + `","kind":"guest"}`,
	`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"litware","account":"` + markerLisa + `","kind":"guest"}`,
	`{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"contoso","account":"alice","partner":"100011"}`,
	`{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"contoso","account":"` + markerBob + `","partner":"200011"}`,
	`{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"litware","account":"` + markerLisa + `","partner":"100011"}`,
	`{"type":"resource.created","time":"2026-01-05T00:00:00Z","tenant":"contoso","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}`,
	`{"type":"resource.created","time":"2026-01-05T00:00:00Z","tenant":"contoso","environment":"prod","resource":"` + markerNorth + `","kind":"canvas_app","owner":"` + markerBob + `"}`,
	`{"type":"resource.created","time":"2026-01-05T00:00:00Z","tenant":"litware","environment":"prod","resource":"` + markerLitware + `","kind":"canvas_app","owner":"` + markerLisa + `"}`,
	`{"type":"usage","time":"2026-01-10T00:00:00Z","tenant":"contoso","resource":"app1","user":"u1"}`,
	`{"type":"usage","time":"2026-01-10T00:00:00Z","tenant":"litware","resource":"` + markerLitware + `","user":"u2"}`,
}, "\n")

// FuzzAPI sends random requests with the tokens of every role to the real
// handler on a real store: no answer is a 5xx (a panic answers 500), and
// none shows a marker its caller may not see, unless the request itself
// carried it (an error may echo what it was sent).
func FuzzAPI(f *testing.F) {
	ctx := context.Background()
	s, roles := fuzzService(f, f.TempDir())
	for _, rt := range s.routeTable() {
		for role := range roles {
			f.Add(uint8(0), rt.method, rt.path, "tenant=contoso&resource=app1&month=2026-01&org=100001&at=2026-01-07", []byte(""), uint8(role))
		}
	}
	f.Add(uint8(1), "POST", "/v1/events", "", []byte(fuzzLog), uint8(1))
	// Every role asks after the others' resources by name.
	for role := range roles {
		for _, q := range []string{"tenant=litware&resource=" + markerLitware, "tenant=contoso&resource=" + markerNorth} {
			for _, path := range []string{"/v1/explain", "/v1/timeline", "/v1/attribution", "/v1/links", "/v1/log", "/v1/changes", "/v1/reports/monthly"} {
				f.Add(uint8(2), "GET", path, q+"&month=2026-01", []byte(""), uint8(role))
			}
		}
	}
	f.Add(uint8(4), "POST", "/v1/whatif", "tenant=contoso", []byte(`{"type":"resource.deleted","time":"2027-01-01T00:00:00Z","tenant":"contoso","resource":"app1"}`), uint8(1))
	h := s.Handler()
	f.Fuzz(func(t *testing.T, header uint8, method, path, query string, body []byte, role uint8) {
		r := roles[int(role)%len(roles)]
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://pal.test"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.URL.RawQuery = query
		if r.token != "" {
			req.Header.Set("Authorization", "Bearer "+r.token)
		}
		req.Header.Set([]string{"Content-Type", "Accept", "X-Forwarded-For", "Origin"}[header%4], string(body[:min(len(body), 40)]))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s?%s as %s: %d %s", method, path, query, r.name, w.Code, w.Body)
		}
		sent := method + path + query + string(body)
		for _, m := range r.hidden {
			if strings.Contains(w.Body.String(), m) && !strings.Contains(sent, m) {
				t.Fatalf("%s %s?%s as %s shows %s: %d %s", method, path, query, r.name, m, w.Code, w.Body)
			}
		}
	})
}

// fuzzRole is a caller of the fuzzed service, and the markers it may not
// see.
type fuzzRole struct {
	name   string
	token  string
	hidden []string
}

func fuzzService(f *testing.F, dir string) (*Server, []fuzzRole) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "pal.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	s, err := New(ctx, Config{Store: st})
	if err != nil {
		f.Fatal(err)
	}
	var events api.IngestResult
	if err := s.ingest(ctx, mustEvents(f, fuzzLog), &events); err != nil || events.Accepted != 15 {
		f.Fatalf("the fuzzed service's log: %+v %v", events, err)
	}
	issue := func(t store.Token) string {
		tok, _, err := IssueToken(ctx, st, t)
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	return s, []fuzzRole{
		{name: "nobody"},
		{name: "operator", token: issue(store.Token{Role: store.RoleOperator})},
		{name: "contoso's administrator", token: issue(store.Token{Role: store.RoleTenantAdmin, Tenant: "contoso"}), hidden: []string{markerLitware, markerLisa}},
		{name: "Fabrikam's reader", token: issue(store.Token{Role: store.RolePartnerReader, Org: "100001"}), hidden: []string{markerNorth, markerBob}},
		{name: "Northwind's reader", token: issue(store.Token{Role: store.RolePartnerReader, Org: "200001"}), hidden: []string{markerLitware, markerLisa}},
		{name: "alice", token: issue(store.Token{Role: store.RoleAccount, Tenant: "contoso", Account: "alice"}), hidden: []string{markerLitware, markerLisa, markerNorth, markerBob}},
	}
}

func mustEvents(f *testing.F, log string) []*event.Event {
	var out []*event.Event
	rd := event.NewReader(strings.NewReader(log))
	for {
		ev, rf, err := rd.Next()
		if err != nil {
			return out
		}
		if rf != nil {
			f.Fatalf("fuzz log: %v", rf)
		}
		out = append(out, ev)
	}
}
