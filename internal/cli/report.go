package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/metrics"
)

func runReport(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "monthly":
			return runMonthly(ctx, env, args[1:])
		case "pcs":
			return runPCS(ctx, env, args[1:])
		case "-h", "--help", "help":
			fmt.Fprintln(env.Stdout, "Usage: pal report monthly|pcs [flags]; run pal report monthly -h for the flags")
			return nil
		}
	}
	return usagef("say which report: pal report monthly or pal report pcs")
}

// aggregate replays the log and collects the metrics of the given months.
func aggregate(ctx context.Context, env *Env, f logFlags, opts attribution.Options, months ...string) (*attribution.Engine, *metrics.Aggregator, tally, error) {
	agg := metrics.NewAggregator(months...)
	e, t, err := replay{onResult: func(ev *event.Event, res attribution.Result) {
		if res.Outcome != attribution.Applied {
			return
		}
		switch ev.Type {
		case event.Usage:
			agg.Usage(ev.Time, ev.Tenant, ev.Resource, res.Workload, ev.User, res.Credit)
		case event.Profiles:
			agg.Profiles(ev.Time, ev.Tenant, ev.Resource, res.Workload, ev.Count, res.Credit)
		}
	}}.run(ctx, env, f.log, opts)
	return e, agg, t, err
}

// segmentAtEnd returns the segment of org at the last instant of month.
func segmentAtEnd(e *attribution.Engine) metrics.SegmentFunc {
	return func(org, month string) string {
		start, err := time.Parse("2006-01", month)
		if err != nil {
			return ""
		}
		return e.Segment(org, start.AddDate(0, 1, 0).Add(-time.Nanosecond))
	}
}

func runMonthly(ctx context.Context, env *Env, args []string) error {
	var f logFlags
	var month string
	fs := newFlagSet(env, "report monthly", "report monthly --log FILE --month YYYY-MM [--format json]")
	f.register(fs)
	fs.StringVar(&month, "month", "", "the calendar month, YYYY-MM")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if _, err := parseMonth(month); err != nil {
		return err
	}
	e, agg, t, err := aggregate(ctx, env, f, opts, month)
	if err != nil {
		return err
	}
	m := agg.Report(metrics.DefaultConfig(), month, segmentAtEnd(e))
	if f.format == "json" {
		err = writeJSON(env.Stdout, m)
	} else {
		err = printMonthly(env, e, m)
	}
	if err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func money(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }

func printMonthly(env *Env, e *attribution.Engine, m metrics.Monthly) error {
	fmt.Fprintf(env.Stdout, "Monthly report %s\n\nResources\n", m.Month)
	tw := newTable(env.Stdout)
	fmt.Fprintln(tw, "TENANT\tRESOURCE\tWORKLOAD\tORG\tPARTNER\tMAU\tPROFILES")
	for _, r := range m.Resources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Tenant, r.Resource, r.Workload, r.Org, r.Partner, num(r.MAU), num(r.Profiles))
	}
	tw.Flush()
	fmt.Fprintf(env.Stdout, "\nWorkloads\n")
	fmt.Fprintln(tw, "TENANT\tORG\tWORKLOAD\tMAU\tPROFILES\tMCV")
	for _, w := range m.Workloads {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", w.Tenant, w.Org, w.Workload, num(w.MAU), num(w.Profiles), money(w.MCV))
	}
	tw.Flush()
	fmt.Fprintf(env.Stdout, "\nOrganisations\n")
	fmt.Fprintln(tw, "ORG\tNAME\tMCV\tCUSTOMERS\tDEPLOYMENTS")
	for _, o := range m.Orgs {
		org, _ := e.Org(o.Org)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", o.Org, orDash(org.Name), money(o.MCV), o.Customers, o.Deployments)
	}
	return tw.Flush()
}

func runPCS(ctx context.Context, env *Env, args []string) error {
	var f logFlags
	var month, orgID string
	fs := newFlagSet(env, "report pcs", "report pcs --log FILE --month YYYY-MM --org ORG [--format json]")
	f.register(fs)
	fs.StringVar(&month, "month", "", "the last month of the score, YYYY-MM")
	fs.StringVar(&orgID, "org", "", "the organisation's global partner ID")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if _, err := parseMonth(month); err != nil {
		return err
	}
	if orgID == "" {
		return usagef("--org is required: give the organisation's global partner ID")
	}
	baseline, _ := metrics.BaselineMonth(month)
	e, agg, t, err := aggregate(ctx, env, f, opts, month, baseline)
	if err != nil {
		return err
	}
	org, ok := e.Org(orgID)
	if !ok {
		if owner, isLocation := e.LocationOrg(orgID); isLocation {
			return fmt.Errorf("%s is a location ID of organisation %s; --org takes the organisation's global ID, %s", orgID, owner, owner)
		}
		return fmt.Errorf("organisation %s is not registered in the log; give the global ID of a partner.registered event", orgID)
	}
	cfg := metrics.DefaultConfig()
	seg := segmentAtEnd(e)
	inputs, hasInputs := e.MetricsInputs(orgID, month)
	s := metrics.CapabilityScore(cfg, orgID, seg(orgID, month),
		agg.Report(cfg, month, seg), agg.Report(cfg, baseline, seg), inputs, hasInputs)
	if f.format == "json" {
		err = writeJSON(env.Stdout, s)
	} else {
		err = printScore(env, org, baseline, s, cfg)
	}
	if err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

func printScore(env *Env, org attribution.Organisation, baseline string, s metrics.Score, cfg metrics.Config) error {
	fmt.Fprintf(env.Stdout, "Partner Capability Score, Business Applications: %s %s, month %s (segment %s)\n\n", orDash(org.Name), s.Org, s.Month, s.Segment)
	tw := newTable(env.Stdout)
	growth := "n/a (no baseline usage)"
	if s.GrowthPct != nil {
		growth = num(*s.GrowthPct) + "%"
	}
	fmt.Fprintf(tw, "usage MCV\t%s\t(baseline %s: %s, growth %s)\n", money(s.UsageMCV), baseline, money(s.BaselineMCV), growth)
	fmt.Fprintf(tw, "deployments\t%d\t(baseline %s: %d)\n", s.Deployments, baseline, s.BaselineDeployments)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SUBCATEGORY\tPOINTS\tMAX")
	note := ""
	if !s.HasInputs {
		note = " (no partner.metrics for the month)"
	}
	p := s.Points
	fmt.Fprintf(tw, "net customer adds\t%s\t%s%s\n", num(p.NetCustomerAdds), num(cfg.MaxNetCustomerAdds), note)
	fmt.Fprintf(tw, "intermediate certifications\t%s\t%s%s\n", num(p.Intermediate), num(cfg.MaxIntermediate), note)
	fmt.Fprintf(tw, "advanced certifications\t%s\t%s%s\n", num(p.Advanced), num(cfg.MaxAdvanced), note)
	fmt.Fprintf(tw, "usage growth\t%s\t%s\n", num(p.UsageGrowth), num(cfg.MaxUsageGrowth))
	fmt.Fprintf(tw, "deployments\t%s\t%s\n", num(p.Deployments), num(cfg.MaxDeployments))
	fmt.Fprintf(tw, "total\t%s\t100\n", num(s.Total))
	tw.Flush()
	verdict := "does not qualify (a total of at least 70 and at least 1 point in every subcategory are needed)"
	if s.Qualified {
		verdict = "qualifies"
	}
	_, err := fmt.Fprintf(env.Stdout, "\n%s %s.\n", s.Org, verdict)
	return err
}
