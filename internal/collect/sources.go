package collect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/costmanagement/armcostmanagement/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/managedservices/armmanagedservices"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/managementgroups/armmanagementgroups"

	"github.com/palproject/pal/internal/imports"
)

// target is a tenant as one run reads it: its scopes, each subscription
// with the clients of the credential that reads it, and its sources.
type target struct {
	tenant  string
	sources []string
	// arm and own are the clients of the tenant's own credential; nil
	// for a tenant read only through Azure Lighthouse, where a partner's
	// credential reaches the delegated subscriptions and nothing else.
	arm  *armClients
	own  *tenantClients
	subs []subscription
	// exports are the cost exports azure-costs reads instead of the cost
	// query.
	exports []*costExport
	// groups are the management groups to read; members the security
	// groups whose members the groups source reads (groupsOf, set before
	// the source is read).
	groups, members []string
	// unlisted is why the tenant's subscriptions could not be listed: the
	// sources that read them fail with it.
	unlisted error
	// sem bounds the requests in flight to the tenant.
	sem chan struct{}
}

// subscription is a subscription to read and the clients that reach it.
type subscription struct {
	id  string
	arm *armClients
}

func (s subscription) where() string { return "subscriptions/" + s.id }

func (t *target) reads(source string) bool { return slices.Contains(t.sources, source) }

// readsSubscriptions reports whether a source reads the target's
// subscriptions: azure-costs does not when it reads cost exports.
func (t *target) readsSubscriptions(source string) bool {
	return slices.Contains(subscriptionSources, source) && (source != "azure-costs" || len(t.exports) == 0)
}

// call is one import of a source's pages: a group's members are imported
// one group at a time.
type call struct {
	pages []page
	group string
}

// fetched is what a source's requests brought: the pages to import, a
// word for the report where there is nothing to import, and the scopes it
// could not read while it read others.
type fetched struct {
	calls  []call
	note   string
	missed []Missed
}

// Missed is a scope that a source could not read, while it read the
// others: a subscription or management group on which the credential holds
// no role, or that failed. The source is written without it, and what the
// log holds of it stays as it is.
type Missed struct {
	Scope string // as Resource Manager names it: subscriptions/…, providers/…/managementGroups/…
	Err   error
}

// subscriptionSources read subscriptions: without them known, they fail.
var subscriptionSources = []string{"azure-roles", "azure-pim", "lighthouse", "azure-costs"}

// fetch makes a source's requests for a target.
func (r *run) fetch(ctx context.Context, t *target, source string, st *counter) (fetched, error) {
	if t.unlisted != nil && t.readsSubscriptions(source) {
		return fetched{}, fmt.Errorf("the tenant's subscriptions could not be listed: %w", t.unlisted)
	}
	one := func(pgs []page, err error) (fetched, error) {
		return fetched{calls: []call{{pages: pgs}}}, err
	}
	apart := func(pgs []page, missed []Missed, err error) (fetched, error) {
		return fetched{calls: []call{{pages: pgs}}, missed: missed}, err
	}
	switch source {
	case "management-groups":
		return one(withSlot(ctx, t, func() ([]page, error) {
			return entities(ctx, t.arm.entities, st.page)
		}))
	case "users":
		return one(withSlot(ctx, t, func() ([]page, error) {
			return t.own.graph.list(ctx, "/v1.0/users?$select=id,userPrincipalName,userType,createdDateTime,displayName&$top=999", st.page)
		}))
	case "azure-roles":
		return apart(r.roles(ctx, t, st))
	case "azure-pim":
		return apart(r.pim(ctx, t, st))
	case "groups":
		return r.members(ctx, t, st)
	case "lighthouse":
		return apart(eachApart(ctx, t, t.subs, func(s subscription) ([]page, error) {
			return pages(ctx, s.arm.delegations.NewListPager("subscriptions/"+s.id,
				&armmanagedservices.RegistrationAssignmentsClientListOptions{ExpandRegistrationDefinition: to.Ptr(true)}), st.page)
		}))
	case "links":
		return r.link(ctx, t, st)
	case "azure-costs":
		if len(t.exports) > 0 {
			return r.costExports(ctx, t, st)
		}
		return apart(r.costs(ctx, t, st))
	case "powerapps":
		return one(r.powerApps(ctx, t, st))
	case "audit":
		return one(r.audit(ctx, t, st))
	}
	return fetched{}, fmt.Errorf("pal does not collect %s", source)
}

