package gen

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/usage"
)

// AzureConfig says how large an Azure data set to make.
type AzureConfig struct {
	Seed      uint64
	Tenants   int
	Resources int
	Months    int
	// Start is the first day of consumption; DefaultStart when zero.
	Start time.Time
	// Progress, when set, is told how many consumption rows are written.
	Progress func(written int64)
}

// azureTenant is what the consumption of a generated customer needs,
// compactly: a resource's path is made again for each of its records from
// its number, so that a million resources cost a few bytes each rather
// than a path each (the consumption file's dictionary holds the paths).
type azureTenant struct {
	id   string
	subs []string
	// groups is how many resource groups the resources are spread over.
	groups int
	// types[r] is resource r's type, an index in azureTypes.
	types []uint8
	// scale[r] is resource r's typical daily cost.
	scale []float64
}

// path appends the path of resource r to buf.
func (t *azureTenant) path(buf []byte, r int) []byte {
	buf = append(buf, "/subscriptions/"...)
	buf = append(buf, t.subs[r%len(t.subs)]...)
	buf = append(buf, "/resourcegroups/rg-"...)
	buf = strconv.AppendInt(buf, int64(r%t.groups), 10)
	buf = append(buf, "/providers/"...)
	buf = append(buf, azureTypes[t.types[r]]...)
	buf = append(buf, "/res-"...)
	return strconv.AppendInt(buf, int64(r+1), 10)
}

var azureTypes = []string{
	"Microsoft.Compute/virtualMachines", "Microsoft.Storage/storageAccounts", "Microsoft.Sql/servers",
	"Microsoft.Web/sites", "Microsoft.ContainerService/managedClusters", "Microsoft.KeyVault/vaults",
	"Microsoft.Network/applicationGateways", "Microsoft.DocumentDB/databaseAccounts",
}

// WriteAzure makes an Azure data set: the control log (partners, customer
// tenants with management-group trees that change, consultants and
// service principals with links, role assignments at every kind of scope,
// Reader-only partners, PIM activations, security groups and Lighthouse
// delegations from partners' own tenants) to control, and the daily
// consumption of every resource, as Parquet, to consumption. The same
// config always gives the same bytes.
func WriteAzure(cfg AzureConfig, control io.Writer, consumption io.Writer) error {
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	if cfg.Tenants < 1 || cfg.Months < 1 || cfg.Resources < cfg.Tenants {
		return fmt.Errorf("an Azure data set needs at least one tenant, one month and a resource per tenant")
	}
	end := cfg.Start.AddDate(0, cfg.Months, 0)
	setup := cfg.Start.AddDate(0, -1, 0)
	b := &builder{rng: rand.New(rand.NewPCG(cfg.Seed, 0x617a75))}

	orgs := make([]org, max(3, cfg.Tenants/20))
	for i := range orgs {
		base := 2000000 + 10*i
		o := org{id: fmt.Sprint(base)}
		for l := range 1 + b.rng.IntN(2) {
			o.locations = append(o.locations, fmt.Sprint(base+1+l))
		}
		b.add(setup, event.Event{Type: event.PartnerRegistered, Org: o.id, Name: fmt.Sprintf("Azure Partner %d", i+1),
			Locations: o.locations, Segment: event.SMB})
		// Every partner manages customers through Lighthouse from its
		// own tenant: a service principal and a group of engineers.
		home := fmt.Sprintf("partner-%03d", i+1)
		b.add(setup, event.Event{Type: event.AccountCreated, Tenant: home, Account: "ops-sp", Kind: event.AccountServicePrincipal})
		b.add(setup, event.Event{Type: event.PalLinked, Tenant: home, Account: "ops-sp", Partner: o.locations[0]})
		b.add(setup, event.Event{Type: event.GroupCreated, Tenant: home, Group: "engineers", Name: "Engineers"})
		for e := range 3 {
			acct := fmt.Sprintf("eng%d", e+1)
			b.add(setup, event.Event{Type: event.AccountCreated, Tenant: home, Account: acct, Kind: event.AccountUser})
			b.add(setup, event.Event{Type: event.PalLinked, Tenant: home, Account: acct, Partner: o.locations[len(o.locations)-1]})
			b.add(setup, event.Event{Type: event.GroupMemberAdded, Tenant: home, Group: "engineers", Account: acct})
		}
		orgs[i] = o
	}
	orgCum := cumulative(len(orgs), 1.1)
	tenantCum := cumulative(cfg.Tenants, 1.0)
	tenants := make([]*azureTenant, cfg.Tenants)
	for i := range tenants {
		n := max(1, int(float64(cfg.Resources)*weight(tenantCum, i)/tenantCum[len(tenantCum)-1]))
		tenants[i] = b.azureTenant(fmt.Sprintf("customer-%05d", i+1), n, orgs, orgCum, setup, cfg.Start, end)
	}
	if err := b.writeControl(control); err != nil {
		return err
	}
	return writeConsumption(cfg, b.rng, tenants, end, consumption)
}

