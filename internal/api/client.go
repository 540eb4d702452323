package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
)

// Client is a typed client of the pal service: each method is one route,
// its answer the type the service writes. The command line asks the service
// only through it.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the service at base (its URL, without a
// trailing slash) that presents token, over hc.
func NewClient(base, token string, hc *http.Client) *Client {
	return &Client{base: base, token: token, http: hc}
}

// Error is an error answer of the service: its code and message.
type Error struct{ Code, Message string }

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Do sends a request and decodes a JSON answer into out. An error answer
// comes back as an *Error that says the service's code and message.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body io.Reader, out any) error {
	answer, err := c.Open(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer answer.Close()
	if err := json.NewDecoder(answer).Decode(out); err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return nil
}

// Open sends a request and returns the answer's body, to be closed.
func (c *Client) Open(ctx context.Context, method, path string, query url.Values, body io.Reader) (io.ReadCloser, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	resp, err := c.http.Do(req)
	// A question the service cannot answer for the moment (it loads its
	// state, or a bucket of tenants changes hands) is asked again when it
	// says, for a minute at most.
	for waited := time.Duration(0); err == nil && body == nil && resp.StatusCode == http.StatusServiceUnavailable; {
		after, perr := strconv.Atoi(resp.Header.Get("Retry-After"))
		wait := min(time.Duration(after)*time.Second, 10*time.Second)
		if perr != nil || after < 1 || waited+wait > time.Minute {
			break
		}
		resp.Body.Close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		waited += wait
		resp, err = c.http.Do(req)
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct {
			Error Error `json:"error"`
		}
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error.Code == "" {
			return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		return nil, &e.Error
	}
	return resp.Body, nil
}

// query makes a query of name and value pairs, leaving out empty values.
func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// Push posts a batch of events (NDJSON, log format v1): POST /v1/events.
func (c *Client) Push(ctx context.Context, ndjson io.Reader) (IngestResult, error) {
	var res IngestResult
	err := c.Do(ctx, http.MethodPost, "/v1/events", nil, ndjson, &res)
	return res, err
}

// PushConsumption sends a consumption file (Parquet, the columns of pal
// report azure --consumption): POST /v1/consumption.
func (c *Client) PushConsumption(ctx context.Context, parquet io.Reader) (IngestResult, error) {
	var res IngestResult
	err := c.Do(ctx, http.MethodPost, "/v1/consumption", nil, parquet, &res)
	return res, err
}

// Log opens the log the caller may read, as NDJSON: GET /v1/log.
func (c *Client) Log(ctx context.Context) (io.ReadCloser, error) {
	return c.Open(ctx, http.MethodGet, "/v1/log", nil, nil)
}

// Me says who the caller is: GET /v1/me.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var me Me
	err := c.Do(ctx, http.MethodGet, "/v1/me", nil, nil, &me)
	return me, err
}

// Attribution reads every page of GET /v1/attribution at an instant
// (RFC 3339; "" for now), the later pages at the instant the first
// answered.
func (c *Client) Attribution(ctx context.Context, at string) (AttributionPage, error) {
	out := AttributionPage{Resources: []attribution.Row{}}
	q := query("at", at)
	for {
		var page AttributionPage
		if err := c.Do(ctx, http.MethodGet, "/v1/attribution", q, nil, &page); err != nil {
			return out, err
		}
		out.At, out.Resources = page.At, append(out.Resources, page.Resources...)
		if page.Next == nil {
			return out, nil
		}
		q.Set("at", page.At.Format(time.RFC3339Nano))
		q.Set("after", *page.Next)
	}
}

// Monthly reads every page of GET /v1/reports/monthly of a month.
func (c *Client) Monthly(ctx context.Context, month string) (metrics.Monthly, error) {
	m := metrics.Monthly{Resources: []metrics.ResourceRow{}, Workloads: []metrics.WorkloadRow{}}
	q := query("month", month)
	for {
		var page MonthlyPage
		if err := c.Do(ctx, http.MethodGet, "/v1/reports/monthly", q, nil, &page); err != nil {
			return m, err
		}
		m.Month, m.Orgs = page.Month, page.Orgs
		m.Resources, m.Workloads = append(m.Resources, page.Resources...), append(m.Workloads, page.Workloads...)
		if page.Next == nil {
			return m, nil
		}
		q.Set("after", *page.Next)
	}
}

