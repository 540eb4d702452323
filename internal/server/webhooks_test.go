package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

// receiver is a webhook receiver on loopback that fails its first posts.
type receiver struct {
	mu       sync.Mutex
	failures int
	posts    []string // delivery ids of the posts it accepted
	bodies   []map[string]any
	bad      int // posts with a wrong signature
}

func (rc *receiver) handler(secret *string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if r.Header.Get(server.SignatureHeader) != server.Sign(*secret, body) {
			rc.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if rc.failures > 0 {
			rc.failures--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		rc.posts = append(rc.posts, r.Header.Get(server.DeliveryHeader))
		rc.bodies = append(rc.bodies, m)
	}
}

// TestWebhooks registers Northwind's webhook, makes its credit change four
// times, and has two replicas dispatch at once to a receiver that fails its
// first two posts: every change arrives once, in order, signed.
func TestWebhooks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		// The receiver is on loopback, over http://: the operator allows it.
		local := server.Config{WebhookAllowHTTP: true, WebhookAllowPrivate: true}
		a := start(t, open(t), local)
		b := start(t, open(t), local)
		operator := a.token(store.RoleOperator, "", "", "")
		a.push(operator, demoLog(t))

		var secret string
		rc := &receiver{failures: 2}
		hs := httptest.NewServer(rc.handler(&secret))
		defer hs.Close()
		northwind := a.token(store.RolePartnerReader, "", "", "2000001")
		var hook struct{ ID, Secret string }
		if status := a.json("POST", "/v1/webhooks", northwind, fmt.Sprintf(`{"url":%q}`, hs.URL), &hook); status != 200 || hook.Secret == "" {
			t.Fatalf("POST /v1/webhooks: %d %+v", status, hook)
		}
		rc.mu.Lock()
		secret = hook.Secret
		rc.mu.Unlock()
		// adatum's administrator subscribes to its tenant's changes.
		var adatumSecret string
		rcAdatum := &receiver{}
		hsAdatum := httptest.NewServer(rcAdatum.handler(&adatumSecret))
		defer hsAdatum.Close()
		adatum := a.token(store.RoleTenantAdmin, "adatum", "", "")
		var tenantHook struct{ ID, Secret, Tenant string }
		if status := a.json("POST", "/v1/webhooks", adatum, fmt.Sprintf(`{"url":%q}`, hsAdatum.URL), &tenantHook); status != 200 || tenantHook.Tenant != "adatum" {
			t.Fatalf("POST /v1/webhooks as adatum's administrator: %d %+v", status, tenantHook)
		}
		rcAdatum.mu.Lock()
		adatumSecret = tenantHook.Secret
		rcAdatum.mu.Unlock()
		if status, _ := a.call("DELETE", "/v1/webhooks/"+hook.ID, adatum, ""); status != 404 {
			t.Errorf("a tenant administrator deleting an organisation's webhook: %d, want 404", status)
		}
		if status, _ := a.call("POST", "/v1/webhooks", operator, `{"url":"http://127.0.0.1:1/"}`); status != 403 {
			t.Errorf("the operator registering a webhook: %d, want 403", status)
		}
		if status, _ := a.call("POST", "/v1/webhooks", northwind, `{"url":"ftp://example"}`); status != 400 {
			t.Errorf("an ftp webhook: %d, want 400", status)
		}

		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		go a.srv.Dispatch(ctx, 20*time.Millisecond)
		go b.srv.Dispatch(ctx, 20*time.Millisecond)

		// bob removes his link and sets it again, twice: Northwind loses and
		// regains expenses each time. frank's removal in adatum moves
		// onboarding to Tailspin and leaves approvals to no one: not
		// Northwind's, but adatum's.
		for i, typ := range []string{"pal.removed", "pal.linked", "pal.removed", "pal.linked"} {
			ev := fmt.Sprintf(`{"type":%q,"time":"2026-04-%02dT00:00:00Z","tenant":"contoso","account":"bob@northwind.example","partner":"2000011"}`, typ, i+1)
			if res := []*service{a, b}[i%2].push(operator, ev); res.Accepted != 1 {
				t.Fatalf("%s: %+v", typ, res)
			}
		}
		a.push(operator, `{"type":"pal.removed","time":"2026-04-09T00:00:00Z","tenant":"adatum","account":"frank@fabrikam.example"}`)

		deadline := time.Now().Add(20 * time.Second)
		for {
			rc.mu.Lock()
			n := len(rc.posts)
			rc.mu.Unlock()
			rcAdatum.mu.Lock()
			m := len(rcAdatum.posts)
			rcAdatum.mu.Unlock()
			if n >= 4 && m >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // anything posted twice would arrive by now
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if len(rc.posts) != 4 || rc.bad != 0 {
			t.Fatalf("posts %v (%d badly signed), want 4 deliveries", rc.posts, rc.bad)
		}
		seen := map[string]bool{}
		for i, id := range rc.posts {
			if seen[id] {
				t.Errorf("delivery %s posted twice", id)
			}
			seen[id] = true
			m := rc.bodies[i]
			wantCause := []string{"pal.removed", "pal.linked"}[i%2]
			if m["cause"] != wantCause || m["resource"] != "expenses" || m["webhook"] != hook.ID {
				t.Errorf("post %d: %v, want %s of expenses", i, m, wantCause)
			}
		}
		var list struct{ Webhooks []struct{ ID, URL string } }
		a.json("GET", "/v1/webhooks", northwind, "", &list)
		if len(list.Webhooks) != 1 || list.Webhooks[0].ID != hook.ID {
			t.Errorf("GET /v1/webhooks: %+v", list)
		}
		rcAdatum.mu.Lock()
		defer rcAdatum.mu.Unlock()
		var got []string
		for _, m := range rcAdatum.bodies {
			got = append(got, fmt.Sprintf("%v %v", m["tenant"], m["resource"]))
		}
		slices.Sort(got)
		if fmt.Sprint(got) != "[adatum approvals adatum onboarding]" || rcAdatum.bad != 0 {
			t.Errorf("adatum's webhook got %v (%d badly signed), want its two changes", got, rcAdatum.bad)
		}
	})
}