// azureTenant adds a customer tenant: its management groups and
// subscriptions, its resources (known by their paths only), the partners
// that work on it and how.
func (b *builder) azureTenant(id string, resources int, orgs []org, orgCum []float64, setup, start, end time.Time) *azureTenant {
	add := func(at time.Time, ev event.Event) { ev.Tenant = id; b.add(at, ev) }
	t := &azureTenant{id: id, types: make([]uint8, 0, resources), scale: make([]float64, 0, resources)}
	// The tree: the root holds corp, which holds prod and nonprod.
	add(setup, event.Event{Type: event.AzureGroupPlaced, Group: "corp"})
	add(setup, event.Event{Type: event.AzureGroupPlaced, Group: "prod", Parent: "corp"})
	add(setup, event.Event{Type: event.AzureGroupPlaced, Group: "nonprod", Parent: "corp"})
	subs := make([]string, 1+min(9, resources/40))
	for s := range subs {
		subs[s] = fmt.Sprintf("%08x-0000-4000-8000-%012d", b.rng.Uint32(), s+1)
		group := "prod"
		if s%3 == 2 {
			group = "nonprod"
		}
		add(setup, event.Event{Type: event.AzureSubscriptionPlaced, Subscription: subs[s], Group: group})
	}
	if len(subs) > 2 && b.chance(0.3) {
		// A subscription moves to production mid-period.
		add(b.between(start, end), event.Event{Type: event.AzureSubscriptionPlaced, Subscription: subs[2], Group: "prod"})
	}
	t.subs, t.groups = subs, 1+resources/15
	for range resources {
		t.types = append(t.types, uint8(b.rng.IntN(len(azureTypes))))
		t.scale = append(t.scale, math.Exp(b.rng.NormFloat64()*1.2+1.5))
	}
	// The partners of the tenant.
	partners := 1 + b.rng.IntN(3)
	assignment := 0
	assign := func(at time.Time, principal, principalTenant, role, scope, pim string) string {
		assignment++
		a := fmt.Sprintf("ra-%d", assignment)
		add(at, event.Event{Type: event.AzureRoleAssigned, Assignment: a, Principal: principal, PrincipalTenant: principalTenant,
			Role: role, Scope: scope, PIM: pim})
		return a
	}
	for p := range partners {
		o := orgs[zipf(b.rng, orgCum)]
		loc := o.locations[b.rng.IntN(len(o.locations))]
		consultant := fmt.Sprintf("consultant-%d", p+1)
		add(setup, event.Event{Type: event.AccountCreated, Account: consultant, Kind: event.AccountGuest})
		add(setup, event.Event{Type: event.PalLinked, Account: consultant, Partner: loc})
		sub := "/subscriptions/" + subs[b.rng.IntN(len(subs))]
		switch r := b.rng.Float64(); {
		case r < 0.35:
			// Contributor on a subscription, from a day of the period.
			assign(b.between(setup, end), consultant, id, "Contributor", sub, event.PIMActive)
		case r < 0.55:
			// Through Lighthouse, on the production management group.
			home := fmt.Sprintf("partner-%03d", 1+slicesIndex(orgs, o.id))
			assign(setup, "ops-sp", home, "Contributor", "/providers/Microsoft.Management/managementGroups/prod", event.PIMActive)
			assign(setup, "engineers", home, "Virtual Machine Contributor", sub+"/resourceGroups/rg-0", event.PIMActive)
		case r < 0.75:
			// Eligible Owner, activated a few hours on some days.
			a := assign(setup, consultant, id, "Owner", sub, event.PIMEligible)
			for day := start; day.Before(end); day = day.AddDate(0, 0, 1) {
				if b.chance(0.3) {
					from := day.Add(time.Duration(8+b.rng.IntN(6)) * time.Hour)
					add(from, event.Event{Type: event.AzureRoleActivated, Assignment: a, Until: from.Add(time.Duration(1+b.rng.IntN(8)) * time.Hour)})
				}
			}
		case r < 0.85:
			// Reader only: it earns nothing.
			assign(setup, consultant, id, "Reader", sub, event.PIMActive)
		default:
			// A customer's group that the consultant joins, then leaves.
			group := fmt.Sprintf("ops-%d", p+1)
			add(setup, event.Event{Type: event.GroupCreated, Group: group, Name: "Operations"})
			assign(setup, group, id, "Contributor", sub+"/resourceGroups/rg-0", event.PIMActive)
			joined := b.between(setup, start)
			add(joined, event.Event{Type: event.GroupMemberAdded, Group: group, Account: consultant})
			add(b.between(start, end), event.Event{Type: event.GroupMemberRemoved, Group: group, Account: consultant})
		}
	}
	return t
}