// scope is a scope of role assignments and PIM lists, with the clients
// that reach it.
type scope struct {
	path string // without the leading "/", as the SDK joins it
	arm  *armClients
	mg   bool
}

func (s scope) where() string { return s.path }

// scopes lists a target's subscriptions and management groups.
func (t *target) scopes() []scope {
	var out []scope
	for _, s := range t.subs {
		out = append(out, scope{path: "subscriptions/" + s.id, arm: s.arm})
	}
	for _, g := range t.groups {
		out = append(out, scope{path: "providers/Microsoft.Management/managementGroups/" + g, arm: t.arm, mg: true})
	}
	return out
}

// roles lists the custom role definitions and the role assignments of each
// scope: the definitions name the custom roles the assignments give by
// GUID alone (the importer knows the built-in ones). At a management group
// the list asks for the assignments at or above it (atScope()), those
// below being listed at their subscriptions.
func (r *run) roles(ctx context.Context, t *target, st *counter) ([]page, []Missed, error) {
	return eachApart(ctx, t, t.scopes(), func(s scope) ([]page, error) {
		defs, err := pages(ctx, s.arm.definitions.NewListPager(s.path,
			&armauthorization.RoleDefinitionsClientListOptions{Filter: to.Ptr("type eq 'CustomRole'")}), st.page)
		if err != nil {
			return nil, err
		}
		var o *armauthorization.RoleAssignmentsClientListForScopeOptions
		if s.mg {
			o = &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: to.Ptr("atScope()")}
		}
		as, err := pages(ctx, s.arm.assignments.NewListForScopePager(s.path, o), st.page)
		return append(defs, as...), err
	})
}

// pim lists, at each scope, the role eligibility schedule instances, the
// role assignment schedule instances (activations) and the requests (the
// only record of activations past).
func (r *run) pim(ctx context.Context, t *target, st *counter) ([]page, []Missed, error) {
	return eachApart(ctx, t, t.scopes(), func(s scope) ([]page, error) {
		el, err := pages(ctx, s.arm.eligibilities.NewListForScopePager(s.path, nil), st.page)
		if err != nil {
			return nil, err
		}
		in, err := pages(ctx, s.arm.instances.NewListForScopePager(s.path, nil), st.page)
		if err != nil {
			return nil, err
		}
		rq, err := pages(ctx, s.arm.requests.NewListForScopePager(s.path, nil), st.page)
		return slices.Concat(el, in, rq), err
	})
}

// members lists the members of the groups a target reads (groupsOf). A
// group the directory no longer holds is reported and left as the log has
// it.
func (r *run) members(ctx context.Context, t *target, st *counter) (fetched, error) {
	groups := t.members
	got := make([][]page, len(groups))
	gone := make([]bool, len(groups))
	_, err := eachScope(ctx, t, indices(len(groups)), func(i int) ([]page, error) {
		pgs, err := t.own.graph.list(ctx, "/v1.0/groups/"+url.PathEscape(groups[i])+"/members?$select=id,userPrincipalName,displayName&$top=999", st.page)
		var re *RequestError
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			gone[i] = true
			return nil, nil
		}
		got[i] = pgs
		return nil, err
	})
	if err != nil {
		return fetched{}, err
	}
	var f fetched
	var missing []string
	for i, g := range groups {
		if gone[i] {
			missing = append(missing, g)
			continue
		}
		f.calls = append(f.calls, call{pages: got[i], group: g})
	}
	if len(missing) > 0 {
		f.note = fmt.Sprintf("the directory holds no group %s: their members are left as the log has them", strings.Join(missing, ", "))
	}
	return f, nil
}

// link reads the caller's own partner link (Microsoft.ManagementPartner,
// which no SDK module here serves: one GET through azcore's pipeline). A
// 404 is a caller without a link.
func (r *run) link(ctx context.Context, t *target, st *counter) (fetched, error) {
	pgs, err := withSlot(ctx, t, func() ([]page, error) {
		req, err := runtime.NewRequest(ctx, http.MethodGet, runtime.JoinPaths(t.arm.raw.Endpoint(), "/providers/Microsoft.ManagementPartner/partners"))
		if err != nil {
			return nil, err
		}
		q := req.Raw().URL.Query()
		q.Set("api-version", "2018-02-01")
		req.Raw().URL.RawQuery = q.Encode()
		req.Raw().Header.Set("Accept", "application/json")
		pg, err := do(t.arm.raw.Pipeline(), req, 1)
		if err != nil {
			return nil, err
		}
		st.page(pg)
		return []page{pg}, nil
	})
	var re *RequestError
	if errors.As(err, &re) && re.Status == http.StatusNotFound {
		return fetched{note: "the credential holds no partner link in this tenant"}, nil
	}
	return fetched{calls: []call{{pages: pgs}}}, err
}

