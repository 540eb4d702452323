package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

// names is a resolver of fixed answers; a name may answer differently the
// second time it is asked.
type names struct {
	mu      sync.Mutex
	answers map[string][]string // name → answer of each lookup, the last repeated
	asked   map[string]int
}

func (n *names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	answers, ok := n.answers[host]
	if !ok {
		// As the system's resolver says it.
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.255.255.53:53", IsNotFound: true}
	}
	i := min(n.asked[host], len(answers)-1)
	n.asked[host]++
	return []netip.Addr{netip.MustParseAddr(answers[i])}, nil
}

// TestWebhookDestinations registers each kind of destination a webhook may
// not post to, and sees it refused, then allowed by the operator's flags.
func TestWebhookDestinations(t *testing.T) {
	resolver := &names{answers: map[string][]string{
		"receiver.example": {"93.184.216.34"},
		"localhost":        {"127.0.0.1"},
		"intranet.example": {"10.1.2.3"},
	}, asked: map[string]int{}}
	forbidden := []string{
		"http://receiver.example/hook",             // plain http
		"https://127.0.0.1:5432/",                  // loopback: the database port
		"https://localhost/",                       // a name of loopback
		"https://169.254.169.254/latest/meta-data", // link-local: cloud metadata
		"https://10.0.0.7/",                        // private
		"https://intranet.example/",                // a name of a private address
		"https://192.168.1.1/",                     // private
		"https://[::1]/",                           // loopback
		"https://[fd00::1]/",                       // unique-local
		"https://[fe80::1]/",                       // link-local
		"https://224.0.0.1/",                       // multicast
		"https://0.0.0.0/",                         // unspecified
		"https://[::ffff:127.0.0.1]/",              // loopback, mapped
		// IANA's special-purpose blocks, not globally reachable.
		"https://100.64.0.1/",                 // shared address space (carrier-grade NAT)
		"https://100.127.255.254/",            // its last
		"https://198.18.0.1/",                 // benchmarking
		"https://198.19.255.1/",               // benchmarking, the /15's second half
		"https://192.0.0.8/",                  // IETF protocol assignments
		"https://192.0.2.10/",                 // TEST-NET-1
		"https://203.0.113.5/",                // TEST-NET-3
		"https://240.0.0.1/",                  // reserved
		"https://255.255.255.255/",            // limited broadcast
		"https://0.1.2.3/",                    // "this network"
		"https://[64:ff9b::a00:7]/",           // NAT64 of 10.0.0.7
		"https://[64:ff9b::7f00:1]/",          // NAT64 of loopback
		"https://[2002:a00:7::1]/",            // 6to4 of 10.0.0.7
		"https://[64:ff9b:1::1]/",             // local-use translation
		"https://[2001:db8::1]/",              // documentation
		"https://[2001:2::1]/",                // benchmarking, an IETF assignment
		"https://[100::1]/",                   // discard-only
		"https://user:pass@receiver.example/", // credentials in the URL
		"ftp://receiver.example/",
	}
	register := func(s *service, token, u string) int {
		status, _ := s.call("POST", "/v1/webhooks", token, fmt.Sprintf(`{"url":%q}`, u))
		return status
	}
	strict := start(t, sqliteStore(t), server.Config{Resolver: resolver})
	reader := strict.token(store.RolePartnerReader, "", "", "100001")
	for _, u := range forbidden {
		if status := register(strict, reader, u); status != http.StatusBadRequest {
			t.Errorf("registering %s: %d, want 400", u, status)
		}
	}
	// A name that does not resolve is said so, without the service's own
	// name server.
	if status, body := strict.call("POST", "/v1/webhooks", reader, `{"url":"https://nowhere.example/hook"}`); status != http.StatusBadRequest ||
		!strings.Contains(string(body), "nowhere.example does not resolve: no such host") || strings.Contains(string(body), "10.255.255.53") {
		t.Errorf("registering a name that does not resolve: %d %s", status, body)
	}
	for _, u := range []string{
		"https://receiver.example/hook",
		"https://100.128.0.1/",            // just past the shared address space
		"https://192.0.0.9/",              // an anycast assignment the registry marks reachable
		"https://198.20.0.1/",             // just past benchmarking
		"https://[64:ff9b::5db8:d822]/",   // NAT64 of a public address
		"https://[2001:4:112::1]/",        // AS112, reachable
		"https://[2606:4700:4700::1111]/", // a public IPv6 address
	} {
		if status := register(strict, reader, u); status != http.StatusOK {
			t.Errorf("registering the public receiver %s: %d, want 200", u, status)
		}
	}

	open := start(t, sqliteStore(t), server.Config{Resolver: resolver, WebhookAllowHTTP: true, WebhookAllowPrivate: true})
	reader = open.token(store.RolePartnerReader, "", "", "100001")
	credentials := slices.Index(forbidden, "https://user:pass@receiver.example/")
	for _, u := range forbidden[:credentials] {
		if status := register(open, reader, u); status != http.StatusOK {
			t.Errorf("registering %s with the operator's leave: %d, want 200", u, status)
		}
	}
	for _, u := range forbidden[credentials:] {
		if status := register(open, reader, u); status != http.StatusBadRequest {
			t.Errorf("registering %s with the operator's leave: %d, want 400", u, status)
		}
	}
}

