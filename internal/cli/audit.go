package cli

import (
	"context"
	"fmt"

	"github.com/palproject/pal/internal/attribution"
)

// runAudit lists the credit changes of a tenant, as its administrator's
// page does, marking those gained by a role alone: a partner that made
// itself co-owner of an app it never touched.
func runAudit(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "audit", "audit --tenant T (--log FILE | --server URL --token T) [--format json]")
	f := logFlags{asksService: true}
	f.register(fs)
	f.formats = withCSV
	tenant := fs.String("tenant", "", "the tenant whose credit changes to list")
	window := fs.Duration("activity-window", attribution.DefaultActivityWindow, "how far back a gaining account's activity counts")
	opts, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if *tenant == "" {
		return usagef("--tenant is required: the tenant whose credit changes to list")
	}
	if *window <= 0 {
		return usagef("--activity-window must be positive, such as 2160h")
	}
	changes := []attribution.Change{}
	if f.asks() {
		if fs.isSet("activity-window") {
			return usagef("--activity-window reads a log, not a service: the service has its own (pal serve --activity-window)")
		}
		c, err := f.client()
		if err != nil {
			return err
		}
		filed, err := c.Changes(ctx, *tenant)
		if err != nil {
			return err
		}
		for _, ch := range filed {
			if ch.Tenant == *tenant {
				changes = append(changes, ch.Change)
			}
		}
		return printAudit(env, f.format, *tenant, changes)
	}
	opts.ActivityWindow = *window
	_, t, err := replay{onStart: func(e *attribution.Engine) {
		e.OnChange(func(c attribution.Change) {
			if c.Tenant == *tenant {
				changes = append(changes, c)
			}
		})
	}}.run(ctx, env, f, opts)
	if err != nil {
		return err
	}
	if err := printAudit(env, f.format, *tenant, changes); err != nil {
		return err
	}
	return reportRefusals(env, t, f.strict)
}

// causeWords names the events that change credit, for people.
var causeWords = map[string]string{
	"resource.coowner_added": "co-owner added", "resource.owner_changed": "owner changed", "pal.linked": "link set",
	"account.enabled": "account enabled", "resource.created": "resource created", "resource.activity": "activity",
	"solution.imported": "solution imported", "resource.coowner_removed": "co-owner removed", "pal.removed": "link removed",
	"account.disabled": "account disabled", "account.deleted": "account deleted", "resource.deleted": "resource deleted",
	"environment.changed": "environment changed", "partner.registered": "partner's locations changed",
}

func printAudit(env *Env, format, tenant string, changes []attribution.Change) error {
	if format == "csv" {
		return writeCSV(env.Stdout, changes)
	}
	if format == "json" {
		return writeJSON(env.Stdout, struct {
			Tenant  string               `json:"tenant"`
			Changes []attribution.Change `json:"changes"`
		}{tenant, changes})
	}
	flagged := 0
	w := newTable(env.Stdout)
	fmt.Fprintln(w, "TIME\tRESOURCE\tFROM\tTO\tGAINED BY\tCAUSE\tNOTE")
	for _, c := range changes {
		note := ""
		switch {
		case c.RoleOnly:
			flagged++
			note = fmt.Sprintf("gained by a role alone: %s, no edit or publish before", orWord(causeWords[c.Cause], c.Cause))
		case c.To.Partner != "" && c.ActivityBefore:
			note = "worked on it before"
		}
		if c.Correction {
			note = "correction (a late event changed the past) " + note
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(c.Time), c.Resource, orDash(c.From.Partner), orDash(c.To.Partner), orDash(c.To.Account), orWord(causeWords[c.Cause], c.Cause), orDash(note))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(env.Stdout, "\n%s in tenant %s, %d gained by a role alone.\n", count(len(changes), "credit change"), tenant, flagged)
	return err
}

func orWord(word, fallback string) string {
	if word == "" {
		return fallback
	}
	return word
}
