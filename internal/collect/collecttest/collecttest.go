package collecttest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// armAudience is the audience of Azure Resource Manager's tokens.
const armAudience = "https://management.core.windows.net/"

// API is a fake of the APIs pal collect reads. Its state may be changed
// between runs (a day passes); every method is safe for concurrent use.
type API struct {
	URL string
	srv *httptest.Server

	mu sync.Mutex
	// PageSize is how many records a page holds (default 2), so that
	// every list of more spans several pages.
	PageSize int
	lists    map[string][]json.RawMessage // by path, lower case
	tlists   map[string][]json.RawMessage // by tenant and path: Graph answers the token's directory
	subs     map[string][]json.RawMessage // the subscriptions each tenant's credential sees
	links    map[string]json.RawMessage   // the partner link of each tenant's credential
	costs    map[string][]CostRow         // by subscription
	audit    map[string][]AuditContent    // by tenant; none: no subscription started
	blobs    map[string][]Blob            // by container path, lower case
	failures map[string][]Failure         // by path, lower case
	requests []Request
	// Latency, when set, is how long each answer takes: long enough, the
	// requests a client sends at once are in flight together.
	Latency  time.Duration
	inFlight map[string]int // by the token's tenant
	maxIn    map[string]int
}

// CostRow is a resource's cost on one day, as Cost Management holds it.
type CostRow struct {
	Date                                    string // 2026-01-05
	ResourceID, PricingModel, PublisherType string
	Cost                                    string // as the API writes the number
}

// Failure is an answer given instead of the real one.
type Failure struct {
	// Status is the answer's: 200 lets the requests it answers through,
	// so that a failure after it fails a later page; 204 has no body.
	Status int
	Header http.Header
	Code   string // the error's code; its message says it is a test's
	// Times is how many requests it answers (0: one); -1: all of them.
	Times int
}

// Request is a request the API answered.
type Request struct {
	Method, Path, Query string
	Tenant              string // of the token
	Status              int
	At                  time.Time
}

// New starts an API, closed when the test ends.
func New(t testing.TB) *API {
	a := &API{PageSize: 2, lists: map[string][]json.RawMessage{}, tlists: map[string][]json.RawMessage{}, subs: map[string][]json.RawMessage{},
		links: map[string]json.RawMessage{}, costs: map[string][]CostRow{}, failures: map[string][]Failure{},
		audit: map[string][]AuditContent{}, blobs: map[string][]Blob{},
		inFlight: map[string]int{}, maxIn: map[string]int{}}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	a.URL = a.srv.URL
	t.Cleanup(a.srv.Close)
	return a
}

// ClientOptions point the SDK's clients at the API: its endpoint as Azure
// Resource Manager's (with the real audience), and a transport that
// trusts its certificate.
func (a *API) ClientOptions() policy.ClientOptions {
	return policy.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: a.URL + "/login/",
			Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: a.URL, Audience: armAudience}},
		},
		Transport: a.srv.Client(),
	}
}

// GraphEndpoint is Microsoft Graph's endpoint on the API.
func (a *API) GraphEndpoint() string { return a.URL }

// SetList sets the records a list answers: path is the request's path,
// /subscriptions/…/providers/Microsoft.Authorization/roleAssignments or
// /v1.0/users.
func (a *API) SetList(path string, records []json.RawMessage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lists[strings.ToLower(path)] = records
}

// SetTenantList sets the records a list answers a token of one tenant:
// Graph's lists (/v1.0/users) are the token's directory's, and so is the
// management-group tree (getEntities).
func (a *API) SetTenantList(tenant, path string, records []json.RawMessage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tlists[tenant+" "+strings.ToLower(path)] = records
}

// SetSubscriptions sets the subscriptions (ARM's objects) that a tenant's
// credential sees.
func (a *API) SetSubscriptions(tenant string, subs []json.RawMessage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.subs[tenant] = subs
}

// SetLink sets the partner link a tenant's credential holds (nil: none,
// a 404).
func (a *API) SetLink(tenant string, link json.RawMessage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.links[tenant] = link
}

// SetCosts sets a subscription's costs.
func (a *API) SetCosts(sub string, rows []CostRow) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.costs[strings.ToLower(sub)] = rows
}

