package cli

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
)

// orgLinks is the answer of pal links, as the service's /v1/links?org=.
type orgLinks api.OrgLinks

// runLinks says where an organisation's links are: every account linked to
// one of its location IDs, in every tenant (or one), with the partner ID,
// since when, and how many resources are credited through it now.
func runLinks(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "links", "links --org ORG (--log FILE | --server URL --token T) [--tenant T] [--format json]")
	f := logFlags{asksService: true}
	f.register(fs)
	f.formats = withCSV
	org := fs.String("org", "", "the organisation's global partner ID")
	tenant := fs.String("tenant", "", "only the links in this tenant")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if *org == "" {
		return usagef("--org is required: the organisation's global partner ID")
	}
	out := orgLinks{Org: *org}
	if f.asks() {
		c, err := f.client()
		if err != nil {
			return err
		}
		l, err := c.OrgLinks(ctx, *org, *tenant)
		if err != nil {
			return err
		}
		return orgLinks(l).print(env, f.format)
	}
	e, t, err := replay{}.run(ctx, env, f, opts)
	if err != nil {
		return err
	}
	out.Links = e.OrgLinks(*org)
	if *tenant != "" {
		out.Links = slices.DeleteFunc(out.Links, func(l attribution.OrgLink) bool { return l.Tenant != *tenant })
	}
	if err := out.print(env, f.format); err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

func (o orgLinks) print(env *Env, format string) error {
	switch format {
	case "json":
		return writeJSON(env.Stdout, o)
	case "csv":
		return writeCSV(env.Stdout, o.Links)
	}
	disabled := 0
	for _, l := range o.Links {
		if l.Disabled {
			disabled++
		}
	}
	fmt.Fprintf(env.Stdout, "Links to the location IDs of organisation %s: %s", o.Org, count(len(o.Links), "account"))
	if disabled > 0 {
		fmt.Fprintf(env.Stdout, ", %d disabled (a disabled account's link does not count)", disabled)
	}
	fmt.Fprint(env.Stdout, "\n\n")
	w := newTable(env.Stdout)
	fmt.Fprintln(w, "TENANT\tACCOUNT\tPARTNER\tSINCE\tRESOURCES")
	for _, l := range o.Links {
		account := l.Account
		if l.Disabled {
			account += " (disabled)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", l.Tenant, account, l.Partner, l.Since.UTC().Format(time.RFC3339), l.Resources)
	}
	return w.Flush()
}