func slicesIndex(orgs []org, id string) int {
	for i, o := range orgs {
		if o.id == id {
			return i
		}
	}
	return -1
}

// groupRows is about how many consumption rows a row group holds.
const groupRows = 1 << 18

// writeConsumption writes a record per resource and day, with a meter
// other than standard now and then. It streams in bounded memory: month by
// month, a row group holds the records of a run of tenants, about
// groupRows rows, resource by resource and day by day. So a row group's
// dictionaries hold only its own paths, what waits in memory is one row
// group, and the rows of a month, of a tenant and of a resource each come
// together, as a reader of one month wants them.
func writeConsumption(cfg AzureConfig, rng *rand.Rand, tenants []*azureTenant, end time.Time, out io.Writer) error {
	w := usage.NewConsumptionWriter(out)
	var written int64
	var buf []byte
	for month := cfg.Start; month.Before(end); month = month.AddDate(0, 1, 0) {
		var dates []string
		for day := month; day.Before(end) && day.Before(month.AddDate(0, 1, 0)); day = day.AddDate(0, 0, 1) {
			dates = append(dates, day.Format(time.DateOnly))
		}
		rows := 0
		for _, t := range tenants {
			for i := range t.scale {
				buf = t.path(buf[:0], i)
				path := string(buf)
				for _, date := range dates {
					meter := event.MeterStandard
					switch r := rng.IntN(100); {
					case r < 6:
						meter = event.MeterReservation
					case r < 8:
						meter = event.MeterMarketplace
					case r < 9:
						meter = event.MeterSpot
					}
					cost := t.scale[i] * (0.7 + 0.6*rng.Float64())
					cost, _ = strconv.ParseFloat(strconv.FormatFloat(cost, 'f', 4, 64), 64)
					if err := w.Write(usage.Consumption{Tenant: t.id, Resource: path, Date: date, Cost: cost, Meter: meter}); err != nil {
						return err
					}
				}
			}
			n := len(t.scale) * len(dates)
			rows, written = rows+n, written+int64(n)
			if rows >= groupRows {
				if err := w.Flush(); err != nil {
					return err
				}
				rows = 0
				if cfg.Progress != nil {
					cfg.Progress(written)
				}
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if cfg.Progress != nil {
			cfg.Progress(written)
		}
	}
	return w.Close()
}