// Fail makes the requests of a path answer with failures first, in
// order.
func (a *API) Fail(path string, f ...Failure) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failures[strings.ToLower(path)] = append(a.failures[strings.ToLower(path)], f...)
}

// Clear forgets every failure not yet given.
func (a *API) Clear() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failures = map[string][]Failure{}
}

// Requests returns the requests answered so far, and forgets them.
func (a *API) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.requests
	a.requests = nil
	return out
}

// Records reads a file of records: a JSON array, or one or more ARM or
// Graph pages ({"value": [...]}) one after another.
func Records(t testing.TB, file string) []json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var page struct {
			Value []json.RawMessage `json:"value"`
		}
		if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
			var arr []json.RawMessage
			json.Unmarshal(raw, &arr)
			out = append(out, arr...)
		} else if json.Unmarshal(raw, &page) == nil && page.Value != nil {
			out = append(out, page.Value...)
		} else {
			out = append(out, raw)
		}
	}
	return out
}

// MaxInFlight is the most requests a tenant's tokens had in flight at
// once.
func (a *API) MaxInFlight(tenant string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxIn[tenant]
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.ToLower(r.URL.Path)
	tenant, status := a.authorize(r, path)
	a.mu.Lock()
	a.inFlight[tenant]++
	a.maxIn[tenant] = max(a.maxIn[tenant], a.inFlight[tenant])
	latency := a.Latency
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.inFlight[tenant]--
		a.mu.Unlock()
	}()
	time.Sleep(latency)
	a.mu.Lock()
	if status == http.StatusOK {
		if fs := a.failures[path]; len(fs) > 0 {
			f := fs[0]
			if f.Times >= 0 {
				if f.Times <= 1 {
					a.failures[path] = fs[1:]
				} else {
					a.failures[path][0].Times--
				}
			}
			if f.Status != http.StatusOK {
				a.requests = append(a.requests, Request{r.Method, r.URL.Path, r.URL.RawQuery, tenant, f.Status, time.Now()})
				a.mu.Unlock()
				for k, v := range f.Header {
					w.Header()[k] = v
				}
				if f.Status == http.StatusNoContent {
					w.WriteHeader(f.Status)
					return
				}
				failWith(w, path, f.Status, f.Code, fmt.Sprintf("the test answers %d to %s %s", f.Status, r.Method, r.URL.Path))
				return
			}
		}
	}
	a.requests = append(a.requests, Request{r.Method, r.URL.Path, r.URL.RawQuery, tenant, status, time.Now()})
	a.mu.Unlock()
	switch {
	case status == http.StatusUnauthorized:
		failWith(w, path, status, "InvalidAuthenticationToken", "the access token is missing, expired, or for another API")
	case strings.HasPrefix(path, "/api/v1.0/"):
		a.office(w, r, tenant)
	case strings.HasPrefix(path, storagePrefix):
		a.storage(w, r)
	case path == "/subscriptions" && r.Method == http.MethodGet:
		a.mu.Lock()
		subs := a.subs[tenant]
		a.mu.Unlock()
		a.page(w, r, subs, "nextLink")
	case path == "/providers/microsoft.managementpartner/partners" && r.Method == http.MethodGet:
		a.mu.Lock()
		link := a.links[tenant]
		a.mu.Unlock()
		if link == nil {
			writeError(w, http.StatusNotFound, "PartnerNotFound", "No partner ID is associated with the caller")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(link)
	case strings.HasSuffix(path, "/providers/microsoft.costmanagement/query") && r.Method == http.MethodPost:
		a.query(w, r, path)
	case strings.HasPrefix(path, "/v1.0/"):
		a.mu.Lock()
		recs, ok := a.tlists[tenant+" "+path]
		if !ok {
			recs, ok = a.lists[path]
		}
		a.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", path))
			return
		}
		a.page(w, r, recs, "@odata.nextLink")
	default:
		// getEntities is a POST, its next pages too: Azure answers a GET of
		// its nextLink 405, as here.
		if (r.Method != http.MethodGet) != (path == "/providers/microsoft.management/getentities") {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" "+r.URL.Path)
			return
		}
		a.mu.Lock()
		recs, ok := a.tlists[tenant+" "+path]
		if !ok {
			recs, ok = a.lists[path]
		}
		a.mu.Unlock()
		if !ok {
			// An empty scope lists nothing; only an unknown API is a 404.
			if !strings.Contains(path, "/providers/microsoft.") {
				writeError(w, http.StatusNotFound, "NotFound", r.URL.Path)
				return
			}
			recs = []json.RawMessage{}
		}
		a.page(w, r, recs, "nextLink")
	}
}

