package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
)

// interval is one row of the timeline.
type interval struct {
	Tenant   string     `json:"tenant"`
	Resource string     `json:"resource"`
	Workload string     `json:"workload"`
	Org      string     `json:"org"`
	Partner  string     `json:"partner"`
	Account  string     `json:"account"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end"`
	Reason   string     `json:"reason"`
	// Shares is set under the split policy.
	Shares []attribution.Share `json:"shares,omitempty"`
}

func runTimeline(ctx context.Context, env *Env, args []string) error {
	var f logFlags
	var tenant, resource string
	fs := newFlagSet(env, "timeline", "timeline --log FILE [--tenant T] [--resource R] [--format json]")
	f.register(fs)
	fs.StringVar(&tenant, "tenant", "", "only this tenant's resources")
	fs.StringVar(&resource, "resource", "", "only this resource")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	e, t, err := replay{}.run(ctx, env, f.log, opts)
	if err != nil {
		return err
	}
	rows := []interval{}
	e.Timeline(func(k attribution.ResourceKey, h []attribution.Interval) bool {
		if (tenant != "" && k.Tenant != tenant) || (resource != "" && k.Resource != resource) {
			return true
		}
		for _, iv := range h {
			row := interval{Tenant: k.Tenant, Resource: k.Resource, Workload: event.Kinds[iv.Kind].Workload,
				Org: iv.Credit.Org, Partner: iv.Credit.Partner, Account: iv.Credit.Account, Start: iv.From, Reason: iv.Credit.Reason, Shares: iv.Credit.Shares}
			if !iv.To.IsZero() {
				end := iv.To
				row.End = &end
			}
			rows = append(rows, row)
		}
		return true
	})
	if f.format == "json" {
		err = writeJSON(env.Stdout, struct {
			Intervals []interval `json:"intervals"`
		}{rows})
	} else {
		tw := newTable(env.Stdout)
		fmt.Fprintln(tw, "TENANT\tRESOURCE\tWORKLOAD\tSTART\tEND\tPARTNER\tORG\tACCOUNT\tREASON")
		for _, r := range rows {
			end := "open"
			if r.End != nil {
				end = stamp(*r.End)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Tenant, r.Resource, r.Workload, stamp(r.Start), end,
				orDash(partnerCell(r.Partner, r.Shares)), orDash(r.Org), orDash(r.Account), orDash(r.Reason))
		}
		err = tw.Flush()
	}
	if err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}
