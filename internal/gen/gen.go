package gen

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/usage"
)

// Config says how large a data set to make.
type Config struct {
	Seed        uint64
	Tenants     int
	UsageEvents int64
	Months      int
	// Start is the first instant of usage; DefaultStart when zero.
	Start time.Time
	// Progress, when set, is told how many usage events are written.
	Progress func(written int64)
}

// DefaultStart is the first month of a generated data set.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type org struct {
	id        string
	locations []string
}

type tenant struct {
	id        string
	weight    float64
	users     []string
	resources []string // those that take usage
	weights   []float64
}

type builder struct {
	rng    *rand.Rand
	events []*event.Event
}

func (b *builder) add(at time.Time, ev event.Event) {
	ev.Time = at
	b.events = append(b.events, &ev)
}

// between returns a random instant in [from, to).
func (b *builder) between(from, to time.Time) time.Time {
	return from.Add(time.Duration(b.rng.Int64N(int64(to.Sub(from))))).Truncate(time.Second)
}

func (b *builder) chance(p float64) bool { return b.rng.Float64() < p }

// zipf returns a rank in [0, n) drawn with weight 1/(rank+1)^s.
func zipf(rng *rand.Rand, cum []float64) int {
	return sort.SearchFloat64s(cum, rng.Float64()*cum[len(cum)-1])
}

// weight returns the weight of rank i of cumulative weights.
func weight(cum []float64, i int) float64 {
	if i == 0 {
		return cum[0]
	}
	return cum[i] - cum[i-1]
}

// writeControl writes the data set's control events, in time order.
func (b *builder) writeControl(w io.Writer) error {
	fold.Sort(b.events)
	cw := event.NewWriter(w)
	for _, ev := range b.events {
		if err := cw.Write(ev); err != nil {
			return err
		}
	}
	return cw.Flush()
}

func cumulative(n int, s float64) []float64 {
	cum := make([]float64, n)
	total := 0.0
	for i := range n {
		total += 1 / math.Pow(float64(i+1), s)
		cum[i] = total
	}
	return cum
}

var kinds = []struct {
	kind   string
	weight float64
}{{"canvas_app", 50}, {"flow", 20}, {"model_driven_app", 10}, {"powerbi_dataset", 10}, {"pages_site", 5}, {"bot", 5}}

// Write makes the data set: the control log to control and the usage to
// use. The same config always gives the same bytes.
func Write(cfg Config, control io.Writer, use io.Writer) error {
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	if cfg.Tenants < 1 || cfg.Months < 1 || cfg.UsageEvents < 0 {
		return fmt.Errorf("a data set needs at least one tenant and one month")
	}
	end := cfg.Start.AddDate(0, cfg.Months, 0)
	b := &builder{rng: rand.New(rand.NewPCG(cfg.Seed, 0x70616c))}
	setup := cfg.Start.AddDate(0, -1, 0)

	orgs := make([]org, max(3, cfg.Tenants/25))
	for i := range orgs {
		base := 1000000 + 10*i
		o := org{id: fmt.Sprint(base)}
		for l := range 1 + b.rng.IntN(3) {
			o.locations = append(o.locations, fmt.Sprint(base+1+l))
		}
		segment := event.SMB
		if b.chance(0.2) {
			segment = event.Enterprise
		}
		b.add(setup, event.Event{Type: event.PartnerRegistered, Org: o.id, Name: fmt.Sprintf("Partner %d", i+1), Locations: o.locations, Segment: segment})
		orgs[i] = o
	}
	orgCum := cumulative(len(orgs), 1.1)
	tenantCum := cumulative(cfg.Tenants, 1.0)

	tenants := make([]*tenant, cfg.Tenants)
	for i := range tenants {
		w := weight(tenantCum, i)
		t := &tenant{id: fmt.Sprintf("tenant-%05d", i+1), weight: w}
		share := w / tenantCum[0]
		pool := 20 + int(20000*share)
		t.users = make([]string, pool)
		for u := range t.users {
			t.users[u] = fmt.Sprintf("u%06d@%s", u, t.id)
		}
		b.tenantControl(t, orgs, orgCum, setup, cfg.Start, end, 2+int(200*share))
		tenants[i] = t
	}
	for _, o := range orgs {
		for m := range cfg.Months {
			month := cfg.Start.AddDate(0, m, 0)
			b.add(month.AddDate(0, 1, 0).Add(-time.Hour), event.Event{Type: event.PartnerMetrics, Org: o.id, Month: month.Format("2006-01"),
				NetCustomerAdds: int64(b.rng.IntN(6)), IntermediateCertified: int64(b.rng.IntN(10)), AdvancedCertified: int64(b.rng.IntN(4))})
		}
	}
	if err := b.writeControl(control); err != nil {
		return err
	}
	return writeUsage(cfg, b.rng, tenants, use)
}

