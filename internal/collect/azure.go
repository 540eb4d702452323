package collect

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/costmanagement/armcostmanagement/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/managedservices/armmanagedservices"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/managementgroups/armmanagementgroups"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"
)

// moduleName and moduleVersion name pal in the User-Agent of its requests
// (azcore's telemetry policy), so that a tenant's administrator sees who
// reads.
const (
	moduleName    = "pal/collect"
	moduleVersion = "v1.0.0"
)

// clouds are the Azure clouds pal knows: the SDK's configuration, and the
// endpoints of the other APIs in each. pal knows those of the Power
// Platform admin API and the Office 365 Management Activity API in the
// public cloud only: the government clouds have several of each (GCC, GCC
// High, DoD), which the Azure cloud does not tell apart.
var clouds = map[string]struct {
	arm   cloud.Configuration
	graph string
	// bap, powerApps and flow are the Power Platform admin API's hosts
	// (environments; apps and their permissions; flows), office the
	// Management Activity API's.
	bap, powerApps, flow, office string
}{
	"public": {arm: cloud.AzurePublic, graph: "https://graph.microsoft.com",
		bap: "https://api.bap.microsoft.com", powerApps: "https://api.powerapps.com", flow: "https://api.flow.microsoft.com",
		office: "https://manage.office.com"},
	"usgovernment": {arm: cloud.AzureGovernment, graph: "https://graph.microsoft.us"},
	"china":        {arm: cloud.AzureChina, graph: "https://microsoftgraph.chinacloudapi.cn"},
}

// The scopes of the tokens of the APIs outside Resource Manager whose
// audience is not their endpoint: the Power Platform admin API's (the
// admin cmdlets' audiences, https://service.powerapps.com/ for the
// environments and apps, https://service.flow.microsoft.com/ for the
// flows) and the Office 365 Management Activity API's.
const (
	powerAppsScope = "https://service.powerapps.com//.default"
	flowScope      = "https://service.flow.microsoft.com//.default"
	officeScope    = "https://manage.office.com/.default"
)

// armClients are the Azure Resource Manager clients of one credential:
// the SDK's, one for each API pal reads, and the bare client (azcore's
// pipeline, with the credential) for the two calls no SDK module makes
// here — the caller's partner link, and the cost query's next pages.
type armClients struct {
	raw           *arm.Client
	subscriptions *armsubscriptions.Client
	assignments   *armauthorization.RoleAssignmentsClient
	definitions   *armauthorization.RoleDefinitionsClient
	eligibilities *armauthorization.RoleEligibilityScheduleInstancesClient
	instances     *armauthorization.RoleAssignmentScheduleInstancesClient
	requests      *armauthorization.RoleAssignmentScheduleRequestsClient
	entities      *armmanagementgroups.EntitiesClient
	delegations   *armmanagedservices.RegistrationAssignmentsClient
	query         *armcostmanagement.QueryClient
}

// newARMClients makes the clients of a credential. The constructors fail
// only on options they cannot use.
func newARMClients(cred azcore.TokenCredential, o *arm.ClientOptions) (*armClients, error) {
	c := &armClients{}
	var err error
	if c.raw, err = arm.NewClient(moduleName, moduleVersion, cred, o); err != nil {
		return nil, err
	}
	if c.subscriptions, err = armsubscriptions.NewClient(cred, o); err != nil {
		return nil, err
	}
	// The subscription given here serves calls pal does not make; the
	// lists it makes name their scope.
	if c.assignments, err = armauthorization.NewRoleAssignmentsClient("", cred, o); err != nil {
		return nil, err
	}
	if c.definitions, err = armauthorization.NewRoleDefinitionsClient(cred, o); err != nil {
		return nil, err
	}
	if c.eligibilities, err = armauthorization.NewRoleEligibilityScheduleInstancesClient(cred, o); err != nil {
		return nil, err
	}
	if c.instances, err = armauthorization.NewRoleAssignmentScheduleInstancesClient(cred, o); err != nil {
		return nil, err
	}
	if c.requests, err = armauthorization.NewRoleAssignmentScheduleRequestsClient(cred, o); err != nil {
		return nil, err
	}
	if c.entities, err = armmanagementgroups.NewEntitiesClient(cred, o); err != nil {
		return nil, err
	}
	if c.delegations, err = armmanagedservices.NewRegistrationAssignmentsClient(cred, o); err != nil {
		return nil, err
	}
	if c.query, err = armcostmanagement.NewQueryClient(cred, o); err != nil {
		return nil, err
	}
	return c, nil
}

// page is one page of a list, its body as the API wrote it: what an
// operator's az rest would have saved, so that the importers read the
// same bytes whether the page was fetched or exported.
type page struct {
	name string // the request, for the importers' problems
	body []byte
}

