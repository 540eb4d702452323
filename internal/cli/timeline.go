package cli

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/palproject/pal/internal/attribution"
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
	Shares []attribution.Share `json:"shares,omitempty"`
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
	e.AzureTimeline(func(k attribution.ResourceKey, h []attribution.AzureInterval) bool {
		if (tenant != "" && k.Tenant != tenant) || (resource != "" && k.Resource != resource) {
			return true
		}
		for _, iv := range h {
			share := iv.Share
			row := interval{Tenant: k.Tenant, Resource: k.Resource, Workload: attribution.AzureWorkload,
				Org: iv.Org, Partner: iv.Partner, Account: iv.Account, Start: iv.From, Share: &share}
			if !iv.To.IsZero() {
				end := iv.To
				row.End = &end
			}
			rows = append(rows, row)
		}
		return true
	})
	slices.SortStableFunc(rows, func(a, b interval) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Resource, b.Resource))
	})
	switch {
	case parquetOut:
		err = writeTimelineParquet(*out, rows)
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

// writeTimelineParquet writes the intervals to a Parquet file, through a
// temporary file renamed at the end.
func writeTimelineParquet(path string, rows []interval) error {
	pq := make([]usage.Interval, len(rows))
	for i, r := range rows {
		pq[i] = usage.Interval{Tenant: r.Tenant, Resource: r.Resource, Workload: r.Workload, Org: r.Org, Partner: r.Partner,
			Account: r.Account, Start: r.Start.UnixMicro()}
		if r.End != nil {
			end := r.End.UnixMicro()
			pq[i].End = &end
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".timeline-*.parquet")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := usage.WriteTimeline(tmp, pq); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