// TestWebhookNameTurnedLoopback registers a name that resolves to a public
// address, and answers loopback when the service connects: the post is
// refused at dial time, and the receiver on loopback hears nothing. A
// receiver's redirect is not followed either.
func TestWebhookNameTurnedLoopback(t *testing.T) {
	var heard atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		heard.Add(1)
	}))
	defer receiver.Close()
	port := receiver.Listener.Addr().(*net.TCPAddr).Port
	resolver := &names{answers: map[string][]string{"rebinding.example": {"93.184.216.34", "127.0.0.1"}}, asked: map[string]int{}}
	s := start(t, sqliteStore(t), server.Config{Resolver: resolver, WebhookAllowHTTP: true})
	operator := s.token(store.RoleOperator, "", "", "")
	reader := s.token(store.RolePartnerReader, "", "", "100001")
	hook := fmt.Sprintf("http://rebinding.example:%d/hook", port)
	if status, body := s.call("POST", "/v1/webhooks", reader, fmt.Sprintf(`{"url":%q}`, hook)); status != http.StatusOK {
		t.Fatalf("registering %s: %d %s", hook, status, body)
	}
	s.push(operator, `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","partner":"100011"}
{"type":"resource.created","time":"2026-01-02T00:00:00Z","tenant":"contoso","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}`)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.srv.Dispatch(ctx, 10*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resolver.mu.Lock()
		asked := resolver.asked["rebinding.example"]
		resolver.mu.Unlock()
		if asked >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	stop()
	<-done
	if asked := resolver.asked["rebinding.example"]; asked < 2 {
		t.Fatalf("the service never dialled the webhook (%d lookups)", asked)
	}
	if n := heard.Load(); n != 0 {
		t.Errorf("the receiver on loopback heard %d posts, want none", n)
	}

	// A redirect is not followed: its target hears nothing.
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { heard.Add(1) }))
	defer target.Close()
	redirecting := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirecting.Close()
	lenient := start(t, sqliteStore(t), server.Config{WebhookAllowHTTP: true, WebhookAllowPrivate: true})
	operator = lenient.token(store.RoleOperator, "", "", "")
	reader = lenient.token(store.RolePartnerReader, "", "", "100001")
	var created struct{ ID, Secret string }
	if status := lenient.json("POST", "/v1/webhooks", reader, fmt.Sprintf(`{"url":%q}`, redirecting.URL), &created); status != http.StatusOK {
		t.Fatalf("registering the redirecting receiver: %d", status)
	}
	lenient.push(operator, `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","partner":"100011"}
{"type":"resource.created","time":"2026-01-02T00:00:00Z","tenant":"contoso","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}`)
	ctx, stop = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		lenient.srv.Dispatch(ctx, 10*time.Millisecond)
		close(done)
	}()
	time.Sleep(300 * time.Millisecond)
	stop()
	<-done
	if n := heard.Load(); n != 0 {
		t.Errorf("the redirect's target heard %d posts, want none", n)
	}

	// The webhook's secret is rotated, then the webhook removed; another
	// organisation's reader touches neither.
	other := lenient.token(store.RolePartnerReader, "", "", "200001")
	if status, _ := lenient.call("POST", "/v1/webhooks/"+url.PathEscape(created.ID)+"/secret", other, ""); status != http.StatusNotFound {
		t.Errorf("another organisation rotating the secret: %d, want 404", status)
	}
	var rotated struct{ ID, Secret string }
	if status := lenient.json("POST", "/v1/webhooks/"+created.ID+"/secret", reader, "", &rotated); status != http.StatusOK || rotated.Secret == "" || rotated.Secret == created.Secret {
		t.Errorf("rotating the secret: %d %+v", status, rotated)
	}
	if status, _ := lenient.call("DELETE", "/v1/webhooks/"+created.ID, other, ""); status != http.StatusNotFound {
		t.Errorf("another organisation deleting the webhook: %d, want 404", status)
	}
	if status, _ := lenient.call("DELETE", "/v1/webhooks/"+created.ID, reader, ""); status != http.StatusOK {
		t.Errorf("deleting the webhook: %d, want 200", status)
	}
	var list struct{ Webhooks []struct{ ID string } }
	lenient.json("GET", "/v1/webhooks", reader, "", &list)
	if len(list.Webhooks) != 0 {
		t.Errorf("webhooks after the delete: %+v", list)
	}
}