// pages fetches every page of one of the SDK's list pagers. The SDK makes
// the requests (the credential's token, the retries, the nextLink); the
// response of each is captured, and its body kept.
func pages[T any](ctx context.Context, p *runtime.Pager[T], progress func(page)) ([]page, error) {
	var out []page
	for p.More() {
		pg, err := capture(ctx, len(out)+1, func(ctx context.Context) error {
			_, err := p.NextPage(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, pg)
		progress(pg)
	}
	return out, nil
}

// capture makes the request of page n through fetch, which the SDK makes,
// and keeps its response's body.
func capture(ctx context.Context, n int, fetch func(context.Context) error) (page, error) {
	var raw *http.Response
	if err := fetch(policy.WithCaptureResponse(ctx, &raw)); err != nil {
		return page{}, requestError(err)
	}
	return captured(raw, n)
}

// captured reads the body of a captured response, which the SDK read and
// kept (runtime.Payload reads it again from memory).
func captured(raw *http.Response, n int) (page, error) {
	if raw == nil {
		return page{}, errors.New("the SDK returned a page without its response")
	}
	body, err := runtime.Payload(raw)
	if err != nil {
		return page{}, &RequestError{Method: raw.Request.Method, URL: bareURL(raw.Request), Err: err}
	}
	return page{name: fmt.Sprintf("%s %s (page %d)", raw.Request.Method, bareURL(raw.Request), n), body: body}, nil
}

// do sends a request through a pipeline and returns its page; an answer
// of another status than ok (200 when none is given) is a *RequestError.
func do(pl runtime.Pipeline, req *policy.Request, n int, ok ...int) (page, error) {
	resp, err := send(pl, req, ok...)
	if err != nil {
		return page{}, err
	}
	return captured(resp, n)
}

// send sends a request through a pipeline and returns its answer, of a
// status in ok (200 when none is given); any other is a *RequestError.
func send(pl runtime.Pipeline, req *policy.Request, ok ...int) (*http.Response, error) {
	resp, err := pl.Do(req)
	if err != nil {
		return nil, requestError(&RequestError{Method: req.Raw().Method, URL: bareURL(req.Raw()), Err: err})
	}
	if len(ok) == 0 {
		ok = []int{http.StatusOK}
	}
	if !runtime.HasStatusCode(resp, ok...) {
		return nil, requestError(runtime.NewResponseError(resp))
	}
	return resp, nil
}

// reauthorize asks a request once more when its token is refused (401): a
// token that expired or was revoked between its issue and the request
// (ExpiredAuthenticationToken). The bearer token policy, after this one,
// then has forgotten it and asks the credential for another, but does not
// ask again itself.
type reauthorize struct{}

func (reauthorize) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || resp.StatusCode != http.StatusUnauthorized || req.RewindBody() != nil {
		return resp, err
	}
	resp.Body.Close()
	return req.Next()
}

// RequestError is a request that failed: which, and why, in the API's own
// words.
type RequestError struct {
	Method, URL string
	// Status is the HTTP status of the last answer; 0 when none came.
	Status int
	// Code and Message are the API's error ({"error": {"code",
	// "message"}}).
	Code, Message string
	// RetryAfter is the wait a 429 or 503 asked for, as the API wrote it.
	RetryAfter string
	// costWait is the wait Cost Management's headers asked for.
	costWait time.Duration
	// Err is why no answer came.
	Err error
}

func (e *RequestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", e.Method, e.URL)
	if e.Status == 0 {
		b.WriteString(e.Err.Error())
		return b.String()
	}
	fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, ", %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimSpace(e.Message))
	}
	if e.RetryAfter != "" {
		fmt.Fprintf(&b, " (still throttled after the retries; the API asked to wait %s more)", e.RetryAfter)
	}
	return b.String()
}

func (e *RequestError) Unwrap() error { return e.Err }

// requestError turns the SDK's error into a *RequestError: the method and
// URL without its query, the status, and the API's code and message
// rather than the SDK's dump of the whole answer.
func requestError(err error) error {
	var re *RequestError
	if errors.As(err, &re) {
		if errors.Is(re.Err, context.DeadlineExceeded) {
			re.Err = errors.New("no answer within the request timeout (request_timeout), after the retries")
		}
		return re
	}
	var rerr *azcore.ResponseError
	if !errors.As(err, &rerr) || rerr.RawResponse == nil {
		return err
	}
	resp := rerr.RawResponse
	out := &RequestError{Status: rerr.StatusCode, Code: rerr.ErrorCode, Err: err}
	if resp.Request != nil {
		out.Method, out.URL = resp.Request.Method, bareURL(resp.Request)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		out.RetryAfter = retryAfter(resp.Header)
		out.costWait = costWait(resp.Header)
	}
	if body, err := runtime.Payload(resp); err == nil {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		// Azure Storage writes its errors in XML: <Error><Code>…
		var x struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		switch body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")); {
		case json.Unmarshal(body, &e) == nil:
			out.Code = cmp.Or(e.Error.Code, out.Code)
			out.Message = e.Error.Message
		case xml.Unmarshal(body, &x) == nil:
			out.Code = cmp.Or(x.Code, out.Code)
			out.Message, _, _ = strings.Cut(x.Message, "\n") // then its RequestId and Time
		}
	}
	return out
}

// retryAfter reads the wait an answer asks for, in any of the headers
// Azure writes it in.
func retryAfter(h http.Header) string {
	if ms := cmp.Or(h.Get("retry-after-ms"), h.Get("x-ms-retry-after-ms")); ms != "" {
		return ms + "ms"
	}
	if s := h.Get("Retry-After"); s != "" {
		if _, err := time.Parse(time.RFC1123, s); err == nil {
			return "until " + s
		}
		return s + "s"
	}
	if wait := costWait(h); wait > 0 {
		return wait.String()
	}
	return ""
}

// costWait reads the wait Cost Management asks for: not in Retry-After,
// but in headers of its own, one a quota
// (x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after, -entity-,
// -tenant-, -client-), in seconds; the longest of them.
func costWait(h http.Header) time.Duration {
	var wait time.Duration
	for name, values := range h {
		name = strings.ToLower(name)
		if !strings.HasPrefix(name, "x-ms-ratelimit-microsoft.costmanagement-") || !strings.HasSuffix(name, "-retry-after") || len(values) == 0 {
			continue
		}
		if s, err := strconv.Atoi(strings.TrimSpace(values[0])); err == nil {
			wait = max(wait, time.Duration(s)*time.Second)
		}
	}
	return wait
}

// bareURL is a request's URL without its query: the API and scope, not
// the api-version or skip token.
func bareURL(r *http.Request) string {
	u := *r.URL
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}
