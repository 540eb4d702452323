package imports

import (
	"bytes"
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
		About: "a Microsoft Purview audit search exported as CSV (CreationDate, UserIds/UserId, Operations/Operation, AuditData), or its records as JSON: Power Apps LaunchPowerApp (the unified schema's PropertyCollection or the legacy AppName) and Power BI ViewReport into usage, Power Apps and Power Automate permission edits into app and flow co-owners"})
}

// The audit's properties pal reads (Microsoft's Power Apps and Power
// Automate activity logging schemas). A Power Apps record of the unified
// Power Platform schema names its app in its PropertyCollection; one of
// the legacy PowerAppsApp record type (45) in AppName, its AdditionalInfo
// or a JsonPropertiesCollection. A Power Automate record names its flow
// in the link to the flow's details page.
const (
	propApp         = "powerplatform.analytics.resource.power_app.id"
	propTenant      = "powerplatform.analytics.resource.tenant.id"
	propUser        = "enduser.principal_name"
	propTargetID    = "targetuser.id"             // the object ID an app's permission names
	propTargetName  = "targetuser.principal_name" // or its user principal name
	propPermission  = "powerplatform.analytics.resource.permission_type"
	sharingCoOwner  = "3" // SharingPermission: "Owner"/ReadWrite
	sharingRunOnly  = "2" // SharingPermission: "Run-only user"/Read
	workloadFlow    = "microsoftflow"
	workloadFlowNew = "powerautomate"
)

// appLevels are the Power Apps permission levels (permission_type, as
// the apps' role assignments name them): an editor is a co-owner of the
// canvas app, a viewer is not.
var appLevels = map[string]bool{"canedit": true, "edit": true, "coowner": true, "owner": true,
	"canview": false, "view": false, "canviewwithshare": false}

// auditData holds the fields of an audit record pal reads. encoding/json
// matches them to the record's names without regard to case.
type auditData struct {
	ID                 string    `json:"Id"`
	CreationTime       string    `json:"CreationTime"`
	Operation          string    `json:"Operation"`
	OrganizationID     string    `json:"OrganizationId"`
	UserID             string    `json:"UserId"`
	UserKey            string    `json:"UserKey"`
	Workload           string    `json:"Workload"`
	DatasetID          string    `json:"DatasetId"`
	ReportID           string    `json:"ReportId"`
	FlowDetailsURL     string    `json:"FlowDetailsUrl"`
	RecipientUPN       string    `json:"RecipientUPN"`
	SharingPermission  textOrNum `json:"SharingPermission"`
	AppName            string    `json:"AppName"`
	PropertyCollection []struct {
		Name  string    `json:"Name"`
		Value textOrNum `json:"Value"`
	} `json:"PropertyCollection"`
	// A legacy Power Apps record's AdditionalInfo and properties: a JSON
	// object, or a string holding one.
	AdditionalInfo json.RawMessage   `json:"AdditionalInfo"`
	JSONProperties json.RawMessage   `json:"JsonPropertiesCollection"`
	info, props    map[string]string // read from them, by lower-case name
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

// prop returns a property of the record's PropertyCollection, or of a
// legacy record's JsonPropertiesCollection.
func (d *auditData) prop(name string) string {
	for _, p := range d.PropertyCollection {
		if strings.EqualFold(p.Name, name) {
			return strings.TrimSpace(string(p.Value))
		}
	}
	return d.props[strings.ToLower(name)]
}

// looseObject reads a field an export writes as a JSON object or as a
// string holding one: its members as text, by lower-case name; nil when
// it is neither (AdditionalInfo is free text in some records).
func looseObject(raw json.RawMessage) map[string]string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		raw = []byte(strings.TrimSpace(s))
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var m map[string]textOrNum
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = strings.TrimSpace(string(v))
	}
	return out
}

// app returns the app a Power Apps record names: the unified schema's
// property, or the legacy AppName, or the appName of its AdditionalInfo.
func (d *auditData) app() string {
	return appID(cmp.Or(d.prop(propApp), strings.TrimSpace(d.AppName), d.info["appname"]))
}

// noApp says that a Power Apps record names no app, in neither schema.
const noApp = "%s names no app: neither %s in its properties, nor AppName, nor an appName in AdditionalInfo"

// appID is an app's ID as the inventory writes it (Get-AdminPowerApp's
// AppName, a GUID in lower case): a record may name the app by its GUID
// or by its path, /providers/Microsoft.PowerApps/apps/GUID, in any case.
func appID(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	return strings.ToLower(s)
}

// launcher returns who launched an app: the unified schema's end user,
// or the legacy record's UserId, AdditionalInfo's userUPN, or its UserKey
// when that is a user principal name.
func (a *auditRecord) launcher() string {
	key := strings.TrimSpace(a.data.UserKey)
	if !strings.Contains(key, "@") {
		key = ""
	}
	return cmp.Or(a.data.prop(propUser), a.user, a.data.info["userupn"], key)
}