// authorize checks the bearer token: issued by Credential, for the API of
// the path (Resource Manager's, Graph's, the Power Platform's, the Office
// 365 Management Activity API's, Azure Storage's), not expired. It
// returns the token's tenant.
func (a *API) authorize(r *http.Request, path string) (string, int) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", http.StatusUnauthorized
	}
	parts := strings.Split(tok, "|")
	if len(parts) != 5 || parts[0] != "test" {
		return "", http.StatusUnauthorized
	}
	tenant, scope := parts[1], parts[2]
	exp, _ := strconv.ParseInt(parts[3], 10, 64)
	want := armAudience + "/.default"
	switch {
	case strings.HasPrefix(path, "/v1.0/"):
		want = a.URL + "/.default"
	case strings.HasPrefix(path, "/providers/microsoft.businessappplatform/"), strings.HasPrefix(path, "/providers/microsoft.powerapps/"):
		want = "https://service.powerapps.com//.default"
	case strings.HasPrefix(path, "/providers/microsoft.processsimple/"):
		want = "https://service.flow.microsoft.com//.default"
	case strings.HasPrefix(path, "/api/v1.0/"):
		want = "https://manage.office.com/.default"
	case strings.HasPrefix(path, storagePrefix):
		want = "https://storage.azure.com/.default"
	}
	// A token still valid when sent may expire on its way: a server
	// allows for that (Entra's allow minutes; this one a quarter second).
	if scope != want || time.Now().Add(-250*time.Millisecond).UnixMilli() >= exp {
		return tenant, http.StatusUnauthorized
	}
	return tenant, http.StatusOK
}

