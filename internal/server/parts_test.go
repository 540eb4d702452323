package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/usage"
)

// question is a request to the service, and whether its answer comes in
// pages to follow (the next of each page is the after of the next).
type question struct {
	method, path, token, body string
	paged                     bool
}

// TestPartsMergeToTheAnswersOfOne folds random logs, and asks every
// question across tenants of the service as it is, then of the service
// answering each from the parts of a random split of the tenants into one
// to four groups, each part carried through JSON, as processes that own
// those groups will (SPEC.md section 10). The merged answers are those of
// one part, byte for byte.
func TestPartsMergeToTheAnswersOfOne(t *testing.T) {
	cases := []struct {
		name string
		seed uint64
		log  []*event.Event
	}{
		{"random", 1, attributiontest.RandomLog(1, 400)},
		{"azure", 2, attributiontest.RandomAzureLog(2, 400)},
		{"both", 3, append(bothLogs(attributiontest.RandomLog(3, 300), attributiontest.RandomAzureLog(4, 300)), lighthouse()...)},
		{"lighthouse", 4, lighthouse()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, sqliteStore(t), server.Config{})
			operator := s.token(store.RoleOperator, "", "", "")
			s.push(operator, ndjson(c.log))
			pushSomeCosts(t, s, operator, c.log)
			questions := acrossTenants(s, operator, c.log)
			want := s.answersTo(questions)
			if again := s.answersTo(questions); !slicesEqual(want, again) {
				t.Fatal("the service answers the same question twice otherwise: the test would prove nothing")
			}
			tenants := tenantsOf(c.log)
			rng := rand.New(rand.NewPCG(c.seed, 5))
			// One group first (each answer's one part through JSON),
			// then two to four, at least two of them not empty.
			for round := range 3 {
				n, group := 1, map[string]int{}
				for used := map[int]bool{}; round > 0 && len(used) < 2; {
					n, group, used = 2+rng.IntN(3), map[string]int{}, map[int]bool{}
					for _, tenant := range tenants {
						group[tenant] = rng.IntN(n)
						used[group[tenant]] = true
					}
				}
				server.SplitTenants(s.srv, n, func(tenant string) int { return group[tenant] })
				got := s.answersTo(questions)
				for i, q := range questions {
					if got[i] != want[i] {
						t.Errorf("%s %s, tenants split %v: the parts merge to\n%s\none part answers\n%s", q.method, q.path, group, got[i], want[i])
					}
				}
			}
		})
	}
}

// bothLogs joins a Power Platform log and an Azure one, the first's tenants
// and ids renamed apart: five tenants, some delegating to another.
func bothLogs(pp, az []*event.Event) []*event.Event {
	out := make([]*event.Event, 0, len(pp)+len(az))
	for _, ev := range pp {
		c := *ev
		if c.Tenant != "" {
			c.Tenant = "pp-" + c.Tenant
		}
		if c.ID != "" {
			c.ID = "pp-" + c.ID
		}
		out = append(out, &c)
	}
	return append(out, az...)
}

// lighthouse is a partner's account in its home tenant recognised, through
// Azure Lighthouse, on a resource of each of two customers, which cost
// less than half a cent each: the partner's total is a cent, and only the
// exact parts of the two customers sum to it.
func lighthouse() []*event.Event {
	at := instant("2026-01-01T00:00:00Z")
	evs := []*event.Event{
		{Type: event.AccountCreated, Time: at, Tenant: "lh-home", Account: "pa", Kind: event.AccountUser},
		{Type: event.PartnerRegistered, Time: at, Org: "200001", Name: "B", Locations: []string{"200011"}, Segment: event.Enterprise},
		{Type: event.PalLinked, Time: at, Tenant: "lh-home", Account: "pa", Partner: "200011"},
	}
	for _, customer := range []string{"lh-c1", "lh-c2"} {
		evs = append(evs,
			&event.Event{Type: event.AzureRoleAssigned, Time: at, Tenant: customer, Assignment: "lh", Principal: "pa", PrincipalTenant: "lh-home",
				Role: "Contributor", Scope: "/subscriptions/s9", PIM: event.PIMActive},
			&event.Event{Type: event.AzureConsumption, Time: at.Add(96 * time.Hour), Tenant: customer,
				Resource: "/subscriptions/s9/resourcegroups/rg/providers/microsoft.web/sites/w9", Date: "2026-01-03", Cost: "0.004", Meter: event.MeterStandard})
	}
	return evs
}

// pushSomeCosts pushes, as a consumption file, a third of the log's Azure
// costs again at twice their amounts: the months they fall in are
// reported from the log's records and the file's segments together.
func pushSomeCosts(t *testing.T, s *service, token string, log []*event.Event) {
	var rows []usage.Consumption
	for i, ev := range log {
		if ev.Type != event.AzureConsumption || i%3 != 0 {
			continue
		}
		c, err := strconv.ParseFloat(ev.Cost, 64)
		if err != nil {
			continue
		}
		rows = append(rows, usage.Consumption{Tenant: ev.Tenant, Resource: ev.Resource, Date: ev.Date, Cost: 2 * c, Meter: ev.Meter})
	}
	if len(rows) == 0 {
		return
	}
	if status, body := s.call("POST", "/v1/consumption", token, consumptionFile(t, rows...)); status != 200 {
		t.Fatalf("POST /v1/consumption: %d %s", status, body)
	}
}

