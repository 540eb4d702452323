package server

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// The link API (api.LinkPath) keeps the shapes of Azure's
// Microsoft.ManagementPartner API, version 2018-02-01; ?api-version is
// accepted and ignored.

// operation is one operation of the provider, as Azure lists them.
type operation struct {
	Name    string           `json:"name"`
	Display operationDisplay `json:"display"`
}

type operationDisplay struct {
	Provider    string `json:"provider"`
	Resource    string `json:"resource"`
	Operation   string `json:"operation"`
	Description string `json:"description"`
}

// operations are the provider's operations: read, write and delete of
// partners (SPEC.md section 8).
var operations = []operation{
	{"Microsoft.ManagementPartner/partners/read", operationDisplay{"Microsoft ManagementPartner", "Partner", "Get Partner", "Read the partner link of the caller"}},
	{"Microsoft.ManagementPartner/partners/write", operationDisplay{"Microsoft ManagementPartner", "Partner", "Create or Update Partner", "Create or change the partner link of the caller"}},
	{"Microsoft.ManagementPartner/partners/delete", operationDisplay{"Microsoft ManagementPartner", "Partner", "Delete Partner", "Remove the partner link of the caller"}},
}

// getOperations lists the provider's operations, so that the Azure SDKs'
// operation listing works against pal.
func (s *Server) getOperations(w http.ResponseWriter, r *http.Request, p Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"value": operations, "nextLink": nil})
	return nil
}

type linkProperties struct {
	PartnerID   string    `json:"partnerId"`
	PartnerName string    `json:"partnerName"`
	TenantID    string    `json:"tenantId"`
	ObjectID    string    `json:"objectId"`
	Version     int       `json:"version"`
	CreatedTime time.Time `json:"createdTime"`
	UpdatedTime time.Time `json:"updatedTime"`
	State       string    `json:"state"`
}

type linkResponse struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Etag       int            `json:"etag"`
	Properties linkProperties `json:"properties"`
}

func linkBody(p Principal, l attribution.Link) linkResponse {
	state := "Active"
	if !l.Active {
		state = "Deleted"
	}
	return linkResponse{
		ID:   "/providers/microsoft.managementpartner/partners/" + l.Partner,
		Name: l.Partner, Type: "Microsoft.ManagementPartner/partners", Etag: l.Version,
		Properties: linkProperties{PartnerID: l.Partner, PartnerName: l.OrgName, TenantID: p.Tenant, ObjectID: p.Account,
			Version: l.Version, CreatedTime: l.Created, UpdatedTime: l.Updated, State: state},
	}
}

// currentLink returns the caller's active link; the caller holds the
// state's lock.
func currentLink(st *fold.State, p Principal) (attribution.Link, bool) {
	l, ok := st.Engine().Link(p.Tenant, p.Account)
	return l, ok && l.Active
}

func (s *Server) getLink(w http.ResponseWriter, r *http.Request, p Principal) error {
	var l attribution.Link
	var ok bool
	err := s.read(r.Context(), func(st *fold.State) error {
		l, ok = currentLink(st, p)
		return nil
	})
	if err != nil {
		return err
	}
	id := r.PathValue("partnerId")
	if !ok || (id != "" && id != l.Partner) {
		return errorf(codeNotFound, "account %s holds no link to %s in tenant %s", p.Account, orAny(id), p.Tenant)
	}
	writeJSON(w, http.StatusOK, linkBody(p, l))
	return nil
}

// getMyCredit lists the resources whose credit the calling account carries
// now, what its link is worth to its partner, and those on which another
// partner outranks it. Through Azure Lighthouse, an account carries the
// credit of Azure resources of other tenants: each owner tells those of
// its own.
func (s *Server) getMyCredit(w http.ResponseWriter, r *http.Request, p Principal) error {
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (creditPart, error) {
		return creditPartOf(st.Engine(), owns, p), nil
	})
	if err != nil {
		return err
	}
	rows, lost := mergeCredit(parts)
	writeJSON(w, http.StatusOK, map[string]any{"tenant": p.Tenant, "account": p.Account, "resources": rows, "outranked": lost})
	return nil
}

// creditPart is an owner's part of an account's credit: the resources of
// its tenants whose credit the account carries, and, from the owner of the
// account's tenant, those of that tenant on which it is outranked.
type creditPart struct {
	Rows      []attribution.Row `json:"rows"`
	Outranked []outranked       `json:"outranked"`
}