// tenantControl adds a tenant's directory, environments, resources and the
// changes of the period.
func (b *builder) tenantControl(t *tenant, orgs []org, orgCum []float64, setup, start, end time.Time, resources int) {
	add := func(ev event.Event) event.Event { ev.Tenant = t.id; return ev }
	b.add(setup, add(event.Event{Type: event.EnvironmentCreated, Environment: "prod", EnvType: event.Production}))
	sandbox := b.chance(0.5)
	if sandbox {
		b.add(setup, add(event.Event{Type: event.EnvironmentCreated, Environment: "sandbox", EnvType: event.Sandbox}))
		if b.chance(0.5) {
			b.add(b.between(start, end), add(event.Event{Type: event.EnvironmentChanged, Environment: "sandbox", EnvType: event.Production}))
		}
	}
	b.add(setup, add(event.Event{Type: event.AccountCreated, Account: "admin@" + t.id, Kind: event.AccountUser}))
	consultants := func(o org, n int) []string {
		var ids []string
		for c := range n {
			id := fmt.Sprintf("c%d@%s", c, o.id)
			b.add(setup, add(event.Event{Type: event.AccountCreated, Account: id, Kind: event.AccountGuest}))
			b.add(setup.Add(time.Hour), add(event.Event{Type: event.PalLinked, Account: id, Partner: o.locations[b.rng.IntN(len(o.locations))]}))
			if b.chance(0.05) {
				b.add(b.between(start, end), add(event.Event{Type: event.AccountDisabled, Account: id}))
			} else if len(o.locations) > 1 && b.chance(0.05) {
				b.add(b.between(start, end), add(event.Event{Type: event.PalLinked, Account: id, Partner: o.locations[b.rng.IntN(len(o.locations))]}))
			}
			ids = append(ids, id)
		}
		return ids
	}
	primary := orgs[zipf(b.rng, orgCum)]
	owners := consultants(primary, 1+b.rng.IntN(3))
	var second []string
	if b.chance(0.3) {
		if o := orgs[zipf(b.rng, orgCum)]; o.id != primary.id {
			second = consultants(o, 1+b.rng.IntN(2))
		}
	}
	if b.chance(0.3) {
		sp := "sp-" + primary.id
		b.add(setup, add(event.Event{Type: event.AccountCreated, Account: sp, Kind: event.AccountServicePrincipal}))
		b.add(setup.Add(time.Hour), add(event.Event{Type: event.PalLinked, Account: sp, Partner: primary.locations[0]}))
		owners = append(owners, sp, sp)
	}
	kindCum := make([]float64, len(kinds))
	total := 0.0
	for i, k := range kinds {
		total += k.weight
		kindCum[i] = total
	}
	popularity := cumulative(resources, 1.0)
	for r := range resources {
		kind := kinds[sort.SearchFloat64s(kindCum, b.rng.Float64()*total)].kind
		id := fmt.Sprintf("%s-%04d", kind, r)
		env := "prod"
		if sandbox && b.chance(0.15) {
			env = "sandbox"
		}
		owner := owners[b.rng.IntN(len(owners))]
		created := b.between(setup.Add(2*time.Hour), start)
		b.add(created, add(event.Event{Type: event.ResourceCreated, Environment: env, Resource: id, Kind: kind, Owner: owner}))
		spec := event.Kinds[kind]
		if spec.CoOwners && b.chance(0.1) {
			b.add(b.between(created, end), add(event.Event{Type: event.ResourceCoownerAdd, Resource: id, Account: "admin@" + t.id}))
		}
		if len(second) > 0 && spec.CoOwners && b.chance(0.3) {
			b.add(b.between(start, end), add(event.Event{Type: event.ResourceCoownerAdd, Resource: id, Account: second[b.rng.IntN(len(second))]}))
		} else if len(second) > 0 && b.chance(0.15) {
			b.add(b.between(start, end), add(event.Event{Type: event.ResourceOwnerChange, Resource: id, Owner: second[b.rng.IntN(len(second))]}))
		}
		w := popularity[0]
		if r > 0 {
			w = popularity[r] - popularity[r-1]
		}
		t.resources = append(t.resources, id)
		t.weights = append(t.weights, w)
	}
	if b.chance(0.2) {
		ci := "ci_instance-0000"
		owner := owners[0]
		b.add(setup.Add(3*time.Hour), add(event.Event{Type: event.ResourceCreated, Environment: "prod", Resource: ci, Kind: "ci_instance", Owner: owner}))
		b.add(setup.Add(4*time.Hour), add(event.Event{Type: event.ResourceActivity, Resource: ci, Account: owner, Action: "publish"}))
		base := int64(1000 + b.rng.IntN(100000))
		for m := start; m.Before(end); m = m.AddDate(0, 1, 0) {
			base += base / 20
			b.add(m.AddDate(0, 0, 20), add(event.Event{Type: event.Profiles, Resource: ci, Count: base}))
		}
	}
}

// writeUsage writes the usage, sorted by time, day by day.
func writeUsage(cfg Config, rng *rand.Rand, tenants []*tenant, out io.Writer) error {
	type target struct {
		t *tenant
		r string
	}
	var targets []target
	var cum []float64
	total := 0.0
	for _, t := range tenants {
		sum := 0.0
		for _, w := range t.weights {
			sum += w
		}
		for i, r := range t.resources {
			total += t.weight * t.weights[i] / sum
			targets = append(targets, target{t, r})
			cum = append(cum, total)
		}
	}
	w := usage.NewWriter(out)
	end := cfg.Start.AddDate(0, cfg.Months, 0)
	days := int64(end.Sub(cfg.Start) / (24 * time.Hour))
	type use struct {
		at   int64
		t    *target
		user string
	}
	var written int64
	var batch []use
	for d := range days {
		n := cfg.UsageEvents * (d + 1) / days
		n -= cfg.UsageEvents * d / days
		day := cfg.Start.AddDate(0, 0, int(d))
		batch = batch[:0]
		for range n {
			tg := &targets[sort.SearchFloat64s(cum, rng.Float64()*total)]
			u := rng.Float64()
			batch = append(batch, use{day.UnixMicro() + rng.Int64N(int64(24*time.Hour/time.Microsecond)), tg, tg.t.users[int(u*u*float64(len(tg.t.users)))]})
		}
		slices.SortFunc(batch, func(a, b use) int { return int(a.at - b.at) })
		for _, u := range batch {
			if err := w.Write(time.UnixMicro(u.at).UTC(), u.t.t.id, u.t.r, u.user); err != nil {
				return err
			}
		}
		written += n
		if cfg.Progress != nil {
			cfg.Progress(written)
		}
	}
	return w.Close()
}
