package imports

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
)

func init() {
	register(Source{Name: "audit", Signature: []string{"AuditData", "Operation", "Operations", "CreationTime"}, Streams: true, read: readAudit,
		About: "a Microsoft Purview audit search exported as CSV (CreationDate, UserIds/UserId, Operations/Operation, AuditData), or its records as JSON: Power Apps LaunchPowerApp and Power BI ViewReport into usage, Power Automate permission edits into flow co-owners"})
}

// The audit's properties pal reads (Microsoft's Power Apps and Power
// Automate activity logging schemas). A Power Apps record names its app
// in its PropertyCollection; a Power Automate record names its flow in
// the link to the flow's details page.
const (
	propApp         = "powerplatform.analytics.resource.power_app.id"
	propTenant      = "powerplatform.analytics.resource.tenant.id"
	propUser        = "enduser.principal_name"
	sharingCoOwner  = "3" // SharingPermission: "Owner"/ReadWrite
	sharingRunOnly  = "2" // SharingPermission: "Run-only user"/Read
	workloadFlow    = "microsoftflow"
	workloadFlowNew = "powerautomate"
)

// auditData holds the fields of an audit record pal reads. encoding/json
// matches them to the record's names without regard to case.
type auditData struct {
	ID                 string    `json:"Id"`
	CreationTime       string    `json:"CreationTime"`
	Operation          string    `json:"Operation"`
	OrganizationID     string    `json:"OrganizationId"`
	UserID             string    `json:"UserId"`
	Workload           string    `json:"Workload"`
	DatasetID          string    `json:"DatasetId"`
	ReportID           string    `json:"ReportId"`
	FlowDetailsURL     string    `json:"FlowDetailsUrl"`
	RecipientUPN       string    `json:"RecipientUPN"`
	SharingPermission  textOrNum `json:"SharingPermission"`
	PropertyCollection []struct {
		Name  string    `json:"Name"`
		Value textOrNum `json:"Value"`
	} `json:"PropertyCollection"`
}

// textOrNum is a field an export writes as a string or a number.
type textOrNum string

func (t *textOrNum) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		*t = textOrNum(s)
		return err
	}
	if string(b) != "null" {
		*t = textOrNum(b)
	}
	return nil
}

// prop returns a property of the record's PropertyCollection.
func (d *auditData) prop(name string) string {
	for _, p := range d.PropertyCollection {
		if strings.EqualFold(p.Name, name) {
			return strings.TrimSpace(string(p.Value))
		}
	}
	return ""
}

// auditRecord is one audit record: the export's row and its AuditData.
type auditRecord struct {
	row        record
	data       auditData
	at         time.Time
	op, tenant string
	user, id   string
}

// readAudit turns an audit search into usage and flow co-owners, each at
// the instant the audit records it. Usage users are user principal names
// in lower case, or their keyed hashes (Options.UserKey); a co-owner's
// name is resolved to its account through the accounts the log names
// (pal import users).
func readAudit(each iter.Seq[record], o *Options, b *builder) {
	st := auditState{b: b, o: o, flows: map[string]*flowRoles{}}
	// Uses are added as they are read; permission edits are followed in
	// time order, after.
	var edits []auditRecord
	for r := range each {
		a, ok := readAuditRecord(r, o, b)
		switch {
		case !ok:
		case strings.EqualFold(a.op, "LaunchPowerApp"):
			app := a.data.prop(propApp)
			if app == "" {
				b.problem(a.row.problem("LaunchPowerApp names no %s in its PropertyCollection: an older audit format, which does not say the app", propApp))
				continue
			}
			st.usage(a, app, cmp.Or(a.data.prop(propUser), a.user))
		case strings.EqualFold(a.op, "ViewReport"):
			dataset := strings.TrimSpace(a.data.DatasetID)
			if dataset == "" {
				b.problem(a.row.problem("ViewReport of report %s names no DatasetId: pal credits Power BI usage to the dataset", a.data.ReportID))
				continue
			}
			st.usage(a, dataset, a.user)
		case isFlowPermission(a):
			edits = append(edits, a)
		}
	}
	slices.SortStableFunc(edits, func(x, y auditRecord) int { return x.at.Compare(y.at) })
	for _, a := range edits {
		st.edit(a)
	}
}

