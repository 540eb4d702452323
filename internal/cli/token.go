package cli

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/backend"
)

// runToken issues, lists and revokes the tokens of a service's store. It
// works while the service runs: every replica asks the store for a token
// on each request, so a revoked one is refused at once.
func runToken(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return usagef("say pal token issue, pal token list or pal token revoke")
	}
	switch args[0] {
	case "issue":
		return tokenIssue(ctx, env, args[1:])
	case "list":
		return tokenList(ctx, env, args[1:])
	case "revoke":
		return tokenRevoke(ctx, env, args[1:])
	}
	return usagef("unknown token command %q: say issue, list or revoke", args[0])
}

func tokenIssue(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "token issue", "token issue --db DB --role account|tenant-admin|partner-reader|operator [--tenant T] [--account A] [--org ORG] [--ttl 2160h]")
	db := fs.String("db", "pal.db", "the store of the service: an SQLite file, or a postgres:// URL")
	var t store.Token
	fs.StringVar(&t.Role, "role", "", "account, tenant-admin, partner-reader or operator")
	fs.StringVar(&t.Tenant, "tenant", "", "the tenant of an account or a tenant administrator")
	fs.StringVar(&t.Account, "account", "", "the account, for the account role")
	fs.StringVar(&t.Org, "org", "", "the organisation's global partner ID, for a partner reader")
	ttl := fs.Duration("ttl", server.DefaultTokenTTL, "how long the token lasts")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *ttl <= 0 {
		return usagef("--ttl %s does not last: give a positive duration, such as 720h", *ttl)
	}
	st, err := backend.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	t.Created = time.Now().UTC()
	t.Expires = t.Created.Add(*ttl)
	token, issued, err := server.IssueToken(ctx, st, t)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, token)
	fmt.Fprintf(env.Stderr, "pal: token %s, %s, expires %s\n", issued.ID, issued.Role, issued.Expires.Format(time.RFC3339))
	warning, err := unknownToTheLog(ctx, st, issued)
	if err != nil {
		return err
	}
	if warning != "" {
		fmt.Fprintf(env.Stderr, "pal token issue: warning: %s\n", warning)
	}
	return nil
}

// unknownToTheLog says what a token names that the service's log does not
// know yet: an organisation that is not registered (or a location ID given
// for its global ID), an account that was never created, a tenant with no
// event. Such a token is issued all the same, since the log may catch up,
// but it reads nothing until then.
func unknownToTheLog(ctx context.Context, st store.Store, t store.Token) (string, error) {
	switch t.Role {
	case store.RolePartnerReader:
		registered, owner := false, ""
		err := st.ScanTenant(ctx, "", func(r store.Record) error {
			if r.Event.Type == event.PartnerRegistered {
				registered = registered || r.Event.Org == t.Org
				if slices.Contains(r.Event.Locations, t.Org) {
					owner = r.Event.Org
				}
			}
			return nil
		})
		switch {
		case err != nil:
			return "", err
		case registered:
			return "", nil
		case owner != "":
			return fmt.Sprintf("%s is a location ID of organisation %s: a partner reader's --org is the organisation's global ID, %s; this token reads nothing", t.Org, owner, owner), nil
		}
		return fmt.Sprintf("organisation %s is not registered in the service's log: the token reads nothing until a partner.registered event names it", t.Org), nil
	case store.RoleAccount, store.RoleTenantAdmin:
		seen, created := false, false
		err := st.ScanTenant(ctx, t.Tenant, func(r store.Record) error {
			seen = true
			created = created || (r.Event.Type == event.AccountCreated && r.Event.Account == t.Account)
			return nil
		})
		switch {
		case err != nil:
			return "", err
		case !seen:
			return fmt.Sprintf("tenant %s has no event in the service's log: the token reads nothing until its events come", t.Tenant), nil
		case t.Role == store.RoleAccount && !created:
			return fmt.Sprintf("account %s does not exist in tenant %s in the service's log: its link cannot be set until an account.created event names it", t.Account, t.Tenant), nil
		}
	}
	return "", nil
}

// tokenRow is a token as pal token list shows it: never the token itself.
type tokenRow struct {
	ID       string     `json:"id"`
	Role     string     `json:"role"`
	Tenant   string     `json:"tenant,omitempty"`
	Account  string     `json:"account,omitempty"`
	Org      string     `json:"org,omitempty"`
	Created  time.Time  `json:"created"`
	Expires  time.Time  `json:"expires"`
	LastUsed *time.Time `json:"last_used"`
	State    string     `json:"state"`
}

func tokenList(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "token list", "token list --db DB [--format json]")
	db := fs.String("db", "pal.db", "the store of the service: an SQLite file, or a postgres:// URL")
	format := fs.String("format", "table", "output format: table or json")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return usagef("unknown format %q: use table or json", *format)
	}
	st, err := backend.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	tokens, err := st.Tokens(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := []tokenRow{}
	for _, t := range tokens {
		row := tokenRow{ID: t.ID, Role: t.Role, Tenant: t.Tenant, Account: t.Account, Org: t.Org, Created: t.Created, Expires: t.Expires, State: "active"}
		if !t.LastUsed.IsZero() {
			used := t.LastUsed
			row.LastUsed = &used
		}
		switch {
		case t.Revoked:
			row.State = "revoked"
		case !now.Before(t.Expires):
			row.State = "expired"
		}
		rows = append(rows, row)
	}
	if *format == "json" {
		return writeJSON(env.Stdout, rows)
	}
	w := newTable(env.Stdout)
	fmt.Fprintln(w, "ID\tROLE\tSCOPE\tCREATED\tEXPIRES\tLAST USED\tSTATE")
	for _, r := range rows {
		scope := strings.Join(nonEmpty(r.Tenant, r.Account, r.Org), "/")
		used := "never"
		if r.LastUsed != nil {
			used = r.LastUsed.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Role, cmp.Or(scope, "-"), r.Created.Format(time.RFC3339), r.Expires.Format(time.RFC3339), used, r.State)
	}
	return w.Flush()
}

func nonEmpty(xs ...string) []string {
	var out []string
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func tokenRevoke(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "token revoke", "token revoke --db DB ID")
	db := fs.String("db", "pal.db", "the store of the service: an SQLite file, or a postgres:// URL")
	if err := fs.parseArgs(args, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("say which token: pal token revoke --db DB ID (pal token list shows the IDs)")
	}
	st, err := backend.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	id := fs.Arg(0)
	ok, err := st.RevokeToken(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return usagef("no token %s in %s (pal token list shows the IDs)", id, *db)
	}
	fmt.Fprintf(env.Stdout, "revoked %s\n", id)
	return nil
}
