package server

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	partners "github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
)

// The tables of the web UI's pages, served whole: every row the caller
// may see of one time frame (a month, as of its end or now), sorted,
// filtered and paged on the server, with their total, and all of them as
// CSV. What a caller sees of an account follows shownAccount.

// column is a column of a table: its key in the rows, its label, and how
// it is shown and sorted (text, number, money, date, time, bool).
type column struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Type  string `json:"type"`
}

// row is a table's row, by column key.
type row map[string]any

// table is every row of one table of one frame, in their natural order.
type table struct {
	Columns []column
	Rows    []row
	// Sort and Desc are the order a page asks for by default.
	Sort string
	Desc bool
	// Noun names a row, singular and plural, for the total.
	Noun [2]string
}

// tableBuilder builds a table for a scope and a frame, as p may see it.
type tableBuilder struct {
	// scopes says what the table may be about: "org", "tenant", "all".
	scopes []string
	build  func(ctx context.Context, s *Server, p Principal, sc scope, f frame) (*table, error)
}

var tableBuilders = map[string]tableBuilder{
	"months":        {[]string{"org", "tenant", "all"}, monthsTable},
	"credited":      {[]string{"org"}, creditedTable},
	"missing":       {[]string{"org"}, missingTable},
	"at-risk":       {[]string{"org"}, atRiskTable},
	"links":         {[]string{"org", "tenant"}, linksTable},
	"changes":       {[]string{"org", "tenant", "all"}, changesTable},
	"azure":         {[]string{"org"}, azureTable},
	"resources":     {[]string{"tenant", "all"}, resourcesTable},
	"organisations": {[]string{"all"}, organisationsTable},
	"workloads":     {[]string{"org", "tenant", "all"}, workloadsTable},
}

func (sc scope) kind() string {
	switch {
	case sc.org != "":
		return "org"
	case sc.tenant != "":
		return "tenant"
	}
	return "all"
}

// getTable answers one table of a page: ?month= (the present's by
// default; the months table lists them all), the scope (?org= or ?tenant=
// for the operator; a partner reader's organisation, a tenant
// administrator's tenant), ?q= to filter, ?sort=&order=asc|desc, and
// ?offset=&limit= (50 by default, at most 1,000) for a page; ?format=csv
// answers every row that passes the filter, as CSV.
func (s *Server) getTable(w http.ResponseWriter, r *http.Request, p Principal) error {
	name := r.PathValue("table")
	b, ok := tableBuilders[name]
	if !ok {
		names := make([]string, 0, len(tableBuilders))
		for n := range tableBuilders {
			names = append(names, n)
		}
		slices.Sort(names)
		return errorf(codeNotFound, "no table %q: the tables are %s", name, strings.Join(names, ", "))
	}
	q := r.URL.Query()
	sc, err := scopeOf(q, p)
	if err != nil {
		return err
	}
	if !slices.Contains(b.scopes, sc.kind()) {
		if p.Role != store.RoleOperator {
			// Only the operator chooses a page's scope.
			return errorf(codeForbidden, "table %s is about %s: a %s does not read it", name, strings.Join(b.scopes, " or "), p.Role)
		}
		return errorf(codeBadRequest, "table %s is about %s: give %s", name, strings.Join(b.scopes, " or "), scopeHint(b.scopes))
	}
	page, err := pageOf(q)
	if err != nil {
		return err
	}
	var f frame
	var ver version
	orgName := ""
	err = s.read(r.Context(), func(st *fold.State) error {
		ver = s.versionOf(st)
		f, err = frameOf(q.Get("month"), st.Engine().Now())
		if err == nil && sc.org != "" {
			o, err := registered(st.Engine(), sc.org)
			if err != nil {
				return err
			}
			orgName = o.Name
		}
		return err
	})
	if err != nil {
		return err
	}
	key := strings.Join([]string{"table", name, p.Role, sc.key(), f.Month, f.At.Format(time.RFC3339Nano)}, "\x00")
	build := func() (any, error) { return b.build(r.Context(), s, p, sc, f) }
	var v any
	if s.own != nil {
		// Its parts are other processes' too, which the state's version
		// does not follow: built afresh.
		v, err = build()
	} else {
		v, err = s.views.answers.get(ver, key, build)
	}
	if err != nil {
		return err
	}
	t := v.(*table)
	if page.sort == "" {
		page.sort, page.desc = t.Sort, t.Desc
	} else if !slices.ContainsFunc(t.Columns, func(c column) bool { return c.Key == page.sort }) {
		return errorf(codeBadRequest, "sort=%q is not a column of table %s", page.sort, name)
	}
	rows := t.filtered(page.q)
	t.sort(rows, page.sort, page.desc)
	if page.csv {
		return writeCSVTable(w, name+"-"+f.Month+".csv", t.Columns, rows)
	}
	sums := map[string]float64{}
	for _, c := range t.Columns {
		if c.Type == "number" || c.Type == "money" {
			total := 0.0
			for _, r := range rows {
				total += number(r[c.Key])
			}
			sums[c.Key] = math.Round(total*100) / 100
		}
	}
	end := min(len(rows), page.offset+page.limit)
	shown := []row{}
	if page.offset < len(rows) {
		shown = rows[page.offset:end]
	}
	order := "asc"
	if page.desc {
		order = "desc"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"table": name, "org": sc.org, "org_name": orgName, "tenant": sc.tenant, "month": f.Month, "start": f.Start, "at": f.At, "current": f.Current,
		"columns": t.Columns, "total": len(rows), "all": len(t.Rows), "offset": page.offset, "limit": page.limit,
		"sort": page.sort, "order": order, "q": page.q, "noun": t.Noun, "rows": shown, "sums": sums,
		"currency": s.currency(),
	})
	return nil
}

func scopeHint(scopes []string) string {
	var out []string
	for _, sc := range scopes {
		switch sc {
		case "org":
			out = append(out, "?org=ORG")
		case "tenant":
			out = append(out, "?tenant=T")
		case "all":
			out = append(out, "neither org nor tenant")
		}
	}
	return strings.Join(out, " or ")
}

