package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/palproject/pal/internal/api"
)

// runLink is az managementpartner's create, show, update and delete
// against a pal service: they act on the caller's own link only.
func runLink(ctx context.Context, env *Env, args []string) error {
	methods := map[string]string{"create": http.MethodPut, "show": http.MethodGet, "update": http.MethodPatch, "delete": http.MethodDelete}
	if len(args) > 0 && args[0] == "apply" {
		return linkApply(ctx, env, args[1:])
	}
	if len(args) == 0 || methods[args[0]] == "" {
		return usagef("say pal link create|show|update|delete --partner-id ID --server URL --token T, or pal link apply --file links.csv --server URL")
	}
	verb := args[0]
	var sf serverFlags
	fs := newFlagSet(env, "link "+verb, "link "+verb+" --partner-id ID --server URL --token T")
	sf.register(fs.FlagSet)
	partnerID := fs.String("partner-id", "", "the partner ID (a location ID of the partner organisation)")
	if err := fs.parse(args[1:]); err != nil {
		return err
	}
	if *partnerID == "" && verb != "show" {
		return usagef("--partner-id is required")
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	path := api.LinkPath
	if *partnerID != "" {
		path += "/" + url.PathEscape(*partnerID)
	}
	var out json.RawMessage
	if err := c.Do(ctx, methods[verb], path, url.Values{"api-version": {"2018-02-01"}}, nil, &out); err != nil {
		return err
	}
	return writeJSON(env.Stdout, out)
}

// linkApply sets many accounts' links from a CSV file (tenant, token,
// partner_id): for each row it reads the account's link, then creates,
// changes or leaves it, as Azure's API requires (creating over a link
// fails), and prints one line a row. Run again, it changes nothing.
func linkApply(ctx context.Context, env *Env, args []string) error {
	var sf serverFlags
	fs := newFlagSet(env, "link apply", "link apply --file links.csv --server URL [--ca FILE]")
	sf.register(fs.FlagSet)
	file := fs.String("file", "", "a CSV file whose header names the columns tenant, token and partner_id; a token may be @FILE, a file that holds it")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *file == "" {
		return usagef("--file is required: a CSV file of tenant, token and partner_id")
	}
	f, err := env.open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	rd := csv.NewReader(f)
	rd.FieldsPerRecord = -1
	header, err := rd.Read()
	if err != nil {
		return usagef("%s: no header row: name the columns tenant, token and partner_id", *file)
	}
	col := map[string]int{}
	for i, name := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))] = i
	}
	for _, name := range []string{"tenant", "token", "partner_id"} {
		if _, ok := col[name]; !ok {
			return usagef("%s has no column %s: the header names tenant, token and partner_id", *file, name)
		}
	}
	refused := false
	for line := 2; ; line++ {
		row, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		field := func(name string) string {
			if i := col[name]; i < len(row) {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		outcome, err := applyLink(ctx, sf, field("tenant"), field("token"), field("partner_id"))
		if err != nil {
			refused = true
			outcome = "refused: " + err.Error()
		}
		fmt.Fprintf(env.Stdout, "line %d, tenant %s: %s\n", line, field("tenant"), outcome)
	}
	if refused {
		return errRefused
	}
	return nil
}

// applyLink sets one account's link to partner, and says what it did.
func applyLink(ctx context.Context, sf serverFlags, tenant, token, partner string) (string, error) {
	if rest, ok := strings.CutPrefix(token, "@"); ok {
		data, err := os.ReadFile(rest)
		if err != nil {
			return "", fmt.Errorf("the token file: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	if token == "" || partner == "" {
		return "", errors.New("the row needs a token and a partner_id")
	}
	sf.token = token
	c, err := sf.client()
	if err != nil {
		return "", err
	}
	var me struct{ Role, Tenant, Account string }
	if err := c.Do(ctx, http.MethodGet, "/v1/me", nil, nil, &me); err != nil {
		return "", err
	}
	if me.Role != "account" {
		return "", fmt.Errorf("the token is a %s's, not an account's: only the account itself links", me.Role)
	}
	if me.Tenant != tenant {
		return "", fmt.Errorf("the token is account %s's in tenant %s, not in %s", me.Account, me.Tenant, tenant)
	}
	version := url.Values{"api-version": {"2018-02-01"}}
	var cur struct {
		Properties struct{ PartnerID, State string }
	}
	err = c.Do(ctx, http.MethodGet, api.LinkPath, version, nil, &cur)
	var se *api.Error
	switch {
	case errors.As(err, &se) && se.Code == "NotFound":
		if err := c.Do(ctx, http.MethodPut, api.LinkPath+"/"+url.PathEscape(partner), version, nil, &json.RawMessage{}); err != nil {
			return "", err
		}
		return fmt.Sprintf("account %s created its link to %s", me.Account, partner), nil
	case err != nil:
		return "", err
	case cur.Properties.PartnerID == partner:
		return fmt.Sprintf("account %s already links %s: unchanged", me.Account, partner), nil
	}
	if err := c.Do(ctx, http.MethodPatch, api.LinkPath+"/"+url.PathEscape(partner), version, nil, &json.RawMessage{}); err != nil {
		return "", err
	}
	return fmt.Sprintf("account %s changed its link from %s to %s", me.Account, cur.Properties.PartnerID, partner), nil
}