// entities lists the tenant's management groups and subscriptions
// (getEntities). The SDK's pager asks the next pages with a GET of the
// nextLink, which Azure refuses (405): each page is asked as the first, a
// POST, with the nextLink's $skiptoken.
func entities(ctx context.Context, c *armmanagementgroups.EntitiesClient, progress func(page)) ([]page, error) {
	var out []page
	var skip *string
	for {
		var resp armmanagementgroups.EntitiesClientListResponse
		pg, err := capture(ctx, len(out)+1, func(ctx context.Context) (err error) {
			resp, err = c.NewListPager(&armmanagementgroups.EntitiesClientListOptions{Skiptoken: skip}).NextPage(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, pg)
		progress(pg)
		if resp.NextLink == nil || *resp.NextLink == "" {
			return out, nil
		}
		u, err := url.Parse(*resp.NextLink)
		token := ""
		if err == nil {
			token = u.Query().Get("$skiptoken")
		}
		if token == "" || skip != nil && *skip == token {
			return nil, fmt.Errorf("%s: its nextLink %q gives no new $skiptoken to ask the next page with", pg.name, *resp.NextLink)
		}
		skip = &token
	}
}

// costPublishers are the publisher types the cost query asks for, one at
// a time: the query groups by two columns at most (the resource, and the
// pricing model that gives the meter), so a third party's charges
// (marketplace) are asked for on their own.
var costPublishers = []string{"Azure", "Marketplace"}

// costs asks Cost Management for each subscription's actual cost by
// resource, pricing model and day, from CostDays before the run to the
// run, usage charges only (purchases, refunds and taxes are no resource's
// consumption). The query's answer is columns and rows: each row becomes
// a record, named by its columns as an export's header names them
// (UsageDate, ResourceId, PricingModel, PreTaxCost), for the cost
// importer.
func (r *run) costs(ctx context.Context, t *target, st *counter) ([]page, []Missed, error) {
	day := r.at.UTC().Truncate(24 * time.Hour)
	from, until := day.AddDate(0, 0, -r.c.cfg.CostDays), r.at.UTC()
	return eachApart(ctx, t, t.subs, func(s subscription) ([]page, error) {
		var out []page
		for _, publisher := range costPublishers {
			q := costQuery(from, until, publisher)
			var raw *http.Response
			err := costThrottled(ctx, func() error {
				_, err := s.arm.query.Usage(policy.WithCaptureResponse(ctx, &raw), "subscriptions/"+s.id, q, nil)
				return requestError(err)
			})
			if err != nil {
				return nil, err
			}
			pg, err := captured(raw, 1)
			for n := 2; ; n++ {
				if err != nil {
					return nil, err
				}
				var recs page
				var next string
				if recs, next, err = costRecords(pg, publisher); err != nil {
					return nil, err
				}
				out = append(out, recs)
				st.page(recs)
				if next == "" {
					break
				}
				// The next page is asked with the same query, posted to
				// the nextLink.
				err = costThrottled(ctx, func() error {
					req, err := runtime.NewRequest(ctx, http.MethodPost, next)
					if err != nil {
						return err
					}
					if err := runtime.MarshalAsJSON(req, q); err != nil {
						return err
					}
					pg, err = do(s.arm.raw.Pipeline(), req, n, http.StatusOK, http.StatusNoContent)
					return err
				})
			}
		}
		return out, nil
	})
}

// costThrottled makes a Cost Management request, try, again while the
// API throttles it and says for how long in its own headers (costWait),
// which the SDK's retries do not read: it allows a few queries a scope a
// minute, so a tenant's subscriptions exhaust it in one run. At most
// costAttempts times, each wait at most costMaxWait.
func costThrottled(ctx context.Context, try func() error) error {
	for attempt := 1; ; attempt++ {
		err := try()
		var re *RequestError
		if !errors.As(err, &re) || re.Status != http.StatusTooManyRequests || re.costWait <= 0 || attempt == costAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(re.costWait, costMaxWait)):
		}
	}
}