// acrossTenants lists the questions whose answers span tenants, asked by
// every kind of caller of the log's tenants and organisations.
func acrossTenants(s *service, operator string, log []*event.Event) []question {
	orgs := []string{"100001", "200001", "999999"}
	tenants := tenantsOf(log)
	readers := map[string]string{}
	for _, org := range orgs[:2] {
		readers[org] = s.token(store.RolePartnerReader, "", "", org)
	}
	admins := map[string]string{}
	for _, tenant := range tenants {
		admins[tenant] = s.token(store.RoleTenantAdmin, tenant, "", "")
	}
	var qs []question
	ask := func(token, path string) { qs = append(qs, question{method: "GET", path: path, token: token}) }
	page := func(token, path string) {
		qs = append(qs, question{method: "GET", path: path, token: token, paged: true})
	}
	everyone := []string{operator, readers["100001"], readers["200001"]}
	for _, tenant := range tenants {
		everyone = append(everyone, admins[tenant])
	}
	for _, token := range everyone {
		ask(token, "/v1/attribution")
		page(token, "/v1/attribution?limit=3")
		for _, at := range pastInstants {
			page(token, "/v1/attribution?limit=4&at="+at)
		}
		for _, m := range months {
			ask(token, "/v1/reports/monthly?month="+m)
			page(token, "/v1/reports/monthly?limit=1&month="+m)
			ask(token, "/v1/reports/azure?month="+m)
		}
		if token != readers["100001"] && token != readers["200001"] {
			page(token, "/v1/refusals?limit=5")
		}
		ask(token, "/v1/links")
	}
	ask(operator, "/v1/intake?days=90")
	for _, org := range orgs {
		for _, token := range []string{operator, readers[org]} {
			if token == "" {
				continue
			}
			ask(token, "/v1/diagnosis?org="+org)
			ask(token, "/v1/links?org="+org)
			for _, m := range months {
				ask(token, "/v1/reports/pcs?org="+org+"&month="+m)
			}
		}
		for _, tenant := range tenants {
			ask(operator, "/v1/links?org="+org+"&tenant="+tenant)
		}
	}
	// The tables of each scope: an organisation's, a tenant's, all.
	tables := map[string][]string{
		"org":    {"months", "credited", "missing", "at-risk", "links", "changes", "azure", "workloads"},
		"tenant": {"months", "links", "changes", "resources", "workloads"},
		"all":    {"months", "changes", "resources", "organisations", "workloads"},
	}
	type scoped struct{ token, kind, param string }
	scopes := []scoped{{operator, "all", ""}, {readers["100001"], "org", ""}, {readers["200001"], "org", ""}}
	for _, org := range orgs[:2] {
		scopes = append(scopes, scoped{operator, "org", "org=" + org})
	}
	for _, tenant := range tenants {
		scopes = append(scopes, scoped{operator, "tenant", "tenant=" + tenant}, scoped{admins[tenant], "tenant", ""})
	}
	for _, sc := range scopes {
		for _, table := range tables[sc.kind] {
			for _, month := range []string{"", "2026-01"} {
				ask(sc.token, "/v1/tables/"+table+"?month="+month+"&"+sc.param)
			}
			ask(sc.token, "/v1/tables/"+table+"?format=csv&"+sc.param)
			ask(sc.token, "/v1/tables/"+table+"?q=a&order=desc&offset=1&limit=3&"+sc.param)
		}
	}
	// An account's credit, and a what-if of each tenant.
	seen := map[string]bool{}
	for _, ev := range log {
		if ev.Type == event.PalLinked && !seen[ev.Tenant+"/"+ev.Account] {
			seen[ev.Tenant+"/"+ev.Account] = true
			ask(s.token(store.RoleAccount, ev.Tenant, ev.Account, ""), "/v1/me/credit")
		}
	}
	for _, tenant := range tenants {
		body := fmt.Sprintf(`{"type":"pal.linked","time":"2026-06-01T00:00:00Z","tenant":%q,"account":"a1","partner":"200011"}`+"\n", tenant)
		qs = append(qs, question{method: "POST", path: "/v1/whatif?tenant=" + tenant, token: operator, body: body})
	}
	return qs
}

// answersTo asks the questions, and returns each answer's status and
// body, the pages of a paged one one after the other.
func (s *service) answersTo(qs []question) []string {
	s.t.Helper()
	out := make([]string, len(qs))
	for i, q := range qs {
		path := q.path
		for {
			status, body := s.call(q.method, path, q.token, q.body)
			out[i] += fmt.Sprintf("%d %s", status, body)
			if !q.paged || status != 200 {
				break
			}
			var page struct{ Next any }
			if err := json.Unmarshal(body, &page); err != nil {
				s.t.Fatalf("%s: %v", path, err)
			}
			if page.Next == nil {
				break
			}
			u, _ := url.Parse(q.path)
			v := u.Query()
			v.Set("after", fmt.Sprint(page.Next))
			path = u.Path + "?" + v.Encode()
		}
	}
	return out
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
