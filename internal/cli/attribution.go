package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
)

func runAttribution(ctx context.Context, env *Env, args []string) error {
	var f logFlags
	var atFlag string
	fs := flagSet(env, "attribution", "attribution --log FILE [--at TIME] [--format json] [--policy latest|first|split]")
	f.register(fs)
	fs.StringVar(&atFlag, "at", "", "the instant, RFC 3339 or YYYY-MM-DD (default: after the last event)")
	if err := parse(fs, args); err != nil {
		return err
	}
	opts, err := f.check()
	if err != nil {
		return err
	}
	at, err := optionalTime("at", atFlag)
	if err != nil {
		return err
	}
	var rows []attribution.Row
	var when time.Time
	r := replay{at: at, onAt: func(e *attribution.Engine) {
		rows = e.Attribution()
		when = e.Now()
		if at != nil {
			when = *at
		}
	}}
	_, t, err := r.run(ctx, env, f.log, opts)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []attribution.Row{}
	}
	if f.format == "json" {
		err = writeJSON(env.Stdout, struct {
			At        time.Time         `json:"at"`
			Resources []attribution.Row `json:"resources"`
		}{when, rows})
	} else {
		err = printAttribution(env, when, rows)
	}
	if err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

// optionalTime parses a time flag that may be empty.
func optionalTime(name, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := parseTime(name, s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func printAttribution(env *Env, at time.Time, rows []attribution.Row) error {
	fmt.Fprintf(env.Stdout, "Attribution at %s: %d resources\n\n", stamp(at), len(rows))
	tw := newTable(env.Stdout)
	fmt.Fprintln(tw, "TENANT\tRESOURCE\tKIND\tENVIRONMENT\tSTATUS\tPARTNER\tORG\tACCOUNT\tSINCE\tREASON")
	for _, r := range rows {
		since := ""
		if r.Since != nil {
			since = stamp(*r.Since)
		}
		partner := r.Partner
		if len(r.Shares) > 0 {
			var parts []string
			for _, s := range r.Shares {
				parts = append(parts, fmt.Sprintf("%s=%.4g", s.Partner, s.Share))
			}
			partner = strings.Join(parts, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Tenant, r.Resource, r.Kind, r.Environment,
			r.Status, orDash(partner), orDash(r.Org), orDash(r.Account), orDash(since), orDash(r.Reason))
	}
	return tw.Flush()
}
