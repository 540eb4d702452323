package cli

import (
	"context"
	"fmt"

	"github.com/palproject/pal/internal/attribution"
)

// runDiagnose says where an organisation's credit is missing and why, and
// where it hangs on one account.
func runDiagnose(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "diagnose", "diagnose --org ORG (--log FILE | --server URL --token T) [--format json]")
	f := logFlags{asksService: true}
	f.register(fs)
	f.formats = withCSV
	org := fs.String("org", "", "the organisation's global partner ID")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if *org == "" {
		return usagef("--org is required: the organisation's global partner ID")
	}
	if f.asks() {
		c, err := f.client()
		if err != nil {
			return err
		}
		d, err := c.Diagnosis(ctx, *org)
		if err != nil {
			return err
		}
		return printDiagnosis(env, f.format, d)
	}
	e, t, err := replay{}.run(ctx, env, f, opts)
	if err != nil {
		return err
	}
	if _, ok := e.Org(*org); !ok {
		if owner, isLocation := e.LocationOrg(*org); isLocation {
			return fmt.Errorf("%s is a location ID of organisation %s; --org takes the organisation's global ID, %s", *org, owner, owner)
		}
		return fmt.Errorf("organisation %s is not registered in the log; give the global ID of a partner.registered event", *org)
	}
	if err := printDiagnosis(env, f.format, e.Diagnose(*org)); err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

func printDiagnosis(env *Env, format string, d attribution.Diagnosis) error {
	switch format {
	case "json":
		return writeJSON(env.Stdout, d)
	case "csv":
		return writeCSV(env.Stdout, d.Missing)
	}
	fmt.Fprintf(env.Stdout, "Organisation %s at %s\n\n", d.Org, stamp(d.At))
	if len(d.Missing) == 0 {
		fmt.Fprintln(env.Stdout, "No credit is missing: every resource on which your linked accounts have a role is credited to you.")
	} else {
		fmt.Fprintf(env.Stdout, "Credit missing on %s:\n", count(len(d.Missing), "resource"))
		for _, m := range d.Missing {
			fmt.Fprintf(env.Stdout, "  %s %s (%s), through %s linked to %s:\n    why: %s\n    fix: %s\n", m.Tenant, m.Resource, m.Kind, m.Account, m.Partner, m.Words, m.Fix)
		}
	}
	if len(d.AtRisk) > 0 {
		fmt.Fprintf(env.Stdout, "\nCredit that ends when one person leaves, on %s:\n", count(len(d.AtRisk), "resource"))
		w := newTable(env.Stdout)
		fmt.Fprintln(w, "  TENANT\tRESOURCE\tKIND\tONLY ACCOUNT\tPARTNER")
		for _, r := range d.AtRisk {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", r.Tenant, r.Resource, r.Kind, r.Account, r.Partner)
		}
		return w.Flush()
	}
	return nil
}
