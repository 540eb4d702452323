package demo

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
)

// FirstMonth and LastMonth bound the months of usage in the demo.
var (
	FirstMonth = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	LastMonth  = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

type builder struct {
	events []*event.Event
}

func day(year int, month time.Month, d, hour int) time.Time {
	return time.Date(year, month, d, hour, 0, 0, 0, time.UTC)
}

func (b *builder) add(t time.Time, ev event.Event) {
	ev.Time = t
	b.events = append(b.events, &ev)
}

func (b *builder) account(t time.Time, tenant, id, kind, name, partner string) {
	b.add(t, event.Event{Type: event.AccountCreated, Tenant: tenant, Account: id, Kind: kind, Name: name})
	if partner != "" {
		b.add(t.Add(time.Hour), event.Event{Type: event.PalLinked, Tenant: tenant, Account: id, Partner: partner})
	}
}

func (b *builder) env(t time.Time, tenant, id, envType string) {
	b.add(t, event.Event{Type: event.EnvironmentCreated, Tenant: tenant, Environment: id, EnvType: envType})
}

func (b *builder) resource(t time.Time, tenant, env, id, kind, owner, name string) {
	b.add(t, event.Event{Type: event.ResourceCreated, Tenant: tenant, Environment: env, Resource: id, Kind: kind, Owner: owner, Name: name})
}

// app is a resource with monthly usage growing from users0 to users1
// distinct users over the demo.
type app struct {
	tenant, resource string
	from             time.Time
	users0, users1   int
}

// Write writes the demo log to w, sorted by time.
func Write(w io.Writer, seed uint64) error {
	b := &builder{}
	start := day(2025, 1, 1, 8)
	b.add(start, event.Event{Type: event.PartnerRegistered, Org: "1000001", Name: "Fabrikam Consulting", Locations: []string{"1000011", "1000012"}, Segment: event.SMB})
	b.add(start, event.Event{Type: event.PartnerRegistered, Org: "2000001", Name: "Northwind Partners", Locations: []string{"2000011"}, Segment: event.Enterprise})
	b.add(start, event.Event{Type: event.PartnerRegistered, Org: "3000001", Name: "Tailspin Support", Locations: []string{"3000011"}, Segment: event.SMB})

	// contoso: two partners developing one app.
	b.env(day(2025, 1, 2, 9), "contoso", "contoso-prod", event.Production)
	b.account(day(2025, 1, 2, 10), "contoso", "alice@fabrikam.example", event.AccountGuest, "Alice (Fabrikam)", "1000011")
	b.account(day(2025, 1, 2, 10), "contoso", "carol@contoso.example", event.AccountUser, "Carol (Contoso IT)", "")
	b.account(day(2025, 6, 9, 10), "contoso", "bob@northwind.example", event.AccountGuest, "Bob (Northwind)", "2000011")
	b.resource(day(2025, 1, 6, 11), "contoso", "contoso-prod", "expenses", "canvas_app", "alice@fabrikam.example", "Expenses")
	b.add(day(2025, 3, 2, 14), event.Event{Type: event.ResourceCoownerAdd, Tenant: "contoso", Resource: "expenses", Account: "carol@contoso.example"})
	b.add(day(2025, 6, 10, 9), event.Event{Type: event.ResourceCoownerAdd, Tenant: "contoso", Resource: "expenses", Account: "bob@northwind.example"})
	b.resource(day(2025, 1, 20, 11), "contoso", "contoso-prod", "contoso-ci", "ci_instance", "alice@fabrikam.example", "Customer 360")
	b.add(day(2025, 2, 1, 9), event.Event{Type: event.ResourceActivity, Tenant: "contoso", Resource: "contoso-ci", Account: "alice@fabrikam.example", Action: "publish"})

	// litware: a hand-over from Fabrikam to Northwind.
	b.env(day(2025, 1, 3, 9), "litware", "litware-prod", event.Production)
	b.account(day(2025, 1, 3, 10), "litware", "dave@fabrikam.example", event.AccountGuest, "Dave (Fabrikam)", "1000011")
	b.account(day(2025, 1, 3, 10), "litware", "gina@fabrikam.example", event.AccountGuest, "Gina (Fabrikam)", "1000012")
	b.account(day(2025, 8, 25, 10), "litware", "erin@northwind.example", event.AccountGuest, "Erin (Northwind)", "2000011")
	b.resource(day(2025, 1, 10, 11), "litware", "litware-prod", "field-service", "canvas_app", "dave@fabrikam.example", "Field Service")
	b.resource(day(2025, 2, 1, 11), "litware", "litware-prod", "timesheets", "canvas_app", "gina@fabrikam.example", "Timesheets")
	b.add(day(2025, 7, 1, 9), event.Event{Type: event.PalLinked, Tenant: "litware", Account: "gina@fabrikam.example", Partner: "1000011"})
	b.add(day(2025, 9, 1, 9), event.Event{Type: event.ResourceOwnerChange, Tenant: "litware", Resource: "field-service", Owner: "erin@northwind.example"})
	b.add(day(2026, 2, 15, 17), event.Event{Type: event.AccountDisabled, Tenant: "litware", Account: "gina@fabrikam.example"})

	// adatum: an implementer and a support partner.
	b.env(day(2025, 3, 20, 9), "adatum", "adatum-prod", event.Production)
	b.account(day(2025, 3, 20, 10), "adatum", "frank@fabrikam.example", event.AccountGuest, "Frank (Fabrikam)", "1000012")
	b.account(day(2025, 9, 28, 10), "adatum", "hana@tailspin.example", event.AccountGuest, "Hana (Tailspin)", "3000011")
	b.resource(day(2025, 4, 1, 11), "adatum", "adatum-prod", "onboarding", "canvas_app", "frank@fabrikam.example", "Onboarding")
	b.resource(day(2025, 4, 2, 11), "adatum", "adatum-prod", "approvals", "flow", "frank@fabrikam.example", "Approvals")
	b.add(day(2025, 10, 1, 9), event.Event{Type: event.ResourceCoownerAdd, Tenant: "adatum", Resource: "onboarding", Account: "hana@tailspin.example"})
	b.add(day(2025, 10, 1, 9), event.Event{Type: event.ResourceCoownerAdd, Tenant: "adatum", Resource: "approvals", Account: "hana@tailspin.example"})
	b.add(day(2026, 2, 3, 15), event.Event{Type: event.ResourceActivity, Tenant: "adatum", Resource: "onboarding", Account: "frank@fabrikam.example", Action: "edit"})

	// woodgrove: a service principal in production and in a sandbox.
	b.env(day(2025, 1, 3, 9), "woodgrove", "woodgrove-prod", event.Production)
	b.env(day(2025, 4, 28, 9), "woodgrove", "woodgrove-pilot", event.Sandbox)
	b.account(day(2025, 1, 3, 10), "woodgrove", "fabrikam-deployer", event.AccountServicePrincipal, "Fabrikam deployment pipeline", "1000012")
	b.resource(day(2025, 1, 15, 11), "woodgrove", "woodgrove-prod", "inventory", "model_driven_app", "fabrikam-deployer", "Inventory")
	b.resource(day(2025, 3, 1, 11), "woodgrove", "woodgrove-prod", "sales-dataset", "powerbi_dataset", "fabrikam-deployer", "Sales")
	b.resource(day(2025, 5, 1, 11), "woodgrove", "woodgrove-pilot", "pilot-app", "canvas_app", "fabrikam-deployer", "Store pilot")
	b.add(day(2025, 8, 1, 2), event.Event{Type: event.SolutionImported, Tenant: "woodgrove", Environment: "woodgrove-prod", Account: "fabrikam-deployer",
		Resources: []event.SolutionResource{{Resource: "inventory", Kind: "model_driven_app", Name: "Inventory"}, {Resource: "stock-flow", Kind: "flow", Name: "Stock replenishment"}}})
	b.add(day(2026, 1, 5, 9), event.Event{Type: event.EnvironmentChanged, Tenant: "woodgrove", Environment: "woodgrove-pilot", EnvType: event.Production})

	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	apps := []app{
		{"contoso", "expenses", day(2025, 1, 6, 12), 40, 90},
		{"litware", "field-service", day(2025, 1, 10, 12), 30, 60},
		{"litware", "timesheets", day(2025, 2, 1, 12), 20, 35},
		{"adatum", "onboarding", day(2025, 4, 1, 12), 25, 50},
		{"adatum", "approvals", day(2025, 4, 2, 12), 15, 30},
		{"woodgrove", "inventory", day(2025, 1, 15, 12), 30, 70},
		{"woodgrove", "sales-dataset", day(2025, 3, 1, 12), 20, 45},
		{"woodgrove", "pilot-app", day(2025, 5, 1, 12), 15, 40},
		{"woodgrove", "stock-flow", day(2025, 8, 1, 3), 10, 25},
	}
	months := 0
	for m := FirstMonth; !m.After(LastMonth); m = m.AddDate(0, 1, 0) {
		months++
	}
	i := 0
	for m := FirstMonth; !m.After(LastMonth); m = m.AddDate(0, 1, 0) {
		next := m.AddDate(0, 1, 0)
		for _, a := range apps {
			usage(b, rng, a, m, next, a.users0+(a.users1-a.users0)*i/(months-1))
		}
		if !m.Before(day(2025, 2, 1, 0)) {
			count := int64(12000 + 1500*i)
			b.add(m.Add(27*24*time.Hour), event.Event{Type: event.Profiles, Tenant: "contoso", Resource: "contoso-ci", Count: count})
		}
		i++
	}
	azure(b, rng)
	for _, pm := range []event.Event{
		{Org: "1000001", Month: "2026-03", NetCustomerAdds: 3, IntermediateCertified: 4, AdvancedCertified: 2},
		{Org: "2000001", Month: "2026-03", NetCustomerAdds: 2, IntermediateCertified: 12, AdvancedCertified: 3},
		{Org: "3000001", Month: "2026-03", NetCustomerAdds: 1, IntermediateCertified: 2, AdvancedCertified: 0},
	} {
		pm.Type = event.PartnerMetrics
		b.add(day(2026, 3, 31, 18), pm)
	}

	fold.Sort(b.events)
	out := event.NewWriter(w)
	for n, ev := range b.events {
		ev.ID = fmt.Sprintf("demo-%05d", n+1)
		if err := out.Write(ev); err != nil {
			return err
		}
	}
	return out.Flush()
}

// usage adds the uses of an app by n distinct users in the month from m to
// next, each one to three times, after the app exists.
func usage(b *builder, rng *rand.Rand, a app, m, next time.Time, n int) {
	from := m
	if a.from.After(from) {
		from = a.from
	}
	if !from.Before(next) {
		return
	}
	span := next.Sub(from)
	population := n * 3 / 2
	for _, u := range rng.Perm(population)[:n] {
		user := fmt.Sprintf("user%03d@%s.example", u+1, a.tenant)
		for range 1 + rng.IntN(3) {
			at := from.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Minute)
			if at.Before(from) {
				at = at.Add(time.Minute)
			}
			b.add(at, event.Event{Type: event.Usage, Tenant: a.tenant, Resource: a.resource, User: user})
		}
	}
}