// readAuditRecord reads a row of the export: its AuditData (a JSON string
// in a CSV column, an object in JSON, or the record itself when it is the
// audit data), the operation, instant, tenant and user.
func readAuditRecord(r record, o *Options, b *builder) (auditRecord, bool) {
	a := auditRecord{row: r}
	var raw []byte
	switch v := r.get("AuditData").(type) {
	case string:
		raw = []byte(v)
	case map[string]any:
		raw, _ = json.Marshal(v)
	case nil:
		if r.fields != nil {
			raw, _ = json.Marshal(r.fields)
		}
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &a.data); err != nil {
			b.problem(r.problem("AuditData is not an audit record (%v)", err))
			return a, false
		}
	}
	d := &a.data
	a.op = cmp.Or(strings.TrimSpace(d.Operation), r.str("Operation", "Operations"))
	a.tenant = cmp.Or(strings.TrimSpace(d.OrganizationID), d.prop(propTenant), o.Tenant)
	a.user = cmp.Or(strings.TrimSpace(d.UserID), r.str("UserId", "UserIds"))
	a.id = cmp.Or(d.ID, r.str("RecordId", "Identity"))
	var ok bool
	if a.at, ok = parseTime(d.CreationTime); !ok {
		a.at, ok = parseTime(r.str("CreationDate"))
	}
	switch {
	case a.op == "":
		b.problem(r.problem("an audit record names no Operation"))
		return a, false
	case !ok:
		b.problem(r.problem("%s: neither CreationTime nor CreationDate is a time (%q)", a.op, cmp.Or(d.CreationTime, r.str("CreationDate"))))
		return a, false
	case a.tenant == "":
		b.problem(r.problem("%s: the record names no OrganizationId: name the tenant with --tenant", a.op))
		return a, false
	}
	return a, true
}

// auditState is what an audit import follows besides its records: the
// log's inventories and names, and the flows' roles as the edits change
// them.
type auditState struct {
	b         *builder
	o         *Options
	resources map[string]map[string]attribution.ResourceState // tenant → resource
	names     map[string]map[string]string                    // tenant → user principal name → account
	flows     map[string]*flowRoles                           // tenant + flow
}

// inventory returns the resources the log knows in a tenant.
func (st *auditState) inventory(tenant string) map[string]attribution.ResourceState {
	if st.resources == nil {
		st.resources = map[string]map[string]attribution.ResourceState{}
	}
	if st.resources[tenant] == nil {
		_, st.resources[tenant] = st.b.known.Inventory(tenant)
	}
	return st.resources[tenant]
}

// usage adds one use of a resource by a user. Given the log, a resource
// it does not know is reported rather than added, since the log would
// refuse the use: the inventory is imported first, then the audit again
// (its events are the same, nothing doubles).
func (st *auditState) usage(a auditRecord, resource, user string) {
	b := st.b
	switch {
	case user == "":
		b.problem(a.row.problem("%s of %s names no user", a.op, resource))
		return
	case b.known != nil && st.inventory(a.tenant)[resource].Kind == "":
		b.problem(a.row.problem("%s of %s, which the log does not know in tenant %s: import the inventory that lists it first, then this audit again", a.op, resource, a.tenant))
		return
	}
	user = st.o.pseudonym(user)
	// The key holds no user name: with pseudonyms, an event's id must not
	// give one away.
	key := a.id
	if key == "" {
		key = a.op + "\x00" + a.at.Format(time.RFC3339Nano) + "\x00" + user
	}
	b.add(event.Event{Type: event.Usage, Time: a.at, Tenant: a.tenant, Resource: resource, User: user}, a.tenant, resource, key)
}

// pseudonym returns a usage user as the log holds it: the identifier in
// lower case, or its HMAC-SHA256 under the key, so that distinct counts
// stay exact while no user name enters the log.
func (o *Options) pseudonym(user string) string {
	user = strings.ToLower(user)
	if len(o.UserKey) == 0 {
		return user
	}
	m := hmac.New(sha256.New, o.UserKey)
	m.Write([]byte(user))
	return hex.EncodeToString(m.Sum(nil))
}