// currency is the currency of the log's Azure costs.
func (s *Server) currency() string {
	return cmp.Or(s.cfg.Options.Azure.Currency, azure.DefaultCurrency)
}

// tablePage is what a request asks of a table.
type tablePage struct {
	q             string
	sort          string
	desc          bool
	offset, limit int
	csv           bool
}

// Table pages are at most maxTablePage rows, defaultTablePage unless
// asked.
const (
	defaultTablePage = 50
	maxTablePage     = 1000
)

func pageOf(q map[string][]string) (tablePage, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	p := tablePage{q: strings.TrimSpace(get("q")), sort: get("sort"), limit: defaultTablePage}
	switch get("order") {
	case "", "asc":
	case "desc":
		p.desc = true
	default:
		return p, errorf(codeBadRequest, "order=%q: write asc or desc", get("order"))
	}
	if v := get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, errorf(codeBadRequest, "offset=%q is not a number of rows from 0", v)
		}
		p.offset = n
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTablePage {
			return p, errorf(codeBadRequest, "limit=%q is not a page length: give a number from 1 to %d", v, maxTablePage)
		}
		p.limit = n
	}
	switch get("format") {
	case "", "json":
	case "csv":
		p.csv = true
	default:
		return p, errorf(codeBadRequest, "format=%q: write json or csv", get("format"))
	}
	return p, nil
}