// The Azure customer's subscriptions and resources.
const (
	fcProd = "7d1c2a4e-0000-4000-8000-000000000001"
	fcDev  = "7d1c2a4e-0000-4000-8000-000000000002"
)

// azure adds the Azure customer fourthcoffee and two months of its costs.
func azure(b *builder, rng *rand.Rand) {
	const t = "fourthcoffee"
	set := day(2026, 1, 12, 9)
	b.add(set, event.Event{Type: event.AzureGroupPlaced, Tenant: t, Group: "fourthcoffee-platform"})
	b.add(set, event.Event{Type: event.AzureSubscriptionPlaced, Tenant: t, Subscription: fcProd, Group: "fourthcoffee-platform"})
	b.add(set, event.Event{Type: event.AzureSubscriptionPlaced, Tenant: t, Subscription: fcDev, Group: "fourthcoffee-platform"})

	// Fabrikam, through Lighthouse from its own tenant.
	b.account(day(2026, 1, 12, 10), "fabrikam-hq", "fabrikam-ops", event.AccountServicePrincipal, "Fabrikam managed services", "1000011")
	b.add(day(2026, 1, 15, 9), event.Event{Type: event.AzureRoleAssigned, Tenant: t, Assignment: "lighthouse-fabrikam", Principal: "fabrikam-ops",
		PrincipalTenant: "fabrikam-hq", Role: "Contributor", Scope: "/providers/Microsoft.Management/managementGroups/fourthcoffee-platform", PIM: event.PIMActive})
	// Northwind: eligible Owner on production, activated a few hours.
	b.account(day(2026, 1, 20, 10), t, "ivan@northwind.example", event.AccountGuest, "Ivan (Northwind)", "2000011")
	b.add(day(2026, 1, 20, 11), event.Event{Type: event.AzureRoleAssigned, Tenant: t, Assignment: "pim-ivan-owner", Principal: "ivan@northwind.example",
		PrincipalTenant: t, Role: "Owner", Scope: "/subscriptions/" + fcProd, PIM: event.PIMEligible})
	for _, from := range []time.Time{day(2026, 2, 10, 9), day(2026, 2, 24, 13), day(2026, 3, 3, 8), day(2026, 3, 17, 14)} {
		b.add(from, event.Event{Type: event.AzureRoleActivated, Tenant: t, Assignment: "pim-ivan-owner", Until: from.Add(5 * time.Hour)})
	}
	// Tailspin: Reader only.
	b.account(day(2026, 1, 20, 10), t, "jack@tailspin.example", event.AccountGuest, "Jack (Tailspin)", "3000011")
	b.add(day(2026, 1, 20, 11), event.Event{Type: event.AzureRoleAssigned, Tenant: t, Assignment: "reader-jack", Principal: "jack@tailspin.example",
		PrincipalTenant: t, Role: "Reader", Scope: "/subscriptions/" + fcDev, PIM: event.PIMActive})
	// Fabrikam's kim, through the customer's group.
	b.account(day(2026, 1, 22, 10), t, "kim@fabrikam.example", event.AccountGuest, "Kim (Fabrikam)", "1000012")
	b.add(day(2026, 1, 22, 10), event.Event{Type: event.GroupCreated, Tenant: t, Group: "data-team", Name: "Data team"})
	b.add(day(2026, 1, 22, 11), event.Event{Type: event.GroupMemberAdded, Tenant: t, Group: "data-team", Account: "kim@fabrikam.example"})
	b.add(day(2026, 1, 22, 11), event.Event{Type: event.AzureRoleAssigned, Tenant: t, Assignment: "data-team-storage", Principal: "data-team",
		PrincipalTenant: t, Role: "Storage Account Contributor", Scope: "/subscriptions/" + fcDev + "/resourceGroups/data", PIM: event.PIMActive})

	resources := []struct {
		path  string
		daily float64
		meter string
	}{
		{"/subscriptions/" + fcProd + "/resourceGroups/web/providers/Microsoft.Compute/virtualMachines/vm-web", 42, event.MeterReservation},
		{"/subscriptions/" + fcProd + "/resourceGroups/data/providers/Microsoft.Sql/servers/sql-main", 65, event.MeterStandard},
		{"/subscriptions/" + fcDev + "/resourceGroups/data/providers/Microsoft.Storage/storageAccounts/lake", 18, event.MeterStandard},
		{"/subscriptions/" + fcDev + "/resourceGroups/apps/providers/Microsoft.Web/sites/portal", 9, event.MeterStandard},
		{"/subscriptions/" + fcProd + "/resourceGroups/web/providers/Microsoft.SaaS/resources/analytics", 25, event.MeterMarketplace},
	}
	for d := day(2026, 2, 1, 0); d.Before(day(2026, 4, 1, 0)); d = d.AddDate(0, 0, 1) {
		for _, r := range resources {
			cost := float64(int(r.daily*(80+rng.Float64()*40))) / 100
			b.add(d.Add(23*time.Hour), event.Event{Type: event.AzureConsumption, Tenant: t, Resource: r.path,
				Date: d.Format(time.DateOnly), Cost: fmt.Sprintf("%.2f", cost), Meter: r.meter})
		}
	}
}