// isFlowPermission reports whether a record edits or deletes a user's
// permission on a flow: a Power Automate record naming its recipient.
func isFlowPermission(a auditRecord) bool {
	w := fold(a.data.Workload)
	return (w == workloadFlow || w == workloadFlowNew || a.data.FlowDetailsURL != "") && strings.TrimSpace(a.data.RecipientUPN) != ""
}

// flowID reads a flow's name from the link to its details page
// (…/environments/ENV/flows/FLOW/details).
func flowID(url string) string {
	parts := strings.Split(strings.TrimRight(url, "/"), "/")
	for i, p := range parts {
		if strings.EqualFold(p, "flows") && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return ""
}

// flowRoles are a flow's owner and co-owners, followed through an
// audit's permission edits from what the log knows, so that only changes
// are added.
type flowRoles struct {
	owner string
	co    map[string]bool
}

func (st *auditState) flow(tenant, flow string) *flowRoles {
	k := tenant + "\x00" + flow
	if st.flows[k] == nil {
		f := &flowRoles{co: map[string]bool{}}
		if st.b.known != nil {
			res := st.inventory(tenant)[flow]
			f.owner = res.Owner
			for _, acct := range res.Coowners {
				f.co[acct] = true
			}
		}
		st.flows[k] = f
	}
	return st.flows[k]
}

// account resolves a user principal name to the account the log names so.
func (st *auditState) account(tenant, upn string) string {
	if st.b.known == nil {
		return ""
	}
	if st.names == nil {
		st.names = map[string]map[string]string{}
	}
	if st.names[tenant] == nil {
		st.names[tenant] = st.b.known.AccountsNamed(tenant)
	}
	return st.names[tenant][strings.ToLower(upn)]
}

// edit applies a permission edit: an owner's permission (SharingPermission
// 3) makes a co-owner; run-only (2) or a deleted permission ends one.
func (st *auditState) edit(a auditRecord) {
	b := st.b
	flow := flowID(a.data.FlowDetailsURL)
	upn := strings.TrimSpace(a.data.RecipientUPN)
	if flow == "" {
		b.problem(a.row.problem("%s for %s: FlowDetailsUrl %q names no flow", a.op, upn, a.data.FlowDetailsURL))
		return
	}
	if b.known != nil && st.inventory(a.tenant)[flow].Kind == "" {
		b.problem(a.row.problem("%s on flow %s, which the log does not know in tenant %s: import the inventory that lists it first, then this audit again", a.op, flow, a.tenant))
		return
	}
	acct := st.account(a.tenant, upn)
	if acct == "" {
		b.problem(a.row.problem("%s on flow %s: %s is no account the log names: import the directory's users (pal import users) and give the log with --log", a.op, flow, upn))
		return
	}
	deleted := strings.Contains(strings.ToLower(a.op), "delete")
	perm := strings.TrimSpace(string(a.data.SharingPermission))
	f := st.flow(a.tenant, flow)
	stamp := a.at.Format(time.RFC3339Nano)
	switch {
	case acct == f.owner:
		// The owner's own permission makes no co-owner.
	case !deleted && perm == sharingCoOwner && !f.co[acct]:
		f.co[acct] = true
		b.add(event.Event{Type: event.ResourceCoownerAdd, Time: a.at, Tenant: a.tenant, Resource: flow, Account: acct}, a.tenant, flow, acct, stamp)
	case (deleted || perm == sharingRunOnly) && f.co[acct]:
		delete(f.co, acct)
		b.add(event.Event{Type: event.ResourceCoownerDel, Time: a.at, Tenant: a.tenant, Resource: flow, Account: acct}, a.tenant, flow, acct, "removed", stamp)
	case !deleted && perm != sharingCoOwner && perm != sharingRunOnly:
		b.problem(a.row.problem("%s on flow %s for %s: SharingPermission %q is neither 3 (owner) nor 2 (run-only)", a.op, flow, upn, perm))
	}
}
