package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

// TestUnroutedInTheAPIShape: a path no endpoint serves, or a method its
// endpoint does not take, is answered with the API's error body, as every
// other error (SPEC.md section 8), with Allow for a method.
func TestUnroutedInTheAPIShape(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	account := s.token(store.RoleAccount, "contoso", "alice", "")
	for _, tt := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"PUT", "/providers/Microsoft.ManagementPartner/partners", 405, "MethodNotAllowed", "GET"},
		{"POST", "/providers/Microsoft.ManagementPartner/partners/1000001", 405, "MethodNotAllowed", "GET, PUT, PATCH, DELETE"},
		{"GET", "/providers/Microsoft.ManagementPartner/partners/", 404, "NotFound", ""},
		{"GET", "/v1/nothing", 404, "NotFound", ""},
		{"DELETE", "/v1/log", 405, "MethodNotAllowed", "GET"},
	} {
		req, _ := http.NewRequest(tt.method, s.url+tt.path, nil)
		req.Header.Set("Authorization", "Bearer "+account)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string }
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || err != nil || body.Error.Code != tt.code || body.Error.Message == "" || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d %+v (%v), Allow %q; want %d %s, Allow %q", tt.method, tt.path, resp.StatusCode, body, err, resp.Header.Get("Allow"), tt.status, tt.code, tt.allow)
		}
	}
	// The pages are still served.
	if status, _ := s.call("GET", "/", "", ""); status != http.StatusOK {
		t.Errorf("GET /: %d", status)
	}
}
