package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/credit"
)

func runAttribution(ctx context.Context, env *Env, args []string) error {
	f := logFlags{asksService: true}
	var atFlag string
	fs := newFlagSet(env, "attribution", "attribution --log FILE [--at TIME] [--format json] [--policy latest|first|split]")
	f.register(fs)
	f.formats = withCSV
	fs.StringVar(&atFlag, "at", "", "the instant, RFC 3339 or YYYY-MM-DD (default: after the last event)")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	at, err := optionalTime("at", atFlag)
	if err != nil {
		return err
	}
	var out attributionResult
	if f.asks() {
		c, err := f.client()
		if err != nil {
			return err
		}
		page, err := c.Attribution(ctx, atFlag)
		if err != nil {
			return err
		}
		out.At, out.Resources = page.At, page.Resources
		return out.print(env, f.format)
	}
	// The whole log is folded: the credit history answers any instant, and
	// an Azure resource is listed when the log has consumption for it
	// anywhere.
	e, t, err := replay{}.run(ctx, env, f, opts)
	if err != nil {
		return err
	}
	if at == nil {
		out.At, out.Resources = e.Now(), e.Attribution()
	} else {
		out.At, out.Resources = *at, e.AttributionAt(*at)
	}
	if out.Resources == nil {
		out.Resources = []attribution.Row{}
	}
	if err := out.print(env, f.format); err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

// attributionResult is the answer of pal attribution and of the service's
// /v1/attribution.
type attributionResult struct {
	At        time.Time         `json:"at"`
	Resources []attribution.Row `json:"resources"`
}

func (a attributionResult) print(env *Env, format string) error {
	switch format {
	case "json":
		return writeJSON(env.Stdout, a)
	case "csv":
		return writeCSV(env.Stdout, a.Resources)
	}
	return printAttribution(env, a.At, a.Resources)
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
	fmt.Fprintf(env.Stdout, "Attribution at %s: %s\n\n", stamp(at), count(len(rows), "resource"))
	tw := newTable(env.Stdout)
	fmt.Fprintln(tw, "TENANT\tRESOURCE\tKIND\tENVIRONMENT\tSTATUS\tPARTNER\tORG\tACCOUNT\tSINCE\tREASON")
	for _, r := range rows {
		since := ""
		if r.Since != nil {
			since = stamp(*r.Since)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Tenant, r.Resource, r.Kind, r.Environment,
			r.Status, orDash(partnerCell(r.Partner, r.Shares)), orDash(r.Org), orDash(r.Account), orDash(since), orDash(r.Reason))
	}
	return tw.Flush()
}

// count writes n things, with the plural when n is not 1.
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// partnerCell is the partner column of a table: the partner, or under
// split each location with its share.
func partnerCell(partner string, shares []credit.Share) string {
	if len(shares) == 0 {
		return partner
	}
	parts := make([]string, len(shares))
	for i, s := range shares {
		parts[i] = fmt.Sprintf("%s=%.4g", s.Partner, s.Share)
	}
	return strings.Join(parts, ",")
}