// creditPartOf returns the part of p's credit over the tenants owns names.
func creditPartOf(e *attribution.Engine, owns func(string) bool, p Principal) creditPart {
	part := creditPart{Rows: kept(e.AccountCredits(p.Tenant, p.Account), func(r attribution.Row) bool { return owns(r.Tenant) }), Outranked: []outranked{}}
	if owns(p.Tenant) {
		part.Outranked = outrankedLinks(e, p.Tenant, p.Account)
	}
	return part
}

// mergeCredit makes an account's credit of its parts: the resources it
// carries, by tenant then resource, and those on which it is outranked.
func mergeCredit(parts []creditPart) ([]attribution.Row, []outranked) {
	rows, lost := []attribution.Row{}, []outranked{}
	for _, p := range parts {
		rows = append(rows, p.Rows...)
		lost = append(lost, p.Outranked...)
	}
	slices.SortFunc(rows, func(a, b attribution.Row) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
	return rows, lost
}

// outranked is a resource on which an account's link is outranked: the
// account is an eligible candidate for it, and another partner is
// credited. The other partner shows by its ID and organisation only.
type outranked struct {
	Resource    string    `json:"resource"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Role        string    `json:"role"`
	Association time.Time `json:"association"`
	Partner     string    `json:"partner"`
	OrgName     string    `json:"org_name"`
	Since       time.Time `json:"since"`
	Words       string    `json:"words"`
}

// outrankedLinks lists the resources of a tenant on which an account's
// link is outranked now, and why in words.
func outrankedLinks(e *attribution.Engine, tenant, account string) []outranked {
	out := []outranked{}
	for _, r := range e.Attribution(tenant) {
		if r.Partner == "" || azure.IsPath(r.Resource) {
			continue
		}
		x := e.Explain(tenant, r.Resource, e.Now())
		i := slices.IndexFunc(x.Candidates, func(c attribution.Candidate) bool { return c.Account == account })
		if i < 0 || x.Winner == nil {
			continue
		}
		c, w := x.Candidates[i], x.Winner
		if !c.Eligible || w.Partner == c.Partner || slices.ContainsFunc(x.Shares, func(s credit.Share) bool { return s.Partner == c.Partner }) {
			continue
		}
		role := roleWords[c.Role]
		words := fmt.Sprintf("%s is credited: its account associated on %s, later than yours (%s, on %s). The latest association wins: an edit or publish of yours renews it.",
			capital(partnerWords(e, w.Partner)), day(w.Since), role, day(c.Association))
		if x.Policy == attribution.First {
			words = fmt.Sprintf("%s is credited: its account associated on %s, earlier than yours (%s, on %s). Under policy first the earliest association keeps the credit.",
				capital(partnerWords(e, w.Partner)), day(w.Since), role, day(c.Association))
		}
		out = append(out, outranked{Resource: r.Resource, Name: displayName(e, tenant, r.Resource), Kind: kindInWords(r.Kind), Role: role,
			Association: c.Association, Partner: w.Partner, OrgName: e.OrgName(e.PartnerOrg(w.Partner)), Since: w.Since, Words: words})
	}
	return out
}

func orAny(id string) string {
	if id == "" {
		return "any partner ID"
	}
	return id
}

// changeLink makes the caller's link event, after check approves the
// current link, and answers with the link as it then is.
func (s *Server) changeLink(w http.ResponseWriter, r *http.Request, p Principal, typ string, check func(l attribution.Link, ok bool) error) error {
	id := r.PathValue("partnerId")
	if typ == event.PalLinked && !event.IsPartnerID(id) {
		return errorf(codeBadRequest, "%s: %q is not a partner ID; partner IDs are 6 to 10 digits", event.InvalidPartnerID, id)
	}
	err := s.write(r.Context(), func(ctx context.Context, wr store.Writer) error {
		// The link is checked against the state as it stands, and stored
		// only when it applies: an account's own link is never held.
		var cur attribution.Link
		var ok bool
		var rf *event.Refusal
		ev := &event.Event{Type: typ, Time: s.cfg.Clock().UTC(), Tenant: p.Tenant, Account: p.Account, Partner: id}
		s.views.read(func(st *fold.State) error {
			cur, ok = currentLink(st, p)
			rf = st.Engine().CheckLink(ev)
			return nil
		})
		if err := check(cur, ok); err != nil {
			return err
		}
		if typ == event.PalLinked && ok && cur.Partner == id {
			return nil
		}
		if rf != nil {
			return errorf(codeBadRequest, "%s: %s", rf.Code, rf.Message)
		}
		_, err := s.submit(ctx, wr, []*event.Event{ev})
		return err
	})
	if err != nil {
		return err
	}
	var l attribution.Link
	s.views.read(func(st *fold.State) error {
		l, _ = st.Engine().Link(p.Tenant, p.Account)
		return nil
	})
	writeJSON(w, http.StatusOK, linkBody(p, l))
	return nil
}

func (s *Server) putLink(w http.ResponseWriter, r *http.Request, p Principal) error {
	return s.changeLink(w, r, p, event.PalLinked, func(cur attribution.Link, ok bool) error {
		if ok {
			return errorf(codeConflict, "account %s already links partner ID %s in tenant %s; change it with PATCH or remove it with DELETE", p.Account, cur.Partner, p.Tenant)
		}
		return nil
	})
}

func (s *Server) patchLink(w http.ResponseWriter, r *http.Request, p Principal) error {
	return s.changeLink(w, r, p, event.PalLinked, func(cur attribution.Link, ok bool) error {
		if !ok {
			return errorf(codeNotFound, "account %s holds no link in tenant %s; create one with PUT", p.Account, p.Tenant)
		}
		return nil
	})
}

func (s *Server) deleteLink(w http.ResponseWriter, r *http.Request, p Principal) error {
	id := r.PathValue("partnerId")
	return s.changeLink(w, r, p, event.PalRemoved, func(cur attribution.Link, ok bool) error {
		if !ok || cur.Partner != id {
			return errorf(codeNotFound, "account %s holds no link to %s in tenant %s", p.Account, id, p.Tenant)
		}
		return nil
	})
}

// getLinks lists the accounts of a tenant that hold a link: account and
// partner ID only, as PAL reveals no more. An organisation's links are of
// every tenant, each counting what its account carries in any.
func (s *Server) getLinks(w http.ResponseWriter, r *http.Request, p Principal) error {
	tenant, org, err := linksScope(r, p)
	if err != nil {
		return err
	}
	if org == "" {
		var links []attribution.AccountLink
		err := s.read(r.Context(), func(st *fold.State) error {
			links = st.Engine().Links(tenant)
			return nil
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, api.TenantLinks{Tenant: tenant, Links: links})
		return nil
	}
	parts, err := gather(r.Context(), s, func(st *fold.State, owns func(string) bool) (linksPart, error) {
		return linksPartOf(st.Engine(), owns, org), nil
	})
	if err != nil {
		return err
	}
	links, _ := mergeLinks(parts)
	if tenant != "" {
		links = slices.DeleteFunc(links, func(l attribution.OrgLink) bool { return l.Tenant != tenant })
	}
	writeJSON(w, http.StatusOK, api.OrgLinks{Org: org, Links: links})
	return nil
}

// linksPart is an owner's part of an organisation's links
// (attribution.Engine.OrgLinksIn), with the names its tables show: of each
// link's account, by its tenant and account (accountKey), and of each
// partner ID's organisation.
type linksPart struct {
	Links    []attribution.OrgLink  `json:"links"`
	Carrying []attribution.Carrying `json:"carrying"`
	Accounts map[string]string      `json:"accounts"`
	OrgNames map[string]string      `json:"org_names"`
}

// accountKey names an account of a tenant in a map a part carries.
func accountKey(tenant, account string) string { return tenant + "\x00" + account }

// linksPartOf returns the part of an organisation's links over the tenants
// owns names.
func linksPartOf(e *attribution.Engine, owns func(string) bool, org string) linksPart {
	part := linksPart{Accounts: map[string]string{}, OrgNames: map[string]string{}}
	part.Links, part.Carrying = e.OrgLinksIn(org, owns)
	for _, l := range part.Links {
		part.Accounts[accountKey(l.Tenant, l.Account)] = e.AccountName(l.Tenant, l.Account)
		part.OrgNames[l.Partner] = e.OrgName(e.PartnerOrg(l.Partner))
	}
	return part
}

// mergeLinks makes an organisation's links of their parts, and the names
// the parts carry.
func mergeLinks(parts []linksPart) ([]attribution.OrgLink, linksPart) {
	all := linksPart{Accounts: map[string]string{}, OrgNames: map[string]string{}}
	for _, p := range parts {
		all.Links = append(all.Links, p.Links...)
		all.Carrying = append(all.Carrying, p.Carrying...)
		maps.Copy(all.Accounts, p.Accounts)
		maps.Copy(all.OrgNames, p.OrgNames)
	}
	return attribution.MergeOrgLinks(all.Links, all.Carrying), all
}