const (
	costAttempts = 6
	costMaxWait  = 2 * time.Minute
)

// costQuery is the query of one publisher type's daily usage.
func costQuery(from, until time.Time, publisher string) armcostmanagement.QueryDefinition {
	dim := func(name string) *armcostmanagement.QueryGrouping {
		return &armcostmanagement.QueryGrouping{Type: to.Ptr(armcostmanagement.QueryColumnTypeDimension), Name: to.Ptr(name)}
	}
	in := func(name, value string) *armcostmanagement.QueryFilter {
		return &armcostmanagement.QueryFilter{Dimensions: &armcostmanagement.QueryComparisonExpression{
			Name: to.Ptr(name), Operator: to.Ptr(armcostmanagement.QueryOperatorTypeIn), Values: []*string{to.Ptr(value)}}}
	}
	return armcostmanagement.QueryDefinition{
		Type:       to.Ptr(armcostmanagement.ExportTypeActualCost),
		Timeframe:  to.Ptr(armcostmanagement.TimeframeTypeCustom),
		TimePeriod: &armcostmanagement.QueryTimePeriod{From: to.Ptr(from), To: to.Ptr(until)},
		Dataset: &armcostmanagement.QueryDataset{
			Granularity: to.Ptr(armcostmanagement.GranularityTypeDaily),
			Aggregation: map[string]*armcostmanagement.QueryAggregation{
				"totalCost": {Name: to.Ptr("PreTaxCost"), Function: to.Ptr(armcostmanagement.FunctionTypeSum)},
			},
			Grouping: []*armcostmanagement.QueryGrouping{dim("ResourceId"), dim("PricingModel")},
			Filter:   &armcostmanagement.QueryFilter{And: []*armcostmanagement.QueryFilter{in("ChargeType", "Usage"), in("PublisherType", publisher)}},
		},
	}
}

// costRecords turns a page of the query's answer into records
// (imports.CostQueryRecords) with the publisher type the query asked for,
// and returns its nextLink.
func costRecords(pg page, publisher string) (page, string, error) {
	recs, next, err := imports.CostQueryRecords(pg.body, map[string]string{"PublisherType": publisher})
	if err != nil {
		return page{}, "", fmt.Errorf("%s: %w", pg.name, err)
	}
	return page{name: pg.name + " " + publisher, body: recs}, next, nil
}

// withSlot runs fn holding one of the tenant's request slots.
func withSlot(ctx context.Context, t *target, fn func() ([]page, error)) ([]page, error) {
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.sem }()
	return fn()
}

// eachScope runs fn for every item, as many at once as the tenant's
// request slots allow, and returns their pages in the items' order. The
// first error stops the others: a source is written whole or not at all.
func eachScope[T any](ctx context.Context, t *target, items []T, fn func(T) ([]page, error)) ([]page, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make([][]page, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() {
			got[i], errs[i] = withSlot(ctx, t, func() ([]page, error) { return fn(it) })
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// The first error that is not the cancellation of the others.
	var first error
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return slices.Concat(got...), nil
}

// eachApart is eachScope for Azure's scopes, on each of which a role is
// granted on its own: a scope that fails is left out and returned as
// missed, and the others' pages are returned. The source fails only when
// every scope failed (a credential refused everywhere), or the run ends.
func eachApart[T interface{ where() string }](ctx context.Context, t *target, items []T, fn func(T) ([]page, error)) ([]page, []Missed, error) {
	errs := make([]error, len(items))
	got, err := eachScope(ctx, t, indices(len(items)), func(i int) ([]page, error) {
		pgs, err := fn(items[i])
		if err != nil && ctx.Err() == nil {
			errs[i] = err
			return nil, nil
		}
		return pgs, err
	})
	if err != nil {
		return nil, nil, err
	}
	var missed []Missed
	for i, err := range errs {
		if err != nil {
			missed = append(missed, Missed{Scope: items[i].where(), Err: err})
		}
	}
	if len(missed) > 0 && len(missed) == len(items) {
		return nil, nil, missed[0].Err
	}
	return got, missed, nil
}
