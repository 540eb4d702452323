package server

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/storetest"
)

// TestEveryAnswerIsProtected asks every route of the route table, the
// pages and the metrics, with and without a token, and expects the
// protective headers on every answer: no sniffing, no referrer, no cache
// for the API's data, and pages that no other site may frame.
func TestEveryAnswerIsProtected(t *testing.T) {
	st := storetest.Backends()[0].Fresh(t)(t)
	s, err := New(context.Background(), Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := IssueToken(context.Background(), st, store.Token{Role: store.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	check := func(method, path, token string, api bool) {
		t.Helper()
		req := httptest.NewRequest(method, strings.NewReplacer("{partnerId}", "100011").Replace(path), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		got := w.Result().Header
		for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got.Get(name) != want {
				t.Errorf("%s %s (%d): %s = %q, want %q", method, path, w.Code, name, got.Get(name), want)
			}
		}
		if api && got.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s (%d): Cache-Control = %q, want no-store", method, path, w.Code, got.Get("Cache-Control"))
		}
		if w.Code >= 500 {
			t.Errorf("%s %s: %d", method, path, w.Code)
		}
	}
	for _, rt := range s.routeTable() {
		check(rt.method, rt.path, "", true)
		check(rt.method, rt.path, tok, true)
	}
	check("GET", "/metrics", "", false)
	check("GET", "/static/app.js", "", false)
	check("GET", "/", "", false)
	req := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if csp := w.Result().Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("the pages' Content-Security-Policy %q lets other sites frame them", csp)
	}
}
