package collect

import (
	"context"
	"fmt"
	"net/url"

	"github.com/palproject/pal/internal/imports"
)

// The Power Platform admin API, read as the admin cmdlets read it: the
// tenant's environments, each environment's apps and flows, and each app's
// permissions (its role assignments), each page turned into the cmdlets'
// objects (imports.CmdletObjects), which pal import powerapps reads.

// The API versions the admin cmdlets ask for.
const (
	bapVersion       = "2020-10-01"
	powerAppsVersion = "2016-11-01"
)

// powerApps lists the tenant's environments, then each one's apps and
// flows, then each app's permissions; as many at once as the tenant's
// request slots allow. The flows' permissions are not read: pal takes a
// flow's owner from its creator, and its co-owners from the audit.
func (r *run) powerApps(ctx context.Context, t *target, st *counter) ([]page, error) {
	c := t.own
	raw, err := withSlot(ctx, t, func() ([]page, error) {
		return c.bap.list(ctx, "/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments?api-version="+bapVersion, st.page)
	})
	if err != nil {
		return nil, err
	}
	out, envs, err := cmdletPages(raw, imports.Environments)
	if err != nil {
		return nil, err
	}
	// Each environment's apps and flows; the apps, by environment, for
	// their permissions.
	apps := make([][]string, len(envs))
	lists, err := eachScope(ctx, t, indices(len(envs)), func(i int) ([]page, error) {
		env := url.PathEscape(envs[i])
		rawApps, err := c.powerApps.list(ctx, "/providers/Microsoft.PowerApps/scopes/admin/environments/"+env+"/apps?api-version="+powerAppsVersion, st.page)
		if err != nil {
			return nil, err
		}
		appPages, names, err := cmdletPages(rawApps, imports.Apps)
		if err != nil {
			return nil, err
		}
		apps[i] = names
		rawFlows, err := c.flow.list(ctx, "/providers/Microsoft.ProcessSimple/scopes/admin/environments/"+env+"/v2/flows?api-version="+powerAppsVersion, st.page)
		if err != nil {
			return nil, err
		}
		flowPages, _, err := cmdletPages(rawFlows, imports.Flows)
		return append(appPages, flowPages...), err
	})
	if err != nil {
		return nil, err
	}
	type app struct{ env, name string }
	var all []app
	for i, names := range apps {
		for _, n := range names {
			all = append(all, app{envs[i], n})
		}
	}
	roles, err := eachScope(ctx, t, all, func(a app) ([]page, error) {
		env := url.PathEscape(a.env)
		q := url.Values{"api-version": {powerAppsVersion}, "$filter": {"environment eq '" + a.env + "'"}}
		raw, err := c.powerApps.list(ctx, "/providers/Microsoft.PowerApps/scopes/admin/environments/"+env+"/apps/"+url.PathEscape(a.name)+"/permissions?"+q.Encode(), st.page)
		if err != nil {
			return nil, err
		}
		pgs, _, err := cmdletPages(raw, imports.AppPermissions)
		return pgs, err
	})
	if err != nil {
		return nil, err
	}
	return append(append(out, lists...), roles...), nil
}

// indices returns 0, 1, … n-1.
func indices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// cmdletPages turns pages of a list into pages of the cmdlets' objects
// (imports.CmdletObjects), and returns the names of the objects. A page
// that is not a list fails the source: the API answered something else
// than it does.
func cmdletPages(raw []page, list imports.PowerPlatformList) ([]page, []string, error) {
	var out []page
	var names []string
	for _, pg := range raw {
		objects, n, err := imports.CmdletObjects(list, pg.body)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", pg.name, err)
		}
		out, names = append(out, page{name: pg.name, body: objects}), append(names, n...)
	}
	return out, names, nil
}
