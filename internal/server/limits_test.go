package server_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

// TestWritesAreLimitedPerCaller floods the service from one account and
// one tenant administrator: each gets 429 with Retry-After once its bucket
// is empty, while another account writes on, and the operator is not
// limited.
func TestWritesAreLimitedPerCaller(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{WriteRate: 1, WriteBurst: 5})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011","100012"]}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"bob","kind":"guest"}`)
	alice := s.token(store.RoleAccount, "contoso", "alice", "")
	bob := s.token(store.RoleAccount, "contoso", "bob", "")
	link := "/providers/Microsoft.ManagementPartner/partners/"
	limited := 0
	for i := range 12 {
		method := "PATCH"
		if i == 0 {
			method = "PUT"
		}
		req, _ := http.NewRequest(method, s.url+link+[]string{"100011", "100012"}[i%2], nil)
		req.Header.Set("Authorization", "Bearer "+alice)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			limited++
			if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 {
				t.Errorf("a 429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("link write %d: %s", i, resp.Status)
		}
	}
	if limited < 6 {
		t.Errorf("%d of 12 quick link writes limited, want at least 6 past a burst of 5", limited)
	}
	// Another account is not held back by alice's flood.
	if status, body := s.call("PUT", link+"100011", bob, ""); status != http.StatusOK {
		t.Errorf("bob's link while alice floods: %d %s", status, body)
	}
	// A batch costs an event a line; one larger than the burst is refused
	// with a word on its size, and stores nothing.
	admin := s.token(store.RoleTenantAdmin, "contoso", "", "")
	var lines []string
	for i := range 6 {
		lines = append(lines, fmt.Sprintf(`{"type":"environment.created","time":"2026-01-02T00:00:00Z","tenant":"contoso","environment":"e%d","env_type":"sandbox"}`, i))
	}
	if status, body := s.call("POST", "/v1/events", admin, strings.Join(lines, "\n")); status != http.StatusBadRequest || !strings.Contains(string(body), "smaller batches") {
		t.Errorf("a batch past the burst: %d %s", status, body)
	}
	if status, _ := s.call("POST", "/v1/events", admin, strings.Join(lines[:5], "\n")); status != http.StatusOK {
		t.Errorf("a batch of the burst: %d", status)
	}
	if status, _ := s.call("POST", "/v1/events", admin, lines[5]); status != http.StatusTooManyRequests {
		t.Errorf("one more event at once: %d, want 429", status)
	}
	// The operator carries the platform's telemetry: not limited (push
	// fails the test on anything but 200).
	for range 3 {
		s.push(operator, strings.Join(lines, "\n"))
	}
}