// page answers one page of a list: the records from $skiptoken on, and
// the link to the next page, as ARM ("nextLink") or Graph
// ("@odata.nextLink") writes it.
func (a *API) page(w http.ResponseWriter, r *http.Request, recs []json.RawMessage, linkName string) {
	a.mu.Lock()
	size := max(a.PageSize, 1)
	a.mu.Unlock()
	from, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	to := min(from+size, len(recs))
	body := map[string]any{"value": nonNil(recs[min(from, len(recs)):to])}
	if to < len(recs) {
		q := r.URL.Query()
		q.Set("$skiptoken", strconv.Itoa(to))
		body[linkName] = a.URL + r.URL.Path + "?" + q.Encode()
	} else if linkName == "nextLink" {
		body[linkName] = nil
	}
	if linkName == "@odata.nextLink" {
		body["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"
	}
	writeJSON(w, body)
}

// query answers Cost Management's query: the rows of the subscription's
// costs in the time period and of the publisher type the filter asks for,
// summed by day, resource and pricing model, in the columns the API
// writes (the aggregation, the groupings, UsageDate, Currency).
func (a *API) query(w http.ResponseWriter, r *http.Request, path string) {
	var q struct {
		Type       string `json:"type"`
		Timeframe  string `json:"timeframe"`
		TimePeriod struct{ From, To time.Time }
		Dataset    struct {
			Granularity string `json:"granularity"`
			Aggregation map[string]struct{ Name, Function string }
			Grouping    []struct{ Type, Name string }
			Filter      json.RawMessage
		} `json:"dataset"`
	}
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	switch {
	case len(q.Dataset.Grouping) > 2:
		writeError(w, http.StatusBadRequest, "BadRequest", "Invalid query definition: Query can have up to 2 group by clauses.")
		return
	case q.Timeframe != "Custom" || q.Dataset.Granularity != "Daily" || q.Type != "ActualCost":
		writeError(w, http.StatusBadRequest, "BadRequest", "the fake answers daily actual cost in a custom time period only")
		return
	}
	publisher := ""
	if i := bytes.Index(q.Dataset.Filter, []byte(`"PublisherType"`)); i >= 0 {
		var rest struct {
			Values []string `json:"values"`
		}
		// The comparison's values follow its name.
		obj := q.Dataset.Filter[bytes.LastIndexByte(q.Dataset.Filter[:i], '{'):]
		json.NewDecoder(bytes.NewReader(obj)).Decode(&rest)
		if len(rest.Values) == 1 {
			publisher = rest.Values[0]
		}
	}
	sub := strings.Split(strings.TrimPrefix(path, "/subscriptions/"), "/")[0]
	a.mu.Lock()
	costs := slices.Clone(a.costs[sub])
	a.mu.Unlock()
	var rows [][]any
	for _, c := range costs {
		day, _ := time.Parse(time.DateOnly, c.Date)
		if day.Before(q.TimePeriod.From.Truncate(24*time.Hour)) || day.After(q.TimePeriod.To) || publisher != "" && !strings.EqualFold(c.PublisherType, publisher) {
			continue
		}
		date, _ := strconv.Atoi(strings.ReplaceAll(c.Date, "-", ""))
		rows = append(rows, []any{json.Number(c.Cost), strings.ToLower(c.ResourceID), c.PricingModel, date, "EUR"})
	}
	a.mu.Lock()
	size := max(a.PageSize, 1)
	a.mu.Unlock()
	from, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	to := min(from+size, len(rows))
	props := map[string]any{
		"nextLink": nil,
		"columns": []map[string]string{
			{"name": "PreTaxCost", "type": "Number"}, {"name": "ResourceId", "type": "String"},
			{"name": "PricingModel", "type": "String"}, {"name": "UsageDate", "type": "Number"}, {"name": "Currency", "type": "String"},
		},
		"rows": nonNil(rows[min(from, len(rows)):to]),
	}
	if to < len(rows) {
		u := r.URL.Query()
		u.Set("$skiptoken", strconv.Itoa(to))
		props["nextLink"] = a.URL + r.URL.Path + "?" + u.Encode()
	}
	writeJSON(w, map[string]any{
		"id":         strings.TrimPrefix(r.URL.Path, "/") + "/00000000-0000-0000-0000-000000000000",
		"name":       "00000000-0000-0000-0000-000000000000",
		"type":       "Microsoft.CostManagement/query",
		"location":   nil,
		"sku":        nil,
		"eTag":       nil,
		"properties": props,
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

// failWith answers an error as the API of the path writes it: Azure
// Storage in XML, the others in JSON.
func failWith(w http.ResponseWriter, path string, status int, code, message string) {
	if strings.HasPrefix(path, storagePrefix) {
		writeStorageError(w, status, code, message)
		return
	}
	writeError(w, status, code, message)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// Credential is a credential of one tenant that hands out tokens the API
// accepts: each names its tenant, its scope and its expiry (Unix
// milliseconds).
type Credential struct {
	Tenant string
	// Lifetime is how long a token lasts (default an hour).
	Lifetime time.Duration
	// Err, when set, is every token's answer: a machine with no credential.
	Err error

	mu     sync.Mutex
	issued int
}

// GetToken issues a token.
func (c *Credential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.issued++
	if c.Err != nil {
		return azcore.AccessToken{}, c.Err
	}
	if len(o.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("asked for scopes %v: one scope a token", o.Scopes)
	}
	exp := time.Now().Add(cmp.Or(c.Lifetime, time.Hour))
	return azcore.AccessToken{Token: fmt.Sprintf("test|%s|%s|%d|%d", c.Tenant, o.Scopes[0], exp.UnixMilli(), c.issued), ExpiresOn: exp}, nil
}

// Issued is how many tokens the credential handed out.
func (c *Credential) Issued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.issued
}

// Credentials are test credentials by tenant, made as asked.
type Credentials struct {
	mu  sync.Mutex
	Set map[string]*Credential
}

// For returns the credential of a tenant: a collector's Options.Credential.
func (cs *Credentials) For(tenant string) (azcore.TokenCredential, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.Set == nil {
		cs.Set = map[string]*Credential{}
	}
	if cs.Set[tenant] == nil {
		cs.Set[tenant] = &Credential{Tenant: tenant}
	}
	return cs.Set[tenant], nil
}
