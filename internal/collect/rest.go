package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// apiClient reads an API that Azure Resource Manager does not answer —
// Microsoft Graph, the Power Platform admin API, the Office 365 Management
// Activity API — through azcore's pipeline: the same retries, back-off,
// telemetry and token handling as the Resource Manager clients, with a
// token for the API's own scope. pal reads a few lists of each: Microsoft's
// Graph SDK for Go would add a large generated module for two of them, and
// Microsoft publishes no Go SDK for the other two.
type apiClient struct {
	pl       runtime.Pipeline
	endpoint string // https://graph.microsoft.com, without a trailing /
	next     nextPage
}

// nextPage says where the next page of a list is, given a page's answer:
// "" after the last.
type nextPage func(h http.Header, body []byte) (string, error)

// linkIn finds the next page in a member of the page's JSON object:
// Graph's @odata.nextLink, the Power Platform's nextLink.
func linkIn(member string) nextPage {
	return func(_ http.Header, body []byte) (string, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), &m); err != nil {
			return "", fmt.Errorf("not a JSON object with a %s: %w", member, err)
		}
		var link *string
		if raw, ok := m[member]; ok {
			if err := json.Unmarshal(raw, &link); err != nil {
				return "", fmt.Errorf("%s is not a link: %w", member, err)
			}
		}
		if link == nil {
			return "", nil
		}
		return *link, nil
	}
}

// linkHeader finds the next page in a header of the answer: the Office
// 365 Management Activity API's NextPageUri.
func linkHeader(name string) nextPage {
	return func(h http.Header, _ []byte) (string, error) { return h.Get(name), nil }
}

// newAPIClient makes a client of the API at endpoint, whose tokens are
// asked for scope.
func newAPIClient(cred azcore.TokenCredential, endpoint, scope string, next nextPage, o policy.ClientOptions) *apiClient {
	auth := runtime.NewBearerTokenPolicy(cred, []string{scope}, nil)
	pl := runtime.NewPipeline(moduleName, moduleVersion, runtime.PipelineOptions{PerRetry: []policy.Policy{auth}}, &o)
	return &apiClient{pl: pl, endpoint: strings.TrimRight(endpoint, "/"), next: next}
}

// list reads every page of a list, from the endpoint's path on, following
// each page's link to the next; progress is told of each page.
func (c *apiClient) list(ctx context.Context, path string, progress func(page)) ([]page, error) {
	var out []page
	next := c.endpoint + path
	for next != "" {
		req, err := runtime.NewRequest(ctx, http.MethodGet, next)
		if err != nil {
			return nil, err
		}
		req.Raw().Header.Set("Accept", "application/json")
		resp, err := send(c.pl, req)
		if err != nil {
			return nil, err
		}
		pg, err := captured(resp, len(out)+1)
		if err != nil {
			return nil, err
		}
		out = append(out, pg)
		progress(pg)
		if next, err = c.next(resp.Header, pg.body); err != nil {
			return nil, &RequestError{Method: http.MethodGet, URL: bareURL(req.Raw()), Err: err}
		}
		if next != "" {
			if err := c.own(next); err != nil {
				return nil, &RequestError{Method: http.MethodGet, URL: bareURL(req.Raw()), Err: err}
			}
		}
	}
	return out, nil
}

// own refuses a link an answer of the API gave that is not on the API's
// own host: a request to it carries the API's token.
func (c *apiClient) own(link string) error {
	u, err := url.Parse(link)
	base, _ := url.Parse(c.endpoint)
	if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, base.Host) {
		return fmt.Errorf("the API gave the link %q, which is not on %s: pal sends its token nowhere else", link, c.endpoint)
	}
	return nil
}

// get reads one document at a URL an answer of the API gave (the Office
// 365 Management Activity API's contentUri). The URL must be on the API's
// own host: the request carries the API's token.
func (c *apiClient) get(ctx context.Context, link string) (page, error) {
	if err := c.own(link); err != nil {
		return page{}, err
	}
	req, err := runtime.NewRequest(ctx, http.MethodGet, link)
	if err != nil {
		return page{}, err
	}
	req.Raw().Header.Set("Accept", "application/json")
	return do(c.pl, req, 1)
}
