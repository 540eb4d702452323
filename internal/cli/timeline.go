package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/usage"
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
	Shares []credit.Share `json:"shares,omitempty"`
	// Share is an Azure location's share under --azure-policy.
	Share *float64 `json:"share,omitempty"`
}

func runTimeline(ctx context.Context, env *Env, args []string) error {
	var f logFlags
	var tenant, resource string
	fs := newFlagSet(env, "timeline", "timeline --log FILE [--tenant T] [--resource R] [--format json|parquet --out FILE]")
	f.register(fs)
	out := fs.String("out", "", "with --format parquet, the Parquet file to write")
	fs.StringVar(&tenant, "tenant", "", "only this tenant's resources")
	fs.StringVar(&resource, "resource", "", "only this resource")
	f.formats = []string{"table", "json", "csv", "parquet"}
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	parquetOut := f.format == "parquet"
	if parquetOut != (*out != "") {
		return usagef("--format parquet and --out FILE go together")
	}
	e, t, err := replay{}.run(ctx, env, f, opts)
	if err != nil {
		return err
	}
	skip := func(k attribution.ResourceKey) bool {
		return (tenant != "" && k.Tenant != tenant) || (resource != "" && k.Resource != resource)
	}
	rows := []interval{}
	e.Timeline(func(k attribution.ResourceKey, h []attribution.Interval) bool {
		if skip(k) {
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
	byResource := func(a, b interval) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	}
	if parquetOut {
		slices.SortStableFunc(rows, byResource)
		if err := writeTimelineParquet(*out, rows, e, skip); err != nil {
			return err
		}
		return reportRefusals(env, t, f.strict)
	}
	e.Azure().Timeline(func(tenant, resource string, h []azure.Interval) bool {
		k := attribution.ResourceKey{Tenant: tenant, Resource: resource}
		if skip(k) {
			return true
		}
		for _, iv := range h {
			share := iv.Share
			row := interval{Tenant: k.Tenant, Resource: k.Resource, Workload: azure.Workload,
				Org: iv.Org, Partner: iv.Partner, Account: iv.Account, Start: iv.From, Share: &share}
			if !iv.To.IsZero() {
				end := iv.To
				row.End = &end
			}
			rows = append(rows, row)
		}
		return true
	})
	slices.SortStableFunc(rows, byResource)
	switch {
	case f.format == "csv":
		err = writeCSV(env.Stdout, rows)
	case f.format == "json":
		err = writeJSON(env.Stdout, struct {
			Intervals []interval `json:"intervals"`
		}{rows})
	default:
		tw := newTable(env.Stdout)
		fmt.Fprintln(tw, "TENANT\tRESOURCE\tWORKLOAD\tSTART\tEND\tPARTNER\tORG\tACCOUNT\tREASON")
		for _, r := range rows {
			end := "open"
			if r.End != nil {
				end = stamp(*r.End)
			}
			partner := partnerCell(r.Partner, r.Shares)
			if r.Share != nil && *r.Share != 1 {
				partner = fmt.Sprintf("%s (share %.4g)", r.Partner, *r.Share)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Tenant, r.Resource, r.Workload, stamp(r.Start), end,
				orDash(partner), orDash(r.Org), orDash(r.Account), orDash(r.Reason))
		}
		err = tw.Flush()
	}
	if err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

// writeTimelineParquet writes a Parquet timeline, through a temporary file
// renamed at the end: the Power Platform intervals (rows), then, in row
// groups of their own, the recognition intervals of every Azure resource
// with consumption that skip does not leave out, streamed as the engine
// gives them. An Azure row is a span over which a location is recognised
// in one way (azure.Recognition), with its subscription, share
// and whether an active assignment recognises it: what a warehouse needs
// to reproduce pal report azure from its own cost exports
// (docs/warehouse.md).
func writeTimelineParquet(path string, rows []interval, e *attribution.Engine, skip func(attribution.ResourceKey) bool) error {
	err := writeFileAtomically(path, func(out io.Writer) error {
		w := usage.NewTimelineWriter(out)
		for _, r := range rows {
			row := usage.Interval{Tenant: r.Tenant, Resource: r.Resource, Workload: r.Workload, Org: r.Org, Partner: r.Partner,
				Account: r.Account, Start: r.Start.UnixMicro()}
			if r.End != nil {
				end := r.End.UnixMicro()
				row.End = &end
			}
			if err := w.Write(row); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		var err error
		e.Azure().Recognitions(func(tenant, resource string, rs []azure.Recognition) bool {
			k := attribution.ResourceKey{Tenant: tenant, Resource: resource}
			if skip(k) || len(rs) == 0 {
				return true
			}
			sc, _ := event.ParseResourcePath(k.Resource)
			for _, r := range rs {
				row := usage.Interval{Tenant: k.Tenant, Resource: k.Resource, Workload: azure.Workload,
					Subscription: &sc.Subscription, Org: r.Org, Partner: r.Partner, Account: r.Account,
					Share: &r.Share, Active: &r.Active, Start: r.From.UnixMicro()}
				if !r.To.IsZero() {
					end := r.To.UnixMicro()
					row.End = &end
				}
				if err = w.Write(row); err != nil {
					return false
				}
			}
			return true
		})
		if err != nil {
			return err
		}
		return w.Close()
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
