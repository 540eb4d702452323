package cli

import (
	"context"
	"fmt"

	"github.com/palproject/pal/internal/metrics"
)

func runCheck(ctx context.Context, env *Env, args []string) error {
	var f logFlags
	fs := newFlagSet(env, "check", "check --log FILE [--format json] [--strict]")
	f.register(fs)
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	e, t, err := replay{}.run(ctx, env, f, opts)
	if err != nil {
		return err
	}
	if f.usage != "" {
		// Usage is checked, not counted: the aggregator measures no month.
		if err := readUsage(ctx, env, f.usage, e, metrics.NewAggregator("none"), &t); err != nil {
			return err
		}
	}
	if f.format == "json" {
		if err := writeJSON(env.Stdout, t); err != nil {
			return err
		}
	} else {
		tw := newTable(env.Stdout)
		fmt.Fprintf(tw, "events\t%d\n", t.Events)
		fmt.Fprintf(tw, "applied\t%d\n", t.Applied)
		fmt.Fprintf(tw, "duplicates\t%d\n", t.Duplicates)
		fmt.Fprintf(tw, "refused\t%d\n", len(t.Refused))
		if len(t.Refused) > 0 {
			fmt.Fprintln(tw)
			fmt.Fprintln(tw, "LINE\tTYPE\tCODE\tMESSAGE")
			for _, rf := range t.Refused {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", rf.Line, orDash(rf.Type), rf.Code, rf.Message)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	// On standard error too, as every command that reads a log says them
	// (SPEC.md section 7).
	return reportRefusalsListed(env, t, f.strict, "standard output lists them all")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
