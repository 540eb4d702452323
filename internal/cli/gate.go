package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
)

// errGate is a gate that does not open: exit 1, as for refused events, the
// reason already said.
var errGate = fmt.Errorf("gate closed: %w", errRefused)

// solution is the import a pipeline is about to cause, as --solution FILE
// holds it.
type solution struct {
	Environment string                   `json:"environment"`
	Resources   []event.SolutionResource `json:"resources"`
}

// runGate says whether a pipeline's deploying account holds an eligible
// link in a tenant and, with --solution, whether the import it is about to
// run would credit its organisation for every resource; one line either
// way, exit 0 or 1. It writes nothing: against a service it asks the
// what-if.
func runGate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "gate", "gate --tenant T --account A [--solution FILE.json] [--partner-id P] (--log FILE | --server URL --token T)")
	f := logFlags{asksService: true}
	f.register(fs)
	tenant := fs.String("tenant", "", "the tenant the pipeline deploys to")
	account := fs.String("account", "", "the account the pipeline deploys as (a service principal, most often)")
	solutionFile := fs.String("solution", "", `the import the pipeline is about to run: {"environment": "...", "resources": [{"resource", "kind", "name"}]}`)
	partner := fs.String("partner-id", "", "the partner ID the account should be linked to (any eligible one when not given)")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if *tenant == "" || *account == "" {
		return usagef("--tenant and --account are required: the tenant deployed to and the account that deploys")
	}
	var sol *solution
	if *solutionFile != "" {
		data, err := os.ReadFile(*solutionFile)
		if err != nil {
			return usagef("--solution: %v", err)
		}
		sol = &solution{}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(sol); err != nil || sol.Environment == "" || len(sol.Resources) == 0 {
			return usagef(`--solution %s is not a solution: write {"environment": "prod", "resources": [{"resource": "app1", "kind": "canvas_app"}]}`, *solutionFile)
		}
	}
	g := gate{tenant: *tenant, account: *account, partner: *partner, sol: sol}
	var verdict string
	var open bool
	if f.asks() {
		verdict, open, err = g.remote(ctx, &f.serverFlags)
	} else {
		var e *attribution.Engine
		if e, _, err = (replay{}).run(ctx, env, f, opts); err == nil {
			verdict, open = g.local(e)
		}
	}
	if err != nil {
		return err
	}
	if !open {
		fmt.Fprintln(env.Stderr, "pal gate: "+verdict)
		return errGate
	}
	fmt.Fprintln(env.Stdout, "pal gate: "+verdict)
	return nil
}

type gate struct {
	tenant, account, partner string
	sol                      *solution
}

// importEvent is the solution.imported the pipeline would cause at an
// instant.
func (g gate) importEvent(at time.Time) *event.Event {
	return &event.Event{Type: event.SolutionImported, Time: at, Tenant: g.tenant, Environment: g.sol.Environment,
		Account: g.account, Resources: g.sol.Resources}
}

// noLink is the verdict on an account that holds no link.
func (g gate) noLink(who string) string {
	id := g.partner
	if id == "" {
		id = "<your location ID>"
	}
	return fmt.Sprintf("%s holds no partner link in tenant %s: link it with pal link create --partner-id %s", who, g.tenant, id)
}

// gateLog is what the gate needs of the log folded (an *attribution.Engine
// is one): the deploying account, and the import applied to it, which the
// gate's process alone holds.
type gateLog interface {
	AccountExists(tenant, account string) bool
	AccountKind(tenant, account string) string
	AccountDisabled(tenant, account string) bool
	Link(tenant, account string) (attribution.Link, bool)
	Now() time.Time
	Apply(ev *event.Event) attribution.Result
	Attribution(tenants ...string) []attribution.Row
}

