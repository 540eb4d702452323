package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/metrics"
)

func runReport(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "monthly":
			return runMonthly(ctx, env, args[1:])
		case "pcs":
			return runPCS(ctx, env, args[1:])
		case "azure":
			return runAzureReport(ctx, env, args[1:])
		case "-h", "--help", "help":
			fmt.Fprintln(env.Stdout, "Usage: pal report monthly|pcs|azure [flags]; run pal report monthly -h for the flags")
			return nil
		}
	}
	return usagef("say which report: pal report monthly, pal report pcs or pal report azure")
}

// aggregate replays the log and collects the metrics of the given months.
func aggregate(ctx context.Context, env *Env, f logFlags, opts attribution.Options, months ...string) (*attribution.Engine, *metrics.Aggregator, tally, error) {
	agg := metrics.NewAggregator(months...)
	e, t, err := replay{onResult: agg.Record}.run(ctx, env, f, opts)
	if err == nil && f.usage != "" {
		err = readUsage(ctx, env, f.usage, e, agg, &t)
	}
	return e, agg, t, err
}

// noteMonthAfter says, on standard error, that a month begins after the
// last event of the log (or of the service asked): its report is empty
// because the log says nothing of it yet, not because nothing happened.
// Usage and costs read from files of their own may go further than the
// log: then it says nothing.
func noteMonthAfter(ctx context.Context, env *Env, f logFlags, cmd, month string, last time.Time) {
	if f.usage != "" || f.consumption != "" {
		return
	}
	if f.asks() {
		c, err := f.client()
		if err != nil {
			return
		}
		me, err := c.Me(ctx)
		if err != nil {
			return
		}
		last = me.Now
	}
	start, err := time.Parse("2006-01", month)
	if err != nil || last.IsZero() || !start.After(last) {
		return
	}
	fmt.Fprintf(env.Stderr, "pal %s: %s is after the %s last event (%s): it says nothing of that month yet, so the report is empty\n",
		cmd, month, map[bool]string{true: "service's", false: "log's"}[f.asks()], stamp(last))
}

func runMonthly(ctx context.Context, env *Env, args []string) error {
	f := logFlags{asksService: true}
	var month string
	fs := newFlagSet(env, "report monthly", "report monthly --log FILE --month YYYY-MM [--format json|csv [--rows orgs|workloads|resources]]")
	f.register(fs)
	f.formats = withCSV
	f.registerRows(fs, "orgs", "workloads", "resources")
	f.registerMetricsConfig(fs)
	fs.StringVar(&month, "month", "", "the calendar month, YYYY-MM")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	cfg, err := readMetricsConfig(f.metricsConfig)
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
		m, err := c.Monthly(ctx, month)
		if err != nil {
			return err
		}
		noteMonthAfter(ctx, env, f, "report monthly", month, time.Time{})
		return printMonthlyAs(env, f, m)
	}
	e, agg, t, err := aggregate(ctx, env, f, opts, month)
	if err != nil {
		return err
	}
	m := agg.Report(cfg, month, metrics.SegmentsAtMonthEnd(e))
	metrics.NameOrgs(&m, e)
	noteMonthAfter(ctx, env, f, "report monthly", month, e.Now())
	if err := printMonthlyAs(env, f, m); err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

func printMonthlyAs(env *Env, f logFlags, m metrics.Monthly) error {
	switch {
	case f.format == "json":
		return writeJSON(env.Stdout, m)
	case f.format == "csv" && f.rows == "resources":
		return writeCSV(env.Stdout, m.Resources)
	case f.format == "csv" && f.rows == "workloads":
		return writeCSV(env.Stdout, m.Workloads)
	case f.format == "csv":
		return writeCSV(env.Stdout, m.Orgs)
	}
	return printMonthly(env, m)
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func money(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }

func printMonthly(env *Env, m metrics.Monthly) error {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", o.Org, orDash(o.Name), money(o.MCV), o.Customers, o.Deployments)
	}
	return tw.Flush()
}

func runPCS(ctx context.Context, env *Env, args []string) error {
	f := logFlags{asksService: true}
	var month, orgID string
	fs := newFlagSet(env, "report pcs", "report pcs --log FILE --month YYYY-MM --org ORG [--format json|csv]")
	f.register(fs)
	f.formats = withCSV
	fs.StringVar(&month, "month", "", "the last month of the score, YYYY-MM")
	fs.StringVar(&orgID, "org", "", "the organisation's global partner ID")
	f.registerMetricsConfig(fs)
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	cfg, err := readMetricsConfig(f.metricsConfig)
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
	if f.asks() {
		c, err := f.client()
		if err != nil {
			return err
		}
		score, err := c.PCS(ctx, month, orgID)
		if err != nil {
			return err
		}
		noteMonthAfter(ctx, env, f, "report pcs", month, time.Time{})
		return printScoreAs(env, f.format, attribution.Organisation{ID: orgID}, baseline, score, cfg)
	}
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
	seg := metrics.SegmentsAtMonthEnd(e)
	inputs, hasInputs := e.MetricsInputs(orgID, month)
	score := metrics.CapabilityScore(cfg, orgID, seg(orgID, month),
		agg.Report(cfg, month, seg), agg.Report(cfg, baseline, seg), inputs, hasInputs)
	noteMonthAfter(ctx, env, f, "report pcs", month, e.Now())
	if err := printScoreAs(env, f.format, org, baseline, score, cfg); err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

func printScoreAs(env *Env, format string, org attribution.Organisation, baseline string, s metrics.Score, cfg metrics.Config) error {
	switch format {
	case "json":
		return writeJSON(env.Stdout, s)
	case "csv":
		return writeCSV(env.Stdout, []metrics.Score{s})
	}
	return printScore(env, org, baseline, s, cfg)
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
	most := cfg.MaxNetCustomerAdds + cfg.MaxIntermediate + cfg.MaxAdvanced + cfg.MaxUsageGrowth + cfg.MaxDeployments
	fmt.Fprintf(tw, "total\t%s\t%s\n", num(s.Total), num(most))
	tw.Flush()
	verdict := fmt.Sprintf("does not qualify (a total of at least %s and at least 1 point in every subcategory are needed)", num(cfg.QualifyingTotal))
	if s.Qualified {
		verdict = "qualifies"
	}
	_, err := fmt.Fprintf(env.Stdout, "\n%s %s.\n", s.Org, verdict)
	return err
}
