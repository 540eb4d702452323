package server

import (
	"net/http"
	"strconv"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
)

// What each principal may see and push, in one place: every handler asks
// these, and the store is asked for no more than they allow.

// mayPush reports whether p may push ev (the matrix of the service issue).
func mayPush(p Principal, ev *event.Event) bool {
	switch p.Role {
	case store.RoleOperator:
		return true
	case store.RoleTenantAdmin:
		switch ev.Type {
		case event.PalLinked, event.PalRemoved, event.PartnerRegistered, event.PartnerMetrics:
			return false
		}
		return ev.Tenant == p.Tenant
	case store.RoleAccount:
		return (ev.Type == event.PalLinked || ev.Type == event.PalRemoved) && ev.Tenant == p.Tenant && ev.Account == p.Account
	}
	return false
}

// tenantScope returns the one tenant whose records p reads, and true, for a
// tenant administrator; the operator reads every tenant's.
func (p Principal) tenantScope() (string, bool) {
	if p.Role != store.RoleTenantAdmin {
		return "", false
	}
	return p.Tenant, true
}

// changeFilter is what p may read of the feed of credit changes: a
// partner reader the changes its organisation gains or loses by, a tenant
// administrator its tenant's, the operator all; an account none.
func (p Principal) changeFilter() (store.ChangeFilter, error) {
	switch p.Role {
	case store.RoleOperator:
		return store.ChangeFilter{}, nil
	case store.RoleTenantAdmin:
		return store.ChangeFilter{Tenant: p.Tenant}, nil
	case store.RolePartnerReader:
		return store.ChangeFilter{Org: p.Org}, nil
	}
	return store.ChangeFilter{}, errorf(codeForbidden, "a %s reads no credit changes", p.Role)
}

// Pages are at most maxPage entries long, defaultPage unless asked.
const (
	defaultPage = 1000
	maxPage     = 10000
)

// pageParams reads the place a page starts after (?after= or ?since=, a
// sequence number, 0 by default) and its length (?limit=).
func pageParams(r *http.Request, name string) (after int64, limit int, err error) {
	q := r.URL.Query()
	if v := q.Get(name); v != "" {
		after, err = strconv.ParseInt(v, 10, 64)
		if err != nil || after < 0 {
			return 0, 0, errorf(codeBadRequest, "%s=%q is not a sequence number: give the next of the last answer, or 0", name, v)
		}
	}
	limit = defaultPage
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > maxPage {
			return 0, 0, errorf(codeBadRequest, "limit=%q is not a page length: give a number from 1 to %d", v, maxPage)
		}
	}
	return after, limit, nil
}
