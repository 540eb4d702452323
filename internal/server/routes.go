package server

import (
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/palproject/pal/internal/api"
)

// routeTable binds the routes of the API's contract (api.Routes: path,
// summary, who may call it) to their handlers.
func (s *Server) routeTable() []route {
	handlers := map[string]handler{
		"GET" + " " + "/healthz":                       s.getHealth,
		"GET" + " " + "/openapi.json":                  s.getOpenAPI,
		"POST" + " " + "/v1/consumption":               s.postConsumption,
		"POST" + " " + "/v1/events":                    s.postEvents,
		"GET" + " " + "/v1/log":                        s.getLog,
		"GET" + " " + "/v1/intake":                     s.getIntake,
		"GET" + " " + "/v1/refusals":                   s.getRefusals,
		"GET" + " " + "/v1/attribution":                s.getAttribution,
		"GET" + " " + "/v1/explain":                    s.getExplain,
		"GET" + " " + "/v1/changes":                    s.getChanges,
		"POST" + " " + "/v1/webhooks":                  s.postWebhook,
		"GET" + " " + "/v1/webhooks":                   s.getWebhooks,
		"DELETE" + " " + "/v1/webhooks/{id}":           s.deleteWebhook,
		"POST" + " " + "/v1/webhooks/{id}/secret":      s.rotateWebhookSecret,
		"GET" + " " + "/v1/me":                         s.getMe,
		"GET" + " " + "/v1/me/credit":                  s.getMyCredit,
		"GET" + " " + "/v1/timeline":                   s.getTimeline,
		"GET" + " " + "/v1/links":                      s.getLinks,
		"GET" + " " + "/v1/diagnosis":                  s.getDiagnosis,
		"POST" + " " + "/v1/whatif":                    s.postWhatIf,
		"GET" + " " + "/v1/reports/monthly":            s.getMonthly,
		"GET" + " " + "/v1/reports/azure":              s.getAzureReport,
		"GET" + " " + "/v1/tables/{table}":             s.getTable,
		"GET" + " " + "/v1/reports/pcs":                s.getPCS,
		"GET" + " " + api.ProviderPath + "/operations": s.getOperations,
		"GET" + " " + api.LinkPath:                     s.getLink,
		"GET" + " " + api.LinkPath + "/{partnerId}":    s.getLink,
		"PUT" + " " + api.LinkPath + "/{partnerId}":    s.putLink,
		"PATCH" + " " + api.LinkPath + "/{partnerId}":  s.patchLink,
		"DELETE" + " " + api.LinkPath + "/{partnerId}": s.deleteLink,
	}
	// The contract and the handlers are one to one: a route without its
	// handler, or a handler of no route, is the service's own mistake.
	if len(handlers) != len(api.Routes) {
		panic(fmt.Sprintf("%d handlers for the %d routes of the API", len(handlers), len(api.Routes)))
	}
	out := make([]route, len(api.Routes))
	for i, rt := range api.Routes {
		h := handlers[rt.Method+" "+rt.Path]
		if h == nil {
			panic("no handler for " + rt.Method + " " + rt.Path)
		}
		out[i] = route{rt.Method, rt.Path, rt.Summary, rt.Roles, h}
	}
	return out
}

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request, _ Principal) error {
	health := map[string]any{"status": "ok"}
	if !s.isLoaded() {
		health = map[string]any{"status": "loading", "records": s.folding.Load()}
	}
	// A process serves whether or not it owns buckets: it answers every
	// request, and takes buckets as others leave.
	if s.own != nil {
		held := slices.Sorted(maps.Keys(s.own.Held()))
		health["buckets"] = append([]int{}, held...)
	}
	writeJSON(w, http.StatusOK, health)
	return nil
}