// local decides on the log's state: the account's link, then the import
// applied to it.
func (g gate) local(e gateLog) (string, bool) {
	who := "account " + g.account
	if kind := e.AccountKind(g.tenant, g.account); kind != "" {
		who = strings.ReplaceAll(kind, "_", " ") + " " + g.account
	}
	l, ok := e.Link(g.tenant, g.account)
	switch {
	case !e.AccountExists(g.tenant, g.account):
		return fmt.Sprintf("%s does not exist in tenant %s: the pipeline deploys as an account the log does not know", who, g.tenant), false
	case !ok || !l.Active:
		return g.noLink(who), false
	case e.AccountDisabled(g.tenant, g.account):
		return fmt.Sprintf("%s is disabled in tenant %s, so its link %s does not count: enable it, or deploy as an enabled account", who, g.tenant, l.Partner), false
	case l.Org == "":
		return fmt.Sprintf("%s links %s in tenant %s, which is not the location ID of a registered organisation: link one of your location IDs", who, l.Partner, g.tenant), false
	case g.partner != "" && l.Partner != g.partner:
		return fmt.Sprintf("%s links %s in tenant %s, not %s: change it with pal link update --partner-id %s", who, l.Partner, g.tenant, g.partner, g.partner), false
	}
	var after []attribution.Row
	if g.sol != nil {
		res := e.Apply(g.importEvent(e.Now().Add(time.Second)))
		if res.Outcome == attribution.Refused {
			return "the import would be refused: " + res.Refusal.Message, false
		}
		after = e.Attribution(g.tenant)
	}
	return g.judge(l.Partner, l.Org, after)
}

// remote decides through the service: the tenant's links, then the
// what-if of the import.
func (g gate) remote(ctx context.Context, sf *serverFlags) (string, bool, error) {
	c, err := sf.client()
	if err != nil {
		return "", false, err
	}
	links, err := c.TenantLinks(ctx, g.tenant)
	if err != nil {
		return "", false, err
	}
	i := slices.IndexFunc(links.Links, func(l attribution.AccountLink) bool { return l.Account == g.account })
	who := "account " + g.account
	if i < 0 {
		return g.noLink(who), false, nil
	}
	link := links.Links[i].Partner
	if g.partner != "" && link != g.partner {
		return fmt.Sprintf("%s links %s in tenant %s, not %s: change it with pal link update --partner-id %s", who, link, g.tenant, g.partner, g.partner), false, nil
	}
	if g.sol == nil {
		return fmt.Sprintf("%s holds link %s in tenant %s", who, link, g.tenant), true, nil
	}
	me, err := c.Me(ctx)
	if err != nil {
		return "", false, err
	}
	body := g.importEvent(me.Now.Add(time.Second)).AppendJSON(nil)
	w, err := c.WhatIf(ctx, g.tenant, bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	if len(w.Refused) > 0 {
		return "the import would be refused: " + w.Refused[0].Message, false, nil
	}
	verdict, open := g.judge(link, "", w.After)
	return verdict, open, nil
}

// judge says whether every resource of the solution would be credited to
// the account's partner ID (or, when org is known, its organisation).
func (g gate) judge(partner, org string, after []attribution.Row) (string, bool) {
	who := fmt.Sprintf("account %s (linked to %s)", g.account, partner)
	if g.sol == nil {
		return fmt.Sprintf("%s holds an eligible link in tenant %s", who, g.tenant), true
	}
	var missing []string
	for _, sr := range g.sol.Resources {
		k := slices.IndexFunc(after, func(r attribution.Row) bool { return r.Resource == sr.Resource })
		switch {
		case k < 0:
			missing = append(missing, sr.Resource+" (not found)")
		case after[k].Partner == partner || org != "" && after[k].Org == org:
		default:
			why := credit.Words(after[k].Reason)
			if after[k].Partner != "" {
				why = "credited to " + after[k].Partner
			}
			missing = append(missing, fmt.Sprintf("%s (%s)", sr.Resource, why))
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("the import by %s would leave %s of %d uncredited to it: %s", who, count(len(missing), "resource"), len(g.sol.Resources), strings.Join(missing, ", ")), false
	}
	return fmt.Sprintf("the import by %s would credit it for all %s", who, count(len(g.sol.Resources), "resource")), true
}
