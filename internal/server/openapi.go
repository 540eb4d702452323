package server

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/palproject/pal/internal/api"
)

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// openAPI describes the API from the route table, so that the document
// cannot drift from what is served.
func (s *Server) openAPI() map[string]any {
	paths := map[string]any{}
	for _, rt := range s.routeTable() {
		op := map[string]any{
			"summary": rt.summary,
			"responses": map[string]any{
				"200":     map[string]any{"description": "OK"},
				"default": map[string]any{"description": "An error", "content": jsonSchemaRef("Error")},
			},
		}
		if len(rt.roles) > 0 {
			op["security"] = []any{map[string]any{"bearer": []string{}}}
			op["x-pal-roles"] = rt.roles
		} else {
			op["security"] = []any{}
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]string{"type": "string"}})
		}
		if strings.HasPrefix(rt.path, api.ProviderPath) {
			params = append(params, map[string]any{"name": "api-version", "in": "query", "required": false,
				"description": "Accepted and ignored (2018-02-01).", "schema": map[string]string{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		item, _ := paths[rt.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		item[strings.ToLower(rt.method)] = op
	}
	paths["/metrics"] = map[string]any{"get": map[string]any{"summary": "Prometheus metrics, text format.", "security": []any{},
		"responses": map[string]any{"200": map[string]any{"description": "OK"}}}}
	return map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": "pal", "version": "1", "description": "Partner attribution for partner admin links."},
		"paths":   paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer",
				"description": "A token pal issued (pal token issue), or a JWT of the configured OpenID Connect issuer."}},
			"schemas": map[string]any{"Error": map[string]any{"type": "object", "properties": map[string]any{
				"error": map[string]any{"type": "object", "properties": map[string]any{
					"code": map[string]string{"type": "string"}, "message": map[string]string{"type": "string"}}}}}},
		},
	}
}

func jsonSchemaRef(name string) map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": map[string]string{"$ref": "#/components/schemas/" + name}}}
}

func (s *Server) getOpenAPI(w http.ResponseWriter, r *http.Request, _ Principal) error {
	writeJSON(w, http.StatusOK, s.openAPI())
	return nil
}
