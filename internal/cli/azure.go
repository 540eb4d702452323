package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/azure"
)

func runAzureReport(ctx context.Context, env *Env, args []string) error {
	f := logFlags{asksService: true}
	var month string
	fs := newFlagSet(env, "report azure", "report azure --log FILE --month YYYY-MM [--consumption FILE] [--azure-policy all|latest|split] [--format json|csv [--rows orgs|subscriptions|resources]]")
	f.register(fs)
	f.formats = withCSV
	f.registerRows(fs, "orgs", "subscriptions", "resources")
	fs.StringVar(&month, "month", "", "the calendar month, YYYY-MM")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if _, err := parseMonth(month); err != nil {
		return err
	}
	if f.asks() {
		c, err := f.client()
		if err != nil {
			return err
		}
		rep, err := c.AzureReport(ctx, month)
		if err != nil {
			return err
		}
		if len(rep.Resources) == 0 {
			noteMonthAfter(ctx, env, f, "report azure", month, time.Time{})
		}
		return printAzureReportAs(env, f, rep)
	}
	// The consumption file is read after the log, its month's records
	// summed as they are read and not kept.
	file := f.consumption
	f.consumption, f.consumptionMonth = "", month
	e, t, err := replay{}.run(ctx, env, f, opts)
	if err != nil {
		return err
	}
	// The month's sums are held to the end and grow as the file is read,
	// while what each row group leaves behind is garbage: at the
	// collector's default, the garbage grows as large as the sums before it
	// is collected. At half, the peak stays near one and a half times the
	// sums, for a tenth more time collecting, unless the user chose GOGC.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(50))
	}
	// The month is summed in a part per core, each tenant in one, which
	// the cores sum at once.
	sums, err := e.Azure().MonthIn(month, runtime.GOMAXPROCS(0))
	if err != nil {
		return usagef("%v", err)
	}
	if file != "" {
		if err := readConsumption(ctx, env, file, month, e, &t, sums); err != nil {
			return err
		}
	}
	rep, ok := sums.Report()
	if !ok {
		// Records repeat a resource, day and meter: the later replaces the
		// earlier, as the engine's records do. The file is read again into
		// them (what the first reading refused is refused again, and
		// counted once).
		if err := readConsumption(ctx, env, file, month, e, &tally{}, nil); err != nil {
			return err
		}
		if rep, err = e.Azure().Report(month); err != nil {
			return usagef("%v", err)
		}
	}
	// Costs may be dated after the log's last event: only a month with
	// none says why its report is empty.
	if len(rep.Resources) == 0 && sums.Records() == 0 && !slices.Contains(e.Azure().ConsumptionMonths(), month) {
		noteMonthAfter(ctx, env, f, "report azure", month, e.Now())
	}
	if err := printAzureReportAs(env, f, rep); err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

func printAzureReportAs(env *Env, f logFlags, rep azure.Report) error {
	switch {
	case f.format == "json":
		return writeJSONRows(env.Stdout, rep)
	case f.format == "csv" && f.rows == "resources":
		return writeCSV(env.Stdout, rep.Resources)
	case f.format == "csv" && f.rows == "subscriptions":
		return writeCSV(env.Stdout, rep.Subscriptions)
	case f.format == "csv":
		return writeCSV(env.Stdout, rep.Orgs)
	}
	fmt.Fprintf(env.Stdout, "Azure report %s (policy %s)\n\nResources\n", rep.Month, rep.Policy)
	tw := newTable(env.Stdout)
	fmt.Fprintln(tw, "TENANT\tRESOURCE\tORG\tPARTNER\tACR\tPEC-ELIGIBLE\tHOURS")
	for _, r := range rep.Resources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Tenant, r.Resource, r.Org, r.Partner, r.ACR, r.PECEligibleCost, r.RecognisedHours)
	}
	tw.Flush()
	fmt.Fprintf(env.Stdout, "\nSubscriptions\n")
	fmt.Fprintln(tw, "TENANT\tSUBSCRIPTION\tORG\tACR\tPEC-ELIGIBLE")
	for _, s := range rep.Subscriptions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Tenant, s.Subscription, s.Org, s.ACR, s.PECEligibleCost)
	}
	tw.Flush()
	fmt.Fprintf(env.Stdout, "\nOrganisations\n")
	fmt.Fprintln(tw, "ORG\tACR\tPEC-ELIGIBLE\tPEC CREDIT\tCUSTOMERS\tSUBSCRIPTIONS")
	for _, o := range rep.Orgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", o.Org, o.ACR, o.PECEligibleCost, o.PECCredit, o.Customers, o.Subscriptions)
	}
	return tw.Flush()
}

var azurePolicyWords = map[azure.Policy]string{
	azure.All:    "Policy all: every recognised location ID is credited in full.",
	azure.Latest: "Policy latest: only the location ID with the latest association is credited (ties go to the smallest ID).",
	azure.Split:  "Policy split: every recognised location ID gets an equal share.",
}

// printAzureExplanation writes an Azure explanation in plain words.
func printAzureExplanation(w io.Writer, x azure.Explanation) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	label := func(partner, org string) string {
		if n := x.OrgNames[org]; n != "" {
			return fmt.Sprintf("%s of %s (organisation %s)", partner, n, org)
		}
		if org != "" {
			return fmt.Sprintf("%s (organisation %s)", partner, org)
		}
		return partner
	}
	p("Azure resource %s in tenant %s at %s\n\n", x.Resource, x.Tenant, stamp(x.At))
	if len(x.Assignments) == 0 {
		p("1. No role assignment covers the resource at that time.\n")
	} else {
		p("1. The role assignments that cover the resource:\n")
		for _, a := range x.Assignments {
			role := "earns recognition"
			if !a.RoleEligible {
				role = "earns none"
			}
			state := "active"
			if a.PIM == "eligible" {
				state = "eligible (PIM), not activated"
				if a.Active {
					state = "eligible (PIM), activated"
				}
			}
			who := a.Principal
			if a.PrincipalTenant != x.Tenant {
				who += " of tenant " + a.PrincipalTenant + " (through Azure Lighthouse)"
			}
			p("   %s: %s holds %s (%s) on %s, %s\n", a.Assignment, who, a.Role, role, a.Scope, state)
			if len(a.Accounts) == 0 {
				p("     no account with a link acts through it\n")
			}
			for _, acct := range a.Accounts {
				link := "no link"
				if acct.Partner != "" {
					link = "linked to " + label(acct.Partner, acct.Org)
				}
				p("     %s, %s: %s\n", acct.Account, link, acct.Words)
			}
		}
	}
	if len(x.Recognised) == 0 {
		p("2. No partner is recognised, so no one is credited for the resource's consumption.\n")
	} else {
		p("2. Recognised:\n")
		for _, r := range x.Recognised {
			p("   %s, associated %s\n", label(r.Partner, r.Org), stamp(r.Since))
		}
	}
	p("3. %s\n", azurePolicyWords[x.Policy])
	if len(x.Credited) > 0 {
		var parts []string
		for _, c := range x.Credited {
			parts = append(parts, fmt.Sprintf("%s share %.4g", label(c.Partner, c.Org), c.Share))
		}
		p("4. Credited: %s.\n", strings.Join(parts, "; "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
