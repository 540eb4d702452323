package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
)

func runExplain(ctx context.Context, env *Env, args []string) error {
	f := logFlags{asksService: true}
	var tenant, resource, atFlag string
	fs := newFlagSet(env, "explain", "explain --log FILE --tenant T --resource R [--at TIME] [--format json]")
	f.register(fs)
	fs.StringVar(&tenant, "tenant", "", "the resource's tenant")
	fs.StringVar(&resource, "resource", "", "the resource")
	fs.StringVar(&atFlag, "at", "", "the instant, RFC 3339 or YYYY-MM-DD (default: after the last event)")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if tenant == "" || resource == "" {
		return usagef("--tenant and --resource are required: name the resource to explain")
	}
	at, err := optionalTime("at", atFlag)
	if err != nil {
		return err
	}
	if azure.IsPath(resource) {
		return explainAzure(ctx, env, f, opts, tenant, resource, atFlag, at)
	}
	if f.asks() {
		c, err := f.client()
		if err != nil {
			return err
		}
		x, err := c.Explain(ctx, tenant, resource, atFlag)
		if err != nil {
			return err
		}
		return printExplain(env, f.format, x.Explanation)
	}
	var x attribution.Explanation
	_, t, err := replay{at: at, onAt: func(e *attribution.Engine) {
		when := e.Now()
		if at != nil {
			when = *at
		}
		x = e.Explain(tenant, resource, when)
	}}.run(ctx, env, f, opts)
	if err != nil {
		return err
	}
	if err := printExplain(env, f.format, x); err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

// explainAzure explains an Azure resource. Recognition is read from the
// whole log's history, so the log is folded to its end and asked about the
// instant.
func explainAzure(ctx context.Context, env *Env, f logFlags, opts attribution.Options, tenant, resource, atFlag string, at *time.Time) error {
	if f.asks() {
		c, err := f.client()
		if err != nil {
			return err
		}
		x, err := c.ExplainAzure(ctx, tenant, resource, atFlag)
		if err != nil {
			return err
		}
		return printAzureExplainAs(env, f.format, x.Explanation)
	}
	e, t, err := replay{}.run(ctx, env, f, opts)
	if err != nil {
		return err
	}
	when := e.Now()
	if at != nil {
		when = *at
	}
	x, err := e.Azure().Explain(tenant, resource, when)
	if err != nil {
		return usagef("--resource %v", err)
	}
	if err := printAzureExplainAs(env, f.format, x); err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

func printAzureExplainAs(env *Env, format string, x azure.Explanation) error {
	if format == "json" {
		return writeJSON(env.Stdout, x)
	}
	return printAzureExplanation(env.Stdout, x)
}

func printExplain(env *Env, format string, x attribution.Explanation) error {
	if format == "json" {
		return writeJSON(env.Stdout, x)
	}
	return printExplanation(env.Stdout, x)
}

var roleWords = map[string]string{
	attribution.RoleOwner:       "owner",
	attribution.RoleCoowner:     "co-owner",
	attribution.RoleContributor: "contributor (has activity on the instance)",
}

var attributableWords = map[bool]string{
	true:  "its owner and co-owners",
	false: "its owner",
}

// printExplanation writes the steps of SPEC.md section 4 in plain words.
func printExplanation(w io.Writer, x attribution.Explanation) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("Resource %s in tenant %s at %s\n\n", x.Resource, x.Tenant, stamp(x.At))
	if !x.Exists {
		p("1. The resource does not exist at that time (never created, or deleted), so nobody is credited for it.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	name := ""
	if x.Name != "" {
		name = fmt.Sprintf(" %q", x.Name)
	}
	p("1. It is a %s%s (workload %s) in environment %s, of type %s.\n", x.Kind, name, x.Workload, x.Environment, x.EnvType)
	if x.Counted {
		p("   Usage in %s environments counts.\n", x.EnvType)
	} else {
		p("   Usage in %s environments does not count, so the resource is not credited to anyone.\n", x.EnvType)
	}
	spec := event.Kinds[x.Kind]
	if spec.ByActivity {
		p("2. The candidates of a %s are the accounts that have had activity on it:", x.Kind)
	} else {
		p("2. The candidates of a %s are %s:", x.Kind, attributableWords[spec.CoOwnersCredited])
	}
	if len(x.Candidates) == 0 {
		p(" there are none.\n")
	} else {
		p("\n")
		tw := newTable(&b)
		for _, c := range x.Candidates {
			link := "no link"
			if c.Partner != "" {
				link = "linked to " + c.Partner
				if name := x.OrgNames[c.Org]; name != "" {
					link += " (" + name + ")"
				}
			}
			verdict := "eligible"
			if !c.Eligible {
				verdict = "not eligible: " + credit.Words(c.Reason)
			}
			fmt.Fprintf(tw, "     %s\t%s\t%s\tassociated %s\t%s\n", c.Account, roleWords[c.Role], link, stamp(c.Association), verdict)
		}
		tw.Flush()
	}
	if len(x.NotAttributable) > 0 {
		p("   Co-owners of a %s are never credited: %s.\n", x.Kind, strings.Join(x.NotAttributable, ", "))
	}
	p("3. %s\n", policyWords[x.Policy])
	winner := x.Winner
	if winner == nil {
		winner = x.WouldBeWinner
	}
	switch {
	case winner == nil:
		p("4. No candidate is eligible, so the resource is not credited to anyone (%s).\n", x.Reason)
	case x.Winner == nil:
		p("4. %s would be credited through %s (associated %s), but the environment is not counted (%s).\n",
			orgLabelOf(x.OrgNames, winner), winner.Account, stamp(winner.Since), x.Reason)
	default:
		p("4. Credited to %s through %s, associated %s.\n", orgLabelOf(x.OrgNames, winner), winner.Account, stamp(winner.Since))
		if len(x.Shares) > 0 {
			var parts []string
			for _, s := range x.Shares {
				parts = append(parts, fmt.Sprintf("%s %.4g", s.Partner, s.Share))
			}
			p("   Under split the credit is shared: %s.\n", strings.Join(parts, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var policyWords = map[attribution.Policy]string{
	attribution.Latest: "Policy latest: the eligible candidate with the latest association wins (the latest of its role start, its link time and its activity); ties go to the owner, then to the smallest account.",
	attribution.First:  "Policy first: the eligible candidate whose association was formed earliest (the later of its role start and its link time) keeps the credit; ties go to the owner, then to the smallest account.",
	attribution.Split:  "Policy split: every location ID held by an eligible candidate gets an equal share; the latest association is named as the winner.",
}

func orgLabelOf(names map[string]string, w *attribution.Winner) string {
	if n := names[w.Org]; n != "" {
		return fmt.Sprintf("partner %s of %s (organisation %s)", w.Partner, n, w.Org)
	}
	return fmt.Sprintf("partner %s (organisation %s)", w.Partner, w.Org)
}