// filtered returns the rows with a cell holding q, case aside; all of them
// when q is empty.
func (t *table) filtered(q string) []row {
	if q == "" {
		return slices.Clone(t.Rows)
	}
	q = strings.ToLower(q)
	var out []row
	for _, r := range t.Rows {
		for _, c := range t.Columns {
			if strings.Contains(strings.ToLower(cellText(r[c.Key])), q) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// sort orders rows by a column, keeping the natural order of equal ones;
// empty cells come last either way.
func (t *table) sort(rows []row, key string, desc bool) {
	slices.SortStableFunc(rows, func(a, b row) int {
		x, y := a[key], b[key]
		if empty(x) || empty(y) {
			return cmp.Compare(boolInt(empty(x)), boolInt(empty(y)))
		}
		c := compareCells(x, y)
		if desc {
			c = -c
		}
		return c
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case time.Time:
		return v.IsZero()
	}
	return false
}

func compareCells(x, y any) int {
	switch x := x.(type) {
	case string:
		y, _ := y.(string)
		return cmp.Or(cmp.Compare(strings.ToLower(x), strings.ToLower(y)), cmp.Compare(x, y))
	case time.Time:
		y, _ := y.(time.Time)
		return x.Compare(y)
	case bool:
		y, _ := y.(bool)
		return cmp.Compare(boolInt(x), boolInt(y))
	}
	return cmp.Compare(number(x), number(y))
}

func number(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case int:
		return float64(v)
	}
	return 0
}

// cellText is a cell as CSV and the filter read it.
func cellText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format(time.RFC3339)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

// writeCSVTable writes rows as CSV, a header of column keys first.
func writeCSVTable(w http.ResponseWriter, filename string, cols []column, rows []row) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", filename))
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = c.Key
	}
	cw.Write(head)
	line := make([]string, len(cols))
	for _, r := range rows {
		for i, c := range cols {
			line[i] = cellText(r[c.Key])
			switch r[c.Key].(type) {
			case float64, int, bool:
			default:
				line[i] = api.CSVText(line[i])
			}
		}
		cw.Write(line)
	}
	cw.Flush()
	return nil
}

// money turns an exact amount into a number of cents precision.
func money(m azure.Money) float64 {
	f, _ := m.Rat().Float64()
	return math.Round(f*100) / 100
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// The value of resources in a month, for every table of the month.

// monthValues holds the month's metrics of resources, for one
// organisation or for whoever was credited: the users and profiles each
// carried (metrics.ResourceFigures), and for an organisation the ACR the
// Azure report recognises to it, by resource.
type monthValues struct {
	rates  map[string]float64
	values map[attribution.ResourceKey]resourceValue
}

// valuesPart is an owner's part of the month's values: those of the
// resources of its tenants.
type valuesPart struct {
	Resources []resourceValue `json:"resources"`
}

// resourceValue is what a resource carried in a month: its workload, its
// users and profiles, and for an organisation's values the sum of its rows
// of the Azure report recognised to it, each rounded to cents.
type resourceValue struct {
	Tenant   string  `json:"tenant"`
	Resource string  `json:"resource"`
	Workload string  `json:"workload"`
	MAU      float64 `json:"mau"`
	Profiles float64 `json:"profiles"`
	ACR      float64 `json:"acr"`
}

// valuesPart returns the part of the month's values, for an organisation
// or with org empty for whoever was credited, over the tenants owns names.
func (s *Server) valuesPart(ctx context.Context, st *fold.State, owns func(string) bool, month, org string) (valuesPart, error) {
	byKey := map[attribution.ResourceKey]*resourceValue{}
	at := func(tenant, resource string) *resourceValue {
		k := attribution.ResourceKey{Tenant: tenant, Resource: resource}
		if byKey[k] == nil {
			byKey[k] = &resourceValue{Tenant: tenant, Resource: resource}
		}
		return byKey[k]
	}
	for k, f := range st.Metrics().ResourceFigures(month, org, owns) {
		v := at(k.Tenant, k.Resource)
		v.Workload, v.MAU, v.Profiles = f.Workload, f.MAU, f.Profiles
	}
	// Whoever was credited, an Azure resource carried what its customer
	// paid (Server.paid): the report's rows by location are not read.
	if org != "" {
		az, err := s.azureReport(ctx, st, owns, month)
		if err != nil {
			return valuesPart{}, err
		}
		for _, r := range az.Resources {
			if r.Org == org {
				v := at(r.Tenant, r.Resource)
				v.ACR += money(r.ACR)
			}
		}
	}
	part := valuesPart{Resources: make([]resourceValue, 0, len(byKey))}
	for _, v := range byKey {
		part.Resources = append(part.Resources, *v)
	}
	slices.SortFunc(part.Resources, func(a, b resourceValue) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
	return part, nil
}

// monthValues makes the month's values of their parts.
func (s *Server) monthValues(parts []valuesPart) *monthValues {
	mv := &monthValues{rates: s.cfg.Metrics.Rates, values: map[attribution.ResourceKey]resourceValue{}}
	for _, p := range parts {
		for _, v := range p.Resources {
			mv.values[attribution.ResourceKey{Tenant: v.Tenant, Resource: v.Resource}] = v
		}
	}
	return mv
}

// values reads the month's values of an owner's tenants, for an
// organisation or with org empty for whoever was credited: what its part
// of a table reads.
func (o owner) values(ctx context.Context, month, org string) (*monthValues, error) {
	var part valuesPart
	err := o.read(ctx, func(st *fold.State, owns func(string) bool) error {
		var err error
		part, err = o.s.valuesPart(ctx, st, owns, month, org)
		return err
	})
	return o.s.monthValues([]valuesPart{part}), err
}

// worth is what a resource carries in a month: its users or profiles, its
// MCV, its ACR.
type worth struct {
	mau, profiles, mcv, acr float64
	azure                   bool
}

// value is the one number a resource is ranked by: MCV, or ACR on Azure.
func (w worth) value() float64 {
	if w.azure {
		return w.acr
	}
	return w.mcv
}

// of returns what a resource carried in the month: its users each once
// and its profiles, and its ACR, that recognised to the organisation's
// locations. With no organisation, the ACR is not known here: it is what
// the customer paid (Server.paid).
func (mv *monthValues) of(tenant, resource string) worth {
	v := mv.values[attribution.ResourceKey{Tenant: tenant, Resource: resource}]
	w := worth{azure: azure.IsPath(resource), mau: v.MAU, profiles: v.Profiles, mcv: (v.MAU + v.Profiles) * mv.rates[v.Workload], acr: v.ACR}
	w.mau, w.profiles, w.mcv, w.acr = round2(w.mau), round2(w.profiles), round2(w.mcv), round2(w.acr)
	return w
}

// paid returns what the customers paid in the frame's month for each
// Azure resource keys names, as the frame's engine knows it: the costs
// reported by the frame's instant. It is an Azure resource's own figure
// (a location's share of it is in the Azure report).
func (s *Server) paid(ctx context.Context, az *azure.Engine, f frame, keys map[store.TenantResource]bool) (map[store.TenantResource]azure.Money, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var upTo time.Time
	if !f.Current {
		upTo = f.At
	}
	return s.azureCosts(ctx, az, f.Month, keys, upTo)
}

func (w worth) put(r row) {
	r["mau"], r["profiles"], r["mcv"], r["acr"], r["value"] = w.mau, w.profiles, w.mcv, w.acr, w.value()
}

// The columns the tables share.
var (
	colTenant      = column{"tenant", "Customer", "text"}
	colResource    = column{"resource", "Resource", "text"}
	colName        = column{"name", "Name", "text"}
	colKind        = column{"kind", "Kind", "text"}
	colEnvironment = column{"environment", "Environment", "text"}
	colPartner     = column{"partner", "Partner ID", "text"}
	colOrgName     = column{"org_name", "Organisation", "text"}
	colAccount     = column{"account", "Account", "text"}
	colSince       = column{"since", "Since", "date"}
	colMAU         = column{"mau", "MAU", "number"}
	colProfiles    = column{"profiles", "Profiles", "number"}
	colMCV         = column{"mcv", "MCV", "number"}
	colACR         = column{"acr", "ACR", "money"}
	colValue       = column{"value", "Value", "number"}
)

// displayName is a resource's name as the log gives it, or for an Azure
// resource, whose events name none, the last segment of its path.
func displayName(e *attribution.Engine, tenant, resource string) string {
	if azure.IsPath(resource) {
		return resource[strings.LastIndex(resource, "/")+1:]
	}
	return e.ResourceName(tenant, resource)
}

// since returns a row's association time, or nothing.
func since(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

// Every table is computed from parts (gather): the rows of each owner's
// tenants, with the names and values they show, or for the tables of the
// months and the organisations, the reports they sum.

// tablePart is an owner's part of a table: the rows of its tenants, in the
// table's order, and the table's columns, which say how to read the rows
// back from JSON.
type tablePart struct {
	Columns []column `json:"columns"`
	Rows    []row    `json:"rows"`
}

// UnmarshalJSON reads a part, each cell as the rows had it: a date or a
// time as a time, other cells as JSON gives them (a number as a float64,
// which a table shows, sorts and sums as the int it may have been).
func (t *tablePart) UnmarshalJSON(data []byte) error {
	var raw struct {
		Columns []column                     `json:"columns"`
		Rows    []map[string]json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	times := map[string]bool{}
	for _, c := range raw.Columns {
		times[c.Key] = c.Type == "date" || c.Type == "time"
	}
	t.Columns, t.Rows = raw.Columns, make([]row, len(raw.Rows))
	for i, cells := range raw.Rows {
		r := make(row, len(cells))
		for k, v := range cells {
			var err error
			switch {
			case string(v) == "null":
				r[k] = nil
			case times[k]:
				var at time.Time
				err = json.Unmarshal(v, &at)
				r[k] = at
			default:
				var cell any
				err = json.Unmarshal(v, &cell)
				r[k] = cell
			}
			if err != nil {
				return fmt.Errorf("read cell %s of a table's row: %w", k, err)
			}
		}
		t.Rows[i] = r
	}
	return nil
}

// tenantOf returns the tenant of a table's row.
func tenantOf(r row) string {
	tenant, _ := r["tenant"].(string)
	return tenant
}

// byTenant fills a table with the rows each owner's part makes (rows): the
// table lists its rows tenant by tenant, every row of a tenant its
// owner's.
func (t *table) byTenant(ctx context.Context, s *Server, rows func(o owner) ([]row, error)) (*table, error) {
	parts, err := gatherFrom(ctx, s, func(o owner) (tablePart, error) {
		rs, err := rows(o)
		return tablePart{Columns: t.Columns, Rows: rs}, err
	})
	if err != nil {
		return nil, err
	}
	each := make([][]row, len(parts))
	for i, p := range parts {
		each[i] = p.Rows
	}
	t.Rows = byTenant(each, tenantOf)
	return t, nil
}

// creditedTable lists the resources credited to an organisation, whole or
// in part, as of the frame's instant, with what each carried in the month.
func creditedTable(ctx context.Context, s *Server, p Principal, sc scope, f frame) (*table, error) {
	t := &table{Columns: []column{colTenant, colResource, colName, colKind, colEnvironment, colPartner, colOrgName, colAccount, colSince, colMAU, colProfiles, colMCV, colACR, colValue},
		Sort: "value", Desc: true, Noun: [2]string{"resource", "resources"}}
	return t.byTenant(ctx, s, func(o owner) ([]row, error) {
		mv, err := o.values(ctx, f.Month, sc.org)
		if err != nil {
			return nil, err
		}
		var rows []row
		err = o.asOf(ctx, sc, f, func(e *attribution.Engine, owns func(string) bool, tenants []string) error {
			for _, r := range e.Attribution(tenants...) {
				if !owns(r.Tenant) || !credited(sc.org, r.Org, r.Shares) {
					continue
				}
				rw := row{"tenant": r.Tenant, "resource": r.Resource, "name": displayName(e, r.Tenant, r.Resource), "kind": kindInWords(r.Kind),
					"environment": r.Environment, "partner": r.Partner, "org_name": e.OrgName(r.Org), "account": p.shownAccount(e, r.Account, r.Partner), "since": since(r.Since)}
				mv.of(r.Tenant, r.Resource).put(rw)
				rows = append(rows, rw)
			}
			return nil
		})
		return rows, err
	})
}

// missingTable lists where an organisation's credit is missing as of the
// frame's instant, why and what would fix it, with what the resource
// carried in the month for others: what is at stake.
func missingTable(ctx context.Context, s *Server, p Principal, sc scope, f frame) (*table, error) {
	t := &table{Columns: []column{colTenant, colResource, colName, colKind, colAccount, colPartner, colOrgName,
		{"reason", "Reason", "text"}, {"why", "Why", "text"}, {"fix", "What would fix it", "text"},
		{"other", "Credited instead", "text"}, {"other_since", "Associated", "date"}, colMAU, colProfiles, colMCV, colACR, {"value", "Value at stake", "number"}},
		Sort: "value", Desc: true, Noun: [2]string{"resource", "resources"}}
	return t.byTenant(ctx, s, func(o owner) ([]row, error) {
		mv, err := o.values(ctx, f.Month, "")
		if err != nil {
			return nil, err
		}
		var v valued
		err = o.asOf(ctx, sc, f, func(e *attribution.Engine, owns func(string) bool, _ []string) error {
			for _, m := range diagnosisPart(e, owns, sc.org).Missing {
				rw := row{"tenant": m.Tenant, "resource": m.Resource, "name": displayName(e, m.Tenant, m.Resource), "kind": kindInWords(m.Kind),
					"account": m.Account, "partner": m.Partner, "org_name": e.OrgName(e.PartnerOrg(m.Partner)), "reason": m.Reason,
					"why": strings.ReplaceAll(m.Words, m.Kind, kindInWords(m.Kind)), "fix": strings.ReplaceAll(m.Fix, m.Kind, kindInWords(m.Kind))}
				if m.Other != nil {
					who := partnerWords(e, m.Other.Partner)
					rw["why"] = strings.Replace(rw["why"].(string), "partner "+m.Other.Partner, who, 1)
					rw["other"], rw["other_since"] = who, m.Other.Since
				}
				// What is at stake is what the resource carried, whoever
				// was credited: what its customer paid, on Azure.
				v.add(rw, mv.of(m.Tenant, m.Resource), m.Tenant, m.Resource)
			}
			return v.put(ctx, s, e.Azure(), f)
		})
		return v.rows, err
	})
}

// valued puts into rows what their resources carried in the month, once
// what the customers paid for the Azure ones is known (Server.paid).
type valued struct {
	rows   []row
	worths []worth
	keys   []store.TenantResource
}

func (v *valued) add(rw row, w worth, tenant, resource string) {
	v.rows, v.worths = append(v.rows, rw), append(v.worths, w)
	v.keys = append(v.keys, store.TenantResource{Tenant: tenant, Resource: resource})
}

func (v *valued) put(ctx context.Context, s *Server, az *azure.Engine, f frame) error {
	want := map[store.TenantResource]bool{}
	for i, w := range v.worths {
		if w.azure {
			want[v.keys[i]] = true
		}
	}
	costs, err := s.paid(ctx, az, f, want)
	for i, w := range v.worths {
		if w.azure {
			w.acr = money(costs[v.keys[i]])
		}
		w.put(v.rows[i])
	}
	return err
}

// atRiskTable lists, by the one account each hangs on, the resources an
// organisation is credited for through that account only, as of the
// frame's instant, with what they carried in the month.
func atRiskTable(ctx context.Context, s *Server, p Principal, sc scope, f frame) (*table, error) {
	t := &table{Columns: []column{colTenant, {"account", "Only account", "text"}, colPartner, colOrgName, {"resources", "Resources", "number"},
		{"which", "Which", "text"}, colMAU, colProfiles, colMCV, colACR, {"value", "Value at stake", "number"}},
		Sort: "value", Desc: true, Noun: [2]string{"account", "accounts"}}
	return t.byTenant(ctx, s, func(o owner) ([]row, error) {
		mv, err := o.values(ctx, f.Month, sc.org)
		if err != nil {
			return nil, err
		}
		var rows []row
		err = o.asOf(ctx, sc, f, func(e *attribution.Engine, owns func(string) bool, _ []string) error {
			type key struct{ tenant, account string }
			groups := map[key]row{}
			var order []key
			for _, a := range diagnosisPart(e, owns, sc.org).AtRisk {
				k := key{a.Tenant, a.Account}
				g := groups[k]
				if g == nil {
					g = row{"tenant": a.Tenant, "account": a.Account, "partner": a.Partner, "org_name": e.OrgName(sc.org), "resources": 0, "which": "",
						"mau": 0.0, "profiles": 0.0, "mcv": 0.0, "acr": 0.0, "value": 0.0}
					groups[k] = g
					order = append(order, k)
				}
				w := mv.of(a.Tenant, a.Resource)
				g["resources"] = g["resources"].(int) + 1
				name := cmp.Or(displayName(e, a.Tenant, a.Resource), a.Resource)
				if g["which"] != "" {
					name = g["which"].(string) + ", " + name
				}
				g["which"] = name
				for _, c := range []struct {
					k string
					v float64
				}{{"mau", w.mau}, {"profiles", w.profiles}, {"mcv", w.mcv}, {"acr", w.acr}, {"value", w.value()}} {
					g[c.k] = round2(g[c.k].(float64) + c.v)
				}
			}
			for _, k := range order {
				rows = append(rows, groups[k])
			}
			return nil
		})
		return rows, err
	})
}

// linksTable lists an organisation's links in every tenant, or a tenant's
// links, as of the frame's instant: each account with its partner ID,
// since when, what it carries, and whether it is disabled.
func linksTable(ctx context.Context, s *Server, p Principal, sc scope, f frame) (*table, error) {
	t := &table{Sort: "tenant", Noun: [2]string{"account", "accounts"}}
	status := func(disabled bool) string {
		if disabled {
			return "disabled"
		}
		return "enabled"
	}
	if sc.org == "" {
		t.Columns = []column{colAccount, colName, colPartner, colOrgName, {"status", "Status", "text"}}
		t.Sort = "account"
		return t.byTenant(ctx, s, func(o owner) ([]row, error) {
			var rows []row
			err := o.asOf(ctx, sc, f, func(e *attribution.Engine, owns func(string) bool, _ []string) error {
				if !owns(sc.tenant) {
					return nil
				}
				for _, l := range e.Links(sc.tenant) {
					rows = append(rows, row{"account": l.Account, "name": e.AccountName(sc.tenant, l.Account), "partner": l.Partner,
						"org_name": e.OrgName(e.PartnerOrg(l.Partner)), "status": status(e.AccountDisabled(sc.tenant, l.Account))})
				}
				return nil
			})
			return rows, err
		})
	}
	t.Columns = []column{colTenant, colAccount, colName, colPartner, colOrgName, colSince, {"resources", "Resources it carries", "number"}, {"status", "Status", "text"}}
	// A link counts the Azure resources its account carries in other
	// owners' tenants too: the rows are made of the merged links.
	parts, err := gatherFrom(ctx, s, func(o owner) (linksPart, error) {
		var part linksPart
		err := o.asOf(ctx, sc, f, func(e *attribution.Engine, owns func(string) bool, _ []string) error {
			part = linksPartOf(e, owns, sc.org)
			return nil
		})
		return part, err
	})
	if err != nil {
		return nil, err
	}
	links, names := mergeLinks(parts)
	for _, l := range links {
		t.Rows = append(t.Rows, row{"tenant": l.Tenant, "account": l.Account, "name": names.Accounts[accountKey(l.Tenant, l.Account)], "partner": l.Partner,
			"org_name": names.OrgNames[l.Partner], "since": l.Since, "resources": l.Resources, "status": status(l.Disabled)})
	}
	return t, nil
}

// changesPart is an owner's part of the changes table: the rows of its
// tenants' changes, each with the place in the feed of the first change of
// its resource, which orders the rows of one instant as the feed does.
type changesPart struct {
	Rows  tablePart      `json:"rows"`
	First []store.Cursor `json:"first"`
}

// changesTable lists the credit changes of the frame's month up to its
// instant: an organisation's (credit gained and lost), a tenant's, or
// every one for the operator, corrections applied, newest first.
func changesTable(ctx context.Context, s *Server, p Principal, sc scope, f frame) (*table, error) {
	t := &table{Columns: []column{{"time", "When", "time"}, colTenant, colResource, colName, {"change", "Change", "text"},
		{"from", "From", "text"}, {"to", "To", "text"}, {"cause", "Cause", "text"}, {"note", "Note", "text"}},
		Sort: "time", Desc: true, Noun: [2]string{"change", "changes"}}
	last, err := s.feedEnd(ctx)
	if err != nil {
		return nil, err
	}
	parts, err := gatherFrom(ctx, s, func(o owner) (changesPart, error) {
		return changesPartOf(ctx, o, p, sc, f, t.Columns, last)
	})
	if err != nil {
		return nil, err
	}
	type placed struct {
		first store.Cursor
		r     row
	}
	var all []placed
	for _, part := range parts {
		for i, r := range part.Rows.Rows {
			all = append(all, placed{part.First[i], r})
		}
	}
	// The rows of each resource in the order the feed gives, the
	// resources by their first change, then the rows by time.
	slices.SortStableFunc(all, func(a, b placed) int {
		return cmp.Or(cmp.Compare(a.first.Seq, b.first.Seq), cmp.Compare(a.first.K, b.first.K))
	})
	slices.SortStableFunc(all, func(a, b placed) int { return a.r["time"].(time.Time).Compare(b.r["time"].(time.Time)) })
	for _, a := range all {
		t.Rows = append(t.Rows, a.r)
	}
	return t, nil
}

// changesPartOf returns an owner's part of the changes table: its tenants'
// changes in the feed up to record last, applied as a consumer applies
// them (a correction drops what was held of its resource from its instant
// on), those of the frame shown in words.
func changesPartOf(ctx context.Context, o owner, p Principal, sc scope, f frame, cols []column, last int64) (changesPart, error) {
	part := changesPart{Rows: tablePart{Columns: cols}}
	var owned func(string) bool
	if err := o.read(ctx, func(st *fold.State, owns func(string) bool) error {
		held := map[string]bool{}
		for _, t := range st.Tenants() {
			held[t] = owns(t)
		}
		owned = func(t string) bool { return held[t] }
		return nil
	}); err != nil {
		return part, err
	}
	held := map[attribution.ResourceKey][]attribution.Change{}
	first := map[attribution.ResourceKey]store.Cursor{}
	var keys []attribution.ResourceKey
	err := o.s.store.Changes(ctx, store.ChangeFilter{Org: sc.org, Tenant: sc.tenant}, store.Cursor{}, math.MaxInt32, func(fc store.FiledChange) error {
		if fc.At.Seq > last {
			return store.Stop
		}
		var c fold.Change
		if err := json.Unmarshal(fc.Body, &c); err != nil {
			return err
		}
		if !owned(c.Tenant) {
			return nil
		}
		k := attribution.ResourceKey{Tenant: c.Tenant, Resource: c.Resource}
		if _, ok := held[k]; !ok {
			keys, first[k] = append(keys, k), fc.At
		}
		if c.Correction {
			held[k] = slices.DeleteFunc(held[k], func(h attribution.Change) bool { return !h.Time.Before(c.Time) })
			if c.From.Partner == c.To.Partner && c.From.Org == c.To.Org && slices.Equal(c.From.Shares, c.To.Shares) {
				return nil
			}
		}
		held[k] = append(held[k], c.Change)
		return nil
	})
	if err != nil && !errors.Is(err, store.Stop) {
		return part, err
	}
	err = o.read(ctx, func(st *fold.State, _ func(string) bool) error {
		e := st.Engine()
		side := func(h attribution.Holder) string {
			if h.Partner == "" {
				return "no one (" + credit.Words(h.Reason) + ")"
			}
			who := partnerWords(e, h.Partner)
			if acct := p.shownAccount(e, h.Account, h.Partner); acct == h.Account && acct != "" {
				who += " through " + acct
			}
			return who
		}
		// short names a side by its partner ID and organisation.
		short := func(h attribution.Holder) string {
			if h.Partner == "" {
				return "no one"
			}
			if name := e.OrgName(e.PartnerOrg(h.Partner)); name != "" {
				return h.Partner + " (" + name + ")"
			}
			return h.Partner
		}
		for _, k := range keys {
			for _, c := range held[k] {
				if c.Time.Before(f.Start) || c.Time.After(f.At) {
					continue
				}
				change := side(c.From) + " to " + side(c.To)
				switch {
				case sc.org != "" && credited(sc.org, c.To.Org, c.To.Shares):
					change = "gained from " + short(c.From)
				case sc.org != "" && c.Correction && !credited(sc.org, c.From.Org, c.From.Shares):
					// Filed to the organisation for a credit of its that
					// came later, which a late event withdrew.
					change = "its later credit withdrawn: " + short(c.To) + " from then on"
				case sc.org != "":
					change = "lost to " + short(c.To)
				}
				note := ""
				switch {
				case c.RoleOnly:
					note = "gained by a role alone: no edit or publish before"
				case c.To.Partner != "" && c.ActivityBefore:
					note = "worked on it before"
				}
				part.Rows.Rows = append(part.Rows.Rows, row{"time": c.Time, "tenant": c.Tenant, "resource": c.Resource, "name": displayName(e, c.Tenant, c.Resource),
					"change": change, "from": side(c.From), "to": side(c.To), "cause": causeInWords(c.Cause), "note": note})
				part.First = append(part.First, first[k])
			}
		}
		return nil
	})
	return part, err
}

// azureTable lists an organisation's Azure consumed revenue of the month
// by customer and subscription.
func azureTable(ctx context.Context, s *Server, p Principal, sc scope, f frame) (*table, error) {
	t := &table{Columns: []column{colTenant, {"subscription", "Subscription", "text"}, {"acr", "ACR", "money"}, {"pec_eligible_cost", "PEC-eligible cost", "money"}},
		Sort: "acr", Desc: true, Noun: [2]string{"subscription", "subscriptions"}}
	return t.byTenant(ctx, s, func(o owner) ([]row, error) {
		var rows []row
		err := o.read(ctx, func(st *fold.State, owns func(string) bool) error {
			rep, err := s.azureReport(ctx, st, owns, f.Month)
			if err != nil {
				return err
			}
			for _, r := range rep.Subscriptions {
				if r.Org == sc.org {
					rows = append(rows, row{"tenant": r.Tenant, "subscription": r.Subscription, "acr": money(r.ACR), "pec_eligible_cost": money(r.PECEligibleCost)})
				}
			}
			return nil
		})
		return rows, err
	})
}

// resourcesTable lists a tenant's resources (every tenant's for the
// operator) as of the frame's instant: who is credited, or why no one is,
// and what each carried in the month.
func resourcesTable(ctx context.Context, s *Server, p Principal, sc scope, f frame) (*table, error) {
	t := &table{Columns: []column{colTenant, colResource, colName, colKind, colEnvironment, colPartner, colOrgName, colAccount, colSince,
		{"reason", "Why no one", "text"}, colMAU, colProfiles, colMCV, colACR, colValue},
		Sort: "tenant", Noun: [2]string{"resource", "resources"}}
	var tenants []string
	if sc.tenant != "" {
		tenants = []string{sc.tenant}
	}
	return t.byTenant(ctx, s, func(o owner) ([]row, error) {
		mv, err := o.values(ctx, f.Month, "")
		if err != nil {
			return nil, err
		}
		var v valued
		err = o.read(ctx, func(st *fold.State, owns func(string) bool) error {
			e := st.Engine()
			rows := e.Attribution(tenants...)
			if !f.Current {
				rows = e.AttributionAt(f.At, tenants...)
			}
			for _, r := range rows {
				if !owns(r.Tenant) {
					continue
				}
				rw := row{"tenant": r.Tenant, "resource": r.Resource, "name": displayName(e, r.Tenant, r.Resource), "kind": kindInWords(r.Kind),
					"environment": r.Environment, "partner": r.Partner, "org_name": e.OrgName(r.Org), "account": r.Account, "since": since(r.Since)}
				if r.Status != attribution.StatusAttributed {
					rw["reason"] = credit.Words(r.Reason)
				}
				v.add(rw, mv.of(r.Tenant, r.Resource), r.Tenant, r.Resource)
			}
			return v.put(ctx, s, e.Azure(), f)
		})
		return v.rows, err
	})
}

// sumsPart is an owner's part of the tables that sum reports month by
// month (months, workloads, organisations): the workloads of the monthly
// reports, and the subscriptions of the Azure reports, of its tenants, by
// month; with the present and the months of the log, which every process
// knows, each folding every record.
type sumsPart struct {
	Now     time.Time              `json:"now"`
	Months  []string               `json:"months"`
	Monthly map[string]monthlyPart `json:"monthly"`
	Azure   map[string]azure.Part  `json:"azure"`
}

// sumsPartOf returns an owner's part of the sums of the months monthly
// and azure name (all of the log's when nil), over the tenants owns names.
func (s *Server) sumsPartOf(ctx context.Context, st *fold.State, owns func(string) bool, monthly, az []string) (sumsPart, error) {
	months, err := s.logMonths(ctx, st)
	if err != nil {
		return sumsPart{}, err
	}
	part := sumsPart{Now: st.Engine().Now(), Months: months, Monthly: map[string]monthlyPart{}, Azure: map[string]azure.Part{}}
	orLog := func(asked []string) []string {
		if asked == nil {
			return months
		}
		return asked
	}
	for _, m := range orLog(monthly) {
		mp := s.monthlyPart(st, owns, m)
		mp.Rows.Resources = []metrics.ResourceRow{}
		part.Monthly[m] = mp
	}
	for _, m := range orLog(az) {
		ap, err := s.azurePart(ctx, st, owns, m)
		if err != nil {
			return part, err
		}
		ap.Resources = []azure.PartResource{}
		part.Azure[m] = ap
	}
	return part, nil
}

// sums are the merged parts of the sums: the reports of every tenant, by
// month, and the present and the log's months.
type sums struct {
	now     time.Time
	months  []string
	monthly map[string]metrics.Monthly
	azure   map[string]azure.Report
}

// mergeSums merges the parts of the sums.
func (s *Server) mergeSums(parts []sumsPart) sums {
	out := sums{now: present(parts, func(p sumsPart) time.Time { return p.Now }), months: parts[0].Months,
		monthly: map[string]metrics.Monthly{}, azure: map[string]azure.Report{}}
	for m := range parts[0].Monthly {
		each := make([]monthlyPart, len(parts))
		for i, p := range parts {
			each[i] = p.Monthly[m]
		}
		out.monthly[m] = s.mergeMonthly(m, each)
	}
	for m := range parts[0].Azure {
		each := make([]azure.Part, len(parts))
		for i, p := range parts {
			each[i] = p.Azure[m]
		}
		out.azure[m] = s.mergeAzureReport(m, each)
	}
	return out
}

// gatherSums gathers and merges the sums of the months monthly and az
// name (all of the log's when nil).
func (s *Server) gatherSums(ctx context.Context, monthly, az []string) (sums, error) {
	parts, err := gather(ctx, s, func(st *fold.State, owns func(string) bool) (sumsPart, error) {
		return s.sumsPartOf(ctx, st, owns, monthly, az)
	})
	if err != nil {
		return sums{}, err
	}
	return s.mergeSums(parts), nil
}

// monthsTable lists every month of the log, newest first, with what the
// scope has in each: users, MCV, customers, deployments, ACR and PEC. The
// pages pick their month from it, and draw their charts.
func monthsTable(ctx context.Context, s *Server, p Principal, sc scope, _ frame) (*table, error) {
	t := &table{Columns: []column{{"month", "Month", "text"}, {"at", "As of", "time"}, {"current", "Current", "bool"}, {"data", "Has data", "bool"},
		{"mau", "MAU", "number"}, {"profiles", "Profiles", "number"}, colMCV, {"customers", "Customers", "number"}, {"deployments", "Deployments", "number"},
		colACR, {"pec_eligible_cost", "PEC-eligible cost", "money"}, {"pec_credit", "Partner earned credit", "money"}, {"azure_customers", "Azure customers", "number"}},
		Sort: "month", Desc: true, Noun: [2]string{"month", "months"}}
	sum, err := s.gatherSums(ctx, nil, nil)
	if err != nil {
		return nil, err
	}
	for _, m := range sum.months {
		f, err := frameOf(m, sum.now)
		if err != nil {
			return nil, err
		}
		rep, az := sum.monthly[m], sum.azure[m]
		rw := row{"month": m, "at": f.At, "current": f.Current}
		var mau, profiles, mcv, acr, pec, credit float64
		var customers, deployments, azCustomers int
		tenants := map[string]bool{}
		for _, w := range rep.Workloads {
			if (sc.org == "" || w.Org == sc.org) && (sc.tenant == "" || w.Tenant == sc.tenant) {
				mau, profiles, mcv = mau+w.MAU, profiles+w.Profiles, mcv+w.MCV
				tenants[w.Tenant] = true
			}
		}
		customers = len(tenants)
		for _, o := range rep.Orgs {
			if sc.org != "" && o.Org == sc.org {
				deployments = o.Deployments
			} else if sc.org == "" && sc.tenant == "" {
				deployments += o.Deployments
			}
		}
		azTenants := map[string]bool{}
		switch {
		case sc.org != "":
			for _, o := range az.Orgs {
				if o.Org == sc.org {
					acr, pec, credit, azCustomers = money(o.ACR), money(o.PECEligibleCost), money(o.PECCredit), o.Customers
				}
			}
		default:
			for _, r := range az.Subscriptions {
				if sc.tenant == "" || r.Tenant == sc.tenant {
					acr, pec = acr+money(r.ACR), pec+money(r.PECEligibleCost)
					if money(r.ACR) > 0 {
						azTenants[r.Tenant] = true
					}
				}
			}
			if sc.tenant == "" {
				for _, o := range az.Orgs {
					credit += money(o.PECCredit)
				}
			}
			azCustomers = len(azTenants)
		}
		rw["mau"], rw["profiles"], rw["mcv"], rw["customers"], rw["deployments"] = round2(mau), round2(profiles), round2(mcv), customers, deployments
		rw["acr"], rw["pec_eligible_cost"], rw["pec_credit"], rw["azure_customers"] = round2(acr), round2(pec), round2(credit), azCustomers
		rw["data"] = mau > 0 || profiles > 0 || acr > 0
		t.Rows = append(t.Rows, rw)
	}
	slices.Reverse(t.Rows)
	return t, nil
}

// organisationsPart is an owner's part of the organisations table: the
// sums of the month, the month before and the month a year before, and
// what the directory says of every organisation.
type organisationsPart struct {
	Sums sumsPart       `json:"sums"`
	Orgs []organisation `json:"orgs"`
}

// organisation is what the organisations table reads of one in the
// directory: its name, and its segment and partner.metrics of the month.
type organisation struct {
	Org       string          `json:"org"`
	Name      string          `json:"name"`
	Segment   string          `json:"segment"`
	Inputs    partners.Inputs `json:"inputs"`
	HasInputs bool            `json:"has_inputs"`
}

// organisationsTable lists, for the operator, every registered
// organisation in the month: its MCV and ACR beside the month before's,
// its customers, deployments and capability score.
func organisationsTable(ctx context.Context, s *Server, p Principal, sc scope, f frame) (*table, error) {
	t := &table{Columns: []column{{"org", "Organisation ID", "text"}, {"org_name", "Organisation", "text"},
		colMCV, {"mcv_before", "MCV the month before", "number"}, {"mcv_change", "MCV change", "number"},
		colACR, {"acr_before", "ACR the month before", "money"}, {"acr_change", "ACR change", "money"},
		{"customers", "Customers", "number"}, {"deployments", "Deployments", "number"}, {"score", "Capability score", "number"}, {"qualified", "Qualifies", "bool"}},
		Sort: "org_name", Noun: [2]string{"organisation", "organisations"}}
	before := f.Start.AddDate(0, -1, 0).Format("2006-01")
	baseline, err := metrics.BaselineMonth(f.Month)
	if err != nil {
		return nil, err
	}
	parts, err := gather(ctx, s, func(st *fold.State, owns func(string) bool) (organisationsPart, error) {
		sums, err := s.sumsPartOf(ctx, st, owns, []string{f.Month, before, baseline}, []string{f.Month, before})
		e := st.Engine()
		part := organisationsPart{Sums: sums, Orgs: []organisation{}}
		seg := metrics.SegmentsAtMonthEnd(e)
		for _, org := range e.Orgs() {
			o := organisation{Org: org, Name: e.OrgName(org), Segment: seg(org, f.Month)}
			o.Inputs, o.HasInputs = e.MetricsInputs(org, f.Month)
			part.Orgs = append(part.Orgs, o)
		}
		return part, err
	})
	if err != nil {
		return nil, err
	}
	each := make([]sumsPart, len(parts))
	for i, p := range parts {
		each[i] = p.Sums
	}
	sum := s.mergeSums(each)
	cur, prev, base := sum.monthly[f.Month], sum.monthly[before], sum.monthly[baseline]
	orgRow := func(m metrics.Monthly, org string) metrics.OrgRow {
		for _, o := range m.Orgs {
			if o.Org == org {
				return o
			}
		}
		return metrics.OrgRow{}
	}
	acrOf := func(rep azure.Report, org string) float64 {
		for _, o := range rep.Orgs {
			if o.Org == org {
				return money(o.ACR)
			}
		}
		return 0
	}
	// The directory's organisations are every part's.
	for _, o := range parts[0].Orgs {
		c, b := orgRow(cur, o.Org), orgRow(prev, o.Org)
		score := metrics.CapabilityScore(s.cfg.Metrics, o.Org, o.Segment, cur, base, o.Inputs, o.HasInputs)
		acr, acrBefore := acrOf(sum.azure[f.Month], o.Org), acrOf(sum.azure[before], o.Org)
		t.Rows = append(t.Rows, row{"org": o.Org, "org_name": o.Name, "mcv": c.MCV, "mcv_before": b.MCV, "mcv_change": round2(c.MCV - b.MCV),
			"acr": acr, "acr_before": acrBefore, "acr_change": round2(acr - acrBefore), "customers": c.Customers, "deployments": c.Deployments,
			"score": score.Total, "qualified": score.Qualified})
	}
	return t, nil
}

// workloadsTable lists every month of the log by workload, newest first:
// the users, profiles and MCV the scope has in each, for the pages' charts
// split by workload. A month's rows add up to its row of the months table.
func workloadsTable(ctx context.Context, s *Server, p Principal, sc scope, _ frame) (*table, error) {
	t := &table{Columns: []column{{"month", "Month", "text"}, {"workload", "Workload", "text"}, {"label", "Workload in words", "text"},
		{"mau", "MAU", "number"}, {"profiles", "Profiles", "number"}, colMCV},
		Sort: "month", Desc: true, Noun: [2]string{"workload month", "workload months"}}
	sum, err := s.gatherSums(ctx, nil, []string{})
	if err != nil {
		return nil, err
	}
	months := slices.Clone(sum.months)
	slices.Reverse(months)
	for _, m := range months {
		totals := map[string]*[3]float64{}
		var order []string
		for _, w := range sum.monthly[m].Workloads {
			if (sc.org != "" && w.Org != sc.org) || (sc.tenant != "" && w.Tenant != sc.tenant) {
				continue
			}
			if totals[w.Workload] == nil {
				totals[w.Workload] = &[3]float64{}
				order = append(order, w.Workload)
			}
			v := totals[w.Workload]
			v[0], v[1], v[2] = v[0]+w.MAU, v[1]+w.Profiles, v[2]+w.MCV
		}
		slices.Sort(order)
		for _, wl := range order {
			v := totals[wl]
			t.Rows = append(t.Rows, row{"month": m, "workload": wl, "label": workloadInWords(wl), "mau": round2(v[0]), "profiles": round2(v[1]), "mcv": round2(v[2])})
		}
	}
	return t, nil
}