// Changes reads the whole feed of credit changes the caller may read
// (GET /v1/changes), of one tenant when tenant is not "".
func (c *Client) Changes(ctx context.Context, tenant string) ([]fold.Change, error) {
	out := []fold.Change{}
	var since int64
	for {
		var page ChangesPage
		if err := c.Do(ctx, http.MethodGet, "/v1/changes", query("tenant", tenant, "since", strconv.FormatInt(since, 10)), nil, &page); err != nil {
			return out, err
		}
		if len(page.Changes) == 0 {
			return out, nil
		}
		for _, raw := range page.Changes {
			var ch fold.Change
			if err := json.Unmarshal(raw, &ch); err != nil {
				return out, fmt.Errorf("GET /v1/changes: read a change: %w", err)
			}
			out = append(out, ch)
		}
		since = page.Next
	}
}

// Explain explains a Power Platform resource at an instant ("" for now):
// GET /v1/explain.
func (c *Client) Explain(ctx context.Context, tenant, resource, at string) (Explanation, error) {
	var x Explanation
	err := c.Do(ctx, http.MethodGet, "/v1/explain", query("tenant", tenant, "resource", resource, "at", at), nil, &x)
	return x, err
}

// ExplainAzure explains an Azure resource at an instant: GET /v1/explain.
func (c *Client) ExplainAzure(ctx context.Context, tenant, resource, at string) (AzureExplanation, error) {
	var x AzureExplanation
	err := c.Do(ctx, http.MethodGet, "/v1/explain", query("tenant", tenant, "resource", resource, "at", at), nil, &x)
	return x, err
}

// AzureReport is GET /v1/reports/azure of a month.
func (c *Client) AzureReport(ctx context.Context, month string) (azure.Report, error) {
	var rep azure.Report
	err := c.Do(ctx, http.MethodGet, "/v1/reports/azure", query("month", month), nil, &rep)
	return rep, err
}

// PCS is GET /v1/reports/pcs of an organisation and a month.
func (c *Client) PCS(ctx context.Context, month, org string) (metrics.Score, error) {
	var s metrics.Score
	err := c.Do(ctx, http.MethodGet, "/v1/reports/pcs", query("month", month, "org", org), nil, &s)
	return s, err
}

// Diagnosis is GET /v1/diagnosis of an organisation ("" for the caller's
// own).
func (c *Client) Diagnosis(ctx context.Context, org string) (attribution.Diagnosis, error) {
	var d attribution.Diagnosis
	err := c.Do(ctx, http.MethodGet, "/v1/diagnosis", query("org", org), nil, &d)
	return d, err
}

// WhatIf posts hypothetical events of a tenant: POST /v1/whatif.
func (c *Client) WhatIf(ctx context.Context, tenant string, ndjson io.Reader) (WhatIf, error) {
	var w WhatIf
	err := c.Do(ctx, http.MethodPost, "/v1/whatif", query("tenant", tenant), ndjson, &w)
	return w, err
}

// OrgLinks is GET /v1/links of an organisation, in one tenant when tenant
// is not "".
func (c *Client) OrgLinks(ctx context.Context, org, tenant string) (OrgLinks, error) {
	var l OrgLinks
	err := c.Do(ctx, http.MethodGet, "/v1/links", query("org", org, "tenant", tenant), nil, &l)
	return l, err
}

// TenantLinks is GET /v1/links of a tenant.
func (c *Client) TenantLinks(ctx context.Context, tenant string) (TenantLinks, error) {
	var l TenantLinks
	err := c.Do(ctx, http.MethodGet, "/v1/links", query("tenant", tenant), nil, &l)
	return l, err
}

// Base is the service's URL.
func (c *Client) Base() string { return c.base }