// auditRecord is one audit record: the export's row and its AuditData.
type auditRecord struct {
	row        record
	data       auditData
	at         time.Time
	op, tenant string
	user, id   string
}

// readAudit turns an audit search into usage and app and flow co-owners,
// each at the instant the audit records it. Usage users are user
// principal names in lower case, or their keyed hashes (Options.UserKey);
// a co-owner is resolved to its account through the log: by the name the
// log gives it (pal import users), or by its object ID.
func readAudit(each iter.Seq[record], o *Options, b *builder) {
	st := auditState{b: b, o: o, roles: map[string]*resourceRoles{}}
	// Uses are added as they are read; permission edits are followed in
	// time order, after.
	var edits []auditRecord
	for r := range each {
		a, ok := readAuditRecord(r, o, b)
		switch {
		case !ok:
		case strings.EqualFold(a.op, "LaunchPowerApp"):
			app := a.data.app()
			if app == "" {
				b.problem(a.row.problem(noApp, a.op, propApp))
				continue
			}
			st.usage(a, app, a.launcher())
		case strings.EqualFold(a.op, "ViewReport"):
			dataset := strings.TrimSpace(a.data.DatasetID)
			if dataset == "" {
				b.problem(a.row.problem("ViewReport of report %s names no DatasetId: pal credits Power BI usage to the dataset", a.data.ReportID))
				continue
			}
			st.usage(a, dataset, a.user)
		case isFlowPermission(a) || isAppPermission(a):
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
	if len(d.AdditionalInfo) > 0 {
		d.info = looseObject(d.AdditionalInfo)
	}
	if len(d.JSONProperties) > 0 {
		d.props = looseObject(d.JSONProperties)
	}
	a.op = cmp.Or(strings.TrimSpace(d.Operation), r.str("Operation", "Operations"))
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
	}
	// The record's OrganizationId is its tenant; --tenant only where it
	// names none, and an error where it names another.
	if a.tenant, ok = b.tenantOf(r, cmp.Or(strings.TrimSpace(d.OrganizationID), d.prop(propTenant))); !ok {
		return a, false
	}
	return a, true
}

// auditState is what an audit import follows besides its records: the
// log's inventories and names, and the apps' and flows' roles as the
// edits change them.
type auditState struct {
	b         *builder
	o         *Options
	resources map[string]map[string]attribution.ResourceState // tenant → resource
	names     map[string]map[string]string                    // tenant → user principal name → account
	roles     map[string]*resourceRoles                       // tenant + resource
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
	w := fieldKey(a.data.Workload)
	return (w == workloadFlow || w == workloadFlowNew || a.data.FlowDetailsURL != "") && strings.TrimSpace(a.data.RecipientUPN) != ""
}

// isAppPermission reports whether a record edits or deletes a permission
// on a Power Apps app, in either schema.
func isAppPermission(a auditRecord) bool {
	return strings.EqualFold(a.op, "PowerAppPermissionEdited") || strings.EqualFold(a.op, "PowerAppPermissionDeleted")
}

// deletes reports whether an operation deletes a permission
// (DeletePermissions, PowerAppPermissionDeleted).
func deletes(op string) bool { return strings.Contains(strings.ToLower(op), "delete") }

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

// permEdit is a permission edit on an app or a flow, whichever schema
// wrote it: whom it names, and whether it makes them a co-owner of the
// resource or ends their co-ownership.
type permEdit struct {
	what, resource string // what: "app" or "flow", as reports name it
	principal      string // a user principal name or an object ID
	coowner        bool
}

// flowEdit reads a Power Automate permission record: the owner's
// permission (SharingPermission 3) makes a co-owner; run-only (2) or a
// deleted permission ends one.
func flowEdit(a auditRecord, b *builder) (permEdit, bool) {
	e := permEdit{what: "flow", resource: flowID(a.data.FlowDetailsURL), principal: strings.TrimSpace(a.data.RecipientUPN)}
	perm := strings.TrimSpace(string(a.data.SharingPermission))
	switch {
	case e.resource == "":
		b.problem(a.row.problem("%s for %s: FlowDetailsUrl %q names no flow", a.op, e.principal, a.data.FlowDetailsURL))
		return e, false
	case deletes(a.op) || perm == sharingRunOnly:
	case perm == sharingCoOwner:
		e.coowner = true
	default:
		b.problem(a.row.problem("%s on flow %s for %s: SharingPermission %q is neither 3 (owner) nor 2 (run-only)", a.op, e.resource, e.principal, perm))
		return e, false
	}
	return e, true
}

// appEdit reads a Power Apps permission record: CanEdit makes the
// principal it names a co-owner of the app; CanView, or a deleted
// permission, ends that.
func appEdit(a auditRecord, b *builder) (permEdit, bool) {
	d := &a.data
	e := permEdit{what: "app", resource: d.app(), principal: cmp.Or(d.prop(propTargetName), d.prop(propTargetID))}
	level := d.prop(propPermission)
	editor, known := appLevels[fieldKey(level)]
	switch {
	case e.resource == "":
		b.problem(a.row.problem(noApp, a.op, propApp))
		return e, false
	case e.principal == "":
		b.problem(a.row.problem("%s on app %s names no principal: neither %s nor %s", a.op, e.resource, propTargetID, propTargetName))
		return e, false
	case deletes(a.op):
	case !known:
		b.problem(a.row.problem("%s on app %s for %s: %s %q is none of CanEdit (a co-owner), CanView, CanViewWithShare", a.op, e.resource, e.principal, propPermission, level))
		return e, false
	default:
		e.coowner = editor
	}
	return e, true
}

// resourceRoles are an app's or a flow's owner and co-owners, followed
// through an audit's permission edits from what the log knows, so that
// only changes are added.
type resourceRoles struct {
	owner string
	co    map[string]bool
}

func (st *auditState) rolesOf(tenant, resource string) *resourceRoles {
	k := tenant + "\x00" + resource
	if st.roles[k] == nil {
		r := &resourceRoles{co: map[string]bool{}}
		if st.b.known != nil {
			res := st.inventory(tenant)[resource]
			r.owner = res.Owner
			for _, acct := range res.Coowners {
				r.co[acct] = true
			}
		}
		st.roles[k] = r
	}
	return st.roles[k]
}

// named resolves a user principal name to the account the log names so.
func (st *auditState) named(tenant, upn string) string {
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

// principal resolves whom an edit names to an account of the log: a user
// principal name through the names the log gives its accounts, an object
// ID as the account of that ID. A group is reported: co-owners are
// accounts.
func (st *auditState) principal(a auditRecord, e permEdit) (string, bool) {
	b, who := st.b, e.principal
	if strings.Contains(who, "@") {
		if acct := st.named(a.tenant, who); acct != "" {
			return acct, true
		}
		b.problem(a.row.problem("%s on %s %s: %s is no account the log names: import the directory's users (pal import users) and give the log with --log", a.op, e.what, e.resource, who))
		return "", false
	}
	if b.known != nil {
		for _, id := range []string{who, strings.ToLower(who)} {
			switch {
			case b.known.AccountExists(a.tenant, id):
				return id, true
			case b.known.IsGroup(a.tenant, id):
				if e.coowner {
					b.problem(a.row.problem("%s on %s %s: %s is a group, and co-owners are accounts: a group's members are not co-owners in pal's log, so this share credits no partner; share the %s with the partner's own accounts", a.op, e.what, e.resource, who, e.what))
				}
				return "", false
			}
		}
	}
	b.problem(a.row.problem("%s on %s %s: %s is no account the log knows: import the directory's users (pal import users) and give the log with --log", a.op, e.what, e.resource, who))
	return "", false
}

// edit applies a permission edit on an app or a flow, in the order of
// time: a grant that makes a co-owner adds one, dated by the record; one
// that ends a co-ownership removes it. The owner's own permission, and
// what changes nothing, add nothing.
func (st *auditState) edit(a auditRecord) {
	b := st.b
	read := flowEdit
	if isAppPermission(a) {
		read = appEdit
	}
	e, ok := read(a, b)
	if !ok {
		return
	}
	if b.known != nil {
		switch kind := st.inventory(a.tenant)[e.resource].Kind; {
		case kind == "":
			b.problem(a.row.problem("%s on %s %s, which the log does not know in tenant %s: import the inventory that lists it first, then this audit again", a.op, e.what, e.resource, a.tenant))
			return
		case !event.Kinds[kind].CoOwners:
			b.problem(a.row.problem("%s on %s %s: a %s has an owner only, no co-owners, so its permissions credit no one", a.op, e.what, e.resource, kind))
			return
		}
	}
	acct, ok := st.principal(a, e)
	if !ok {
		return
	}
	r := st.rolesOf(a.tenant, e.resource)
	stamp := a.at.Format(time.RFC3339Nano)
	switch {
	case acct == r.owner:
		// The owner's own permission makes no co-owner.
	case e.coowner && !r.co[acct]:
		r.co[acct] = true
		b.add(event.Event{Type: event.ResourceCoownerAdd, Time: a.at, Tenant: a.tenant, Resource: e.resource, Account: acct}, a.tenant, e.resource, acct, stamp)
	case !e.coowner && r.co[acct]:
		delete(r.co, acct)
		b.add(event.Event{Type: event.ResourceCoownerDel, Time: a.at, Tenant: a.tenant, Resource: e.resource, Account: acct}, a.tenant, e.resource, acct, "removed", stamp)
	}
}
