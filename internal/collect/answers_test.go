package collect

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/palproject/pal/internal/collect/collecttest"
)

// TestCostQueriesAsTheAPIAnswers: Cost Management's throttling is waited
// out for as long as its own headers say, past the SDK's retries; a query
// with no rows may answer 204; and a page after the first that fails is
// reported with its status, not as an answer that could not be read.
func TestCostQueriesAsTheAPIAnswers(t *testing.T) {
	query := "/providers/Microsoft.CostManagement/query"
	cfg := Config{Tenants: []Tenant{{Tenant: contoso, Sources: []string{"azure-costs"}}}, Retries: 2}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	creds := &collecttest.Credentials{Set: map[string]*collecttest.Credential{contoso: {Tenant: contoso}}}
	run := func(api *collecttest.API) (string, []string) {
		t.Helper()
		sink := &memory{log: readLog(t, seed)}
		rep, err := newCollector(t, api, cfg, creds).Run(context.Background(), day1, sink.log, sink)
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, r := range slices.Concat(rep.Failed(), rep.Partial()) {
			failed = append(failed, r.String())
		}
		return strings.Join(lines(sink.log), "\n"), failed
	}

	// Throttled beyond the SDK's three tries, for a second by the quota's
	// header; then the second subscription answers 204.
	api := world(t)
	throttled := collecttest.Failure{Status: 429, Code: "429", Times: 3,
		Header: http.Header{"X-Ms-Ratelimit-Microsoft.costmanagement-Qpu-Retry-After": {"1"}}}
	api.Fail(sub1Path+query, throttled)
	api.Fail(sub2Path+query, collecttest.Failure{Status: 204, Times: -1})
	text, failed := run(api)
	if len(failed) > 0 || !strings.Contains(text, `"meter":"standard"`) {
		t.Fatalf("throttled, then 204: failed %v; the log:\n%s", failed, text)
	}
	var last429, first200 time.Time
	for _, r := range api.Requests() {
		switch {
		case !strings.HasSuffix(r.Path, sub1Path+query):
		case r.Status == 429:
			last429 = r.At
		case r.Status == 200 && first200.IsZero():
			first200 = r.At
		}
	}
	if first200.Sub(last429) < time.Second {
		t.Errorf("the query was asked again %s after the API asked to wait a second", first200.Sub(last429))
	}

	// The first page answers; the second is refused, and nothing after:
	// the subscription is not read, the other is.
	api = world(t)
	api.PageSize = 1
	api.Fail(sub1Path+query, collecttest.Failure{Status: 200}, collecttest.Failure{Status: 403, Code: "AuthorizationFailed"})
	if text, failed = run(api); len(failed) != 1 || !strings.Contains(failed[0], "subscriptions/"+collecttest.Sub1+" not read") ||
		!strings.Contains(failed[0], "403 Forbidden, AuthorizationFailed") {
		t.Errorf("a refused second page: failed %q, want the 403 said", failed)
	}
	if strings.Contains(text, sub1Path) || !strings.Contains(text, `"resource":"`+sub2Path) {
		t.Errorf("a refused second page: the log should hold the other subscription's costs only:\n%s", text)
	}
}

// TestNextPageOnTheAPIsHostOnly: a list's next page is asked only of the
// API's own host, since the request carries the API's token.
func TestNextPageOnTheAPIsHostOnly(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"value": [{"id": "u1"}], "@odata.nextLink": "https://graph.example.net/v1.0/users?$skiptoken=2"}`))
	}))
	defer srv.Close()
	cred := &collecttest.Credential{Tenant: contoso}
	c := newAPIClient(cred, srv.URL, srv.URL+"/.default", linkIn("@odata.nextLink"), policy.ClientOptions{Transport: srv.Client()})
	_, err := c.list(context.Background(), "/v1.0/users", func(page) {})
	if err == nil || !strings.Contains(err.Error(), "graph.example.net") || !strings.Contains(err.Error(), "sends its token nowhere else") {
		t.Errorf("a next link to another host: %v, want it refused", err)
	}
}

// TestTokenRefusedOnTheWay: a token that expired or was revoked between its
// issue and a request (401 ExpiredAuthenticationToken) is asked once more,
// with a new one: through the SDK's pagers, the requests pal makes itself,
// and the cost query.
func TestTokenRefusedOnTheWay(t *testing.T) {
	api := world(t)
	expired := collecttest.Failure{Status: 401, Code: "ExpiredAuthenticationToken"}
	api.Fail(sub1Path+assignments, expired)
	api.Fail(membersPath(fabOps), expired)
	api.Fail(sub1Path+"/providers/Microsoft.CostManagement/query", expired)
	creds := &collecttest.Credentials{Set: map[string]*collecttest.Credential{contoso: {Tenant: contoso}, fabrikam: {Tenant: fabrikam}}}
	sink := &memory{log: readLog(t, seed)}
	rep, err := newCollector(t, api, worldConfig(), creds).Run(context.Background(), day1, sink.log, sink)
	if err != nil {
		t.Fatal(err)
	}
	if failed := rep.Failed(); len(failed) > 0 {
		t.Errorf("failed: %v, want each request asked once more", failed)
	}
	refused := 0
	for _, r := range api.Requests() {
		if r.Status == http.StatusUnauthorized {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("%d requests refused their token, want the 3 the test refused", refused)
	}
}
