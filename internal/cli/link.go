package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

const linkAPI = "/providers/Microsoft.ManagementPartner/partners"

// runLink is az managementpartner's create, show, update and delete
// against a pal service: they act on the caller's own link only.
func runLink(ctx context.Context, env *Env, args []string) error {
	methods := map[string]string{"create": http.MethodPut, "show": http.MethodGet, "update": http.MethodPatch, "delete": http.MethodDelete}
	if len(args) == 0 || methods[args[0]] == "" {
		return usagef("say pal link create|show|update|delete --partner-id ID --server URL --token T")
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
	path := linkAPI
	if *partnerID != "" {
		path += "/" + url.PathEscape(*partnerID)
	}
	var out json.RawMessage
	if err := c.do(ctx, methods[verb], path, url.Values{"api-version": {"2018-02-01"}}, nil, &out); err != nil {
		return err
	}
	return writeJSON(env.Stdout, out)
}
