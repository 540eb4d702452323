package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

// entraIssuer is Microsoft Entra ID's multi-tenant issuer on loopback, in
// its shapes: the common discovery documents of v2.0 and v1, whose issuer
// holds {tenantid}, and the common keys, which rotate.
type entraIssuer struct {
	t       *testing.T
	url     string
	mu      sync.Mutex
	keys    map[string]*rsa.PrivateKey
	fetches atomic.Int32
}

func newEntraIssuer(t *testing.T) *entraIssuer {
	e := &entraIssuer{t: t, keys: map[string]*rsa.PrivateKey{}}
	e.addKey("k1")
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	mux.HandleFunc("GET /common/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": e.url + "/{tenantid}/v2.0", "jwks_uri": e.url + "/common/discovery/v2.0/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}, "tenant_region_scope": nil})
	})
	mux.HandleFunc("GET /common/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": e.url + "/{tenantid}/", "jwks_uri": e.url + "/common/discovery/keys"})
	})
	keys := func(w http.ResponseWriter, r *http.Request) {
		e.fetches.Add(1)
		e.mu.Lock()
		defer e.mu.Unlock()
		var set jose.JSONWebKeySet
		for kid, k := range e.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
		}
		json.NewEncoder(w).Encode(set)
	}
	mux.HandleFunc("GET /common/discovery/v2.0/keys", keys)
	mux.HandleFunc("GET /common/discovery/keys", keys)
	return e
}

func (e *entraIssuer) addKey(kid string) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.keys[kid] = k
	e.mu.Unlock()
	return k
}

// sign signs claims with a key under a key ID.
func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *entraIssuer) token(kid string, claims map[string]any) string {
	e.mu.Lock()
	k := e.keys[kid]
	e.mu.Unlock()
	return sign(e.t, k, jose.RS256, kid, claims)
}

// TestEntraTokensOfEveryTenant serves the accounts of several tenants
// with their own tenants' tokens: each is accepted only with the issuer of
// its own tid, roles count by tenant, every classic attack is refused in
// words that name the reason and never echo the token, the operator's log
// names the tenant and the reason, and the keys follow rotation.
func TestEntraTokensOfEveryTenant(t *testing.T) {
	e := newEntraIssuer(t)
	clock := time.Now().UTC().Truncate(time.Second)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	var logs syncBuffer
	s := start(t, sqliteStore(t), server.Config{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OIDC: &server.OIDC{Issuer: e.url + "/{tenantid}/v2.0", Audience: "https://management.azure.com/", HomeTenant: "contoso",
			Tenants: []string{"contoso", "LITWARE"}, Now: now}})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	s.push(operator, `{"type":"account.created","time":"2026-04-01T08:00:00Z","tenant":"contoso","account":"ana","kind":"guest"}
{"type":"account.created","time":"2026-04-01T08:00:00Z","tenant":"litware","account":"ben","kind":"guest"}`)

	claims := func(tenant, account string, more ...any) map[string]any {
		c := map[string]any{"iss": e.url + "/" + tenant + "/v2.0", "aud": "https://management.azure.com/", "tid": tenant, "oid": account,
			"iat": now().Unix(), "nbf": now().Unix(), "exp": now().Add(time.Hour).Unix(), "ver": "2.0"}
		for i := 0; i+1 < len(more); i += 2 {
			c[more[i].(string)] = more[i+1]
		}
		return c
	}
	link := "/providers/Microsoft.ManagementPartner/partners"

	// Accounts of two tenants, each with its own tenant's token, link and
	// see only their own links.
	ana, ben := e.token("k1", claims("contoso", "ana")), e.token("k1", claims("litware", "ben"))
	for _, c := range []struct{ token, partner string }{{ana, "1000011"}, {ben, "2000011"}} {
		if status, body := s.call("PUT", link+"/"+c.partner, c.token, ""); status != 200 {
			t.Fatalf("PUT %s: %d %s", c.partner, status, body)
		}
	}
	for _, c := range []struct{ token, partner, tenant, account string }{{ana, "1000011", "contoso", "ana"}, {ben, "2000011", "litware", "ben"}} {
		status, body := s.call("GET", link, c.token, "")
		var l linkBody
		json.Unmarshal(body, &l)
		if status != 200 || l.Properties.PartnerID != c.partner || l.Properties.TenantID != c.tenant || l.Properties.ObjectID != c.account {
			t.Errorf("%s's own link: %d %s", c.account, status, body)
		}
	}
	if status, _ := s.call("DELETE", link+"/1000011", ben, ""); status != 404 {
		t.Errorf("ben removing ana's partner ID: %d, want 404 (he holds no such link)", status)
	}

	// Roles count by tenant: the operator's and the readers' only from
	// the home tenant; elsewhere the token is an account's.
	reader := func(tenant string) map[string]any {
		return claims(tenant, "r", "roles", []string{"pal.partner_reader"}, "pal_org", "2000001")
	}
	roles := []struct {
		name   string
		token  string
		path   string
		status int
	}{
		{"the home tenant's operator", e.token("k1", claims("contoso", "op", "roles", []string{"pal.operator"})), "/v1/log", 200},
		{"another tenant's operator role", e.token("k1", claims("litware", "op", "roles", []string{"pal.operator"})), "/v1/log", 403},
		{"the home tenant's partner reader", e.token("k1", reader("contoso")), "/v1/reports/pcs?month=2026-03&org=2000001", 200},
		{"another tenant's partner reader role", e.token("k1", reader("litware")), "/v1/reports/pcs?month=2026-03&org=2000001", 403},
		{"a tenant administrator of its own tenant", e.token("k1", claims("litware", "adm", "roles", []string{"pal.tenant_admin"})), "/v1/explain?tenant=litware&resource=timesheets", 200},
		{"a tenant administrator of another tenant", e.token("k1", claims("litware", "adm", "roles", []string{"pal.tenant_admin"})), "/v1/explain?tenant=contoso&resource=expenses", 403},
	}
	for _, c := range roles {
		if status, body := s.call("GET", c.path, c.token, ""); status != c.status {
			t.Errorf("%s: GET %s = %d %s, want %d", c.name, c.path, status, body, c.status)
		}
	}

	// Every attack is refused, saying why.
	foreign, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(&e.keys["k1"].PublicKey)
	valid := e.token("k1", claims("contoso", "ana"))
	parts := strings.Split(valid, ".")
	tampered, _ := json.Marshal(claims("contoso", "someone-else"))
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	attacks := []struct {
		name, token, reason, tenant string
	}{
		{"alg none", none, "not a JWT signed with RS256", ""},
		{"HS256 keyed with the public key", sign(t, pub, jose.HS256, "k1", claims("contoso", "ana")), "not a JWT signed with RS256", ""},
		{"a foreign key under a known ID", sign(t, foreign, jose.RS256, "k1", claims("contoso", "ana")), "signature does not verify", "contoso"},
		{"a tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString(tampered) + "." + parts[2], "signature does not verify", "contoso"},
		{"expired", e.token("k1", claims("contoso", "ana", "exp", now().Add(-time.Minute).Unix())), "expired at " + now().Add(-time.Minute).Format(time.RFC3339), "contoso"},
		{"not yet valid", e.token("k1", claims("contoso", "ana", "nbf", now().Add(time.Hour).Unix())), "not valid before", "contoso"},
		{"another audience", e.token("k1", claims("contoso", "ana", "aud", "api://other")), `audience ["api://other"]`, "contoso"},
		{"an issuer not allowed", e.token("k1", claims("contoso", "ana", "iss", "https://login.example/contoso/v2.0")), `issuer "https://login.example/contoso/v2.0" is not allowed`, "contoso"},
		{"tid and issuer disagree", e.token("k1", claims("contoso", "ana", "iss", e.url+"/litware/v2.0")), "(tid contoso) and its issuer", "contoso"},
		{"no tid", e.token("k1", claims("contoso", "ana", "tid", nil)), "no tid claim", ""},
		{"a tenant not served", e.token("k1", claims("adatum", "zed")), "tenant adatum is not allowed", "adatum"},
		{"an unknown key", sign(t, foreign, jose.RS256, "k9", claims("contoso", "ana")), `unknown key (kid "k9")`, "contoso"},
	}
	for _, a := range attacks {
		status, body := s.call("GET", link, a.token, "")
		var answer struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(body, &answer)
		if status != 401 || answer.Error.Code != "Unauthorized" || !strings.Contains(answer.Error.Message, a.reason) || strings.Contains(string(body), a.token) {
			t.Errorf("%s: %d %s, want 401 saying %q without the token", a.name, status, body, a.reason)
		}
		if a.tenant != "" && !strings.Contains(logs.String(), "tenant="+a.tenant) {
			t.Errorf("%s: the log does not name tenant %s:\n%s", a.name, a.tenant, logs.String())
		}
	}
	if !strings.Contains(logs.String(), `msg="token refused" tenant=adatum reason="tenant adatum is not allowed`) {
		t.Errorf("the service's log does not say which tenant failed and why:\n%s", logs.String())
	}

	// Keys rotate: a new key is fetched on its first token once a minute
	// has passed since the last fetch, and made-up key IDs fetch at most
	// once a minute.
	fetches := e.fetches.Load()
	e.addKey("k2")
	if status, _ := s.call("GET", link, e.token("k2", claims("contoso", "ana")), ""); status != 401 || e.fetches.Load() != fetches {
		t.Errorf("a new key within the minute of the last fetch: %d, %d fetches, want 401 and none", status, e.fetches.Load()-fetches)
	}
	advance(61 * time.Second)
	if status, body := s.call("GET", link, e.token("k2", claims("contoso", "ana")), ""); status != 200 || e.fetches.Load() != fetches+1 {
		t.Errorf("the rotated key after a minute: %d %s, %d fetches, want 200 and one", status, body, e.fetches.Load()-fetches)
	}
	for range 5 {
		s.call("GET", link, sign(t, foreign, jose.RS256, "k-made-up", claims("contoso", "ana")), "")
	}
	if e.fetches.Load() != fetches+1 {
		t.Errorf("made-up key IDs within a minute fetched the keys %d times", e.fetches.Load()-fetches-1)
	}
}

// TestEntraV1Tokens accepts tokens of Entra's v1 shape
// (https://sts.windows.net/{tid}/), as az account get-access-token returns
// them for Azure Resource Manager, when the issuer names that shape; a v2
// token is then of another issuer.
func TestEntraV1Tokens(t *testing.T) {
	e := newEntraIssuer(t)
	s := start(t, sqliteStore(t), server.Config{OIDC: &server.OIDC{Issuer: e.url + "/{tenantid}/", Audience: "https://management.azure.com/", HomeTenant: "contoso"}})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))
	v1 := map[string]any{"iss": e.url + "/litware/", "aud": "https://management.azure.com/", "tid": "litware", "oid": "ben",
		"exp": time.Now().Add(time.Hour).Unix(), "ver": "1.0"}
	if status, body := s.call("GET", "/providers/Microsoft.ManagementPartner/partners", e.token("k1", v1), ""); status != 404 || !strings.Contains(string(body), "holds no link") {
		t.Errorf("a v1 token: %d %s, want 404 (no link yet)", status, body)
	}
	v1["iss"] = e.url + "/litware/v2.0"
	if status, body := s.call("GET", "/providers/Microsoft.ManagementPartner/partners", e.token("k1", v1), ""); status != 401 || !strings.Contains(string(body), "is not allowed") {
		t.Errorf("a v2 token where v1 is served: %d %s", status, body)
	}
}

// TestEntraTemplateNeedsAHomeTenant: an issuer template without a home
// tenant is refused at start, saying what to add.
func TestEntraTemplateNeedsAHomeTenant(t *testing.T) {
	e := newEntraIssuer(t)
	_, err := server.New(t.Context(), server.Config{Store: sqliteStore(t), OIDC: &server.OIDC{Issuer: e.url + "/{tenantid}/v2.0", Audience: "api://pal"}})
	if err == nil || !strings.Contains(err.Error(), "--oidc-home-tenant") {
		t.Errorf("no home tenant: %v", err)
	}
}

// TestWithdrawnKeyTrustedADayAtMost: the issuer withdraws a signing key
// (rotated away, or compromised); a token signed with it is refused once
// the keys held are a day old, though no token named a new key meanwhile.
func TestWithdrawnKeyTrustedADayAtMost(t *testing.T) {
	e := newEntraIssuer(t)
	clock := time.Now().UTC().Truncate(time.Second)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	s := start(t, sqliteStore(t), server.Config{OIDC: &server.OIDC{Issuer: e.url + "/{tenantid}/v2.0", Audience: "api://pal", HomeTenant: "contoso", Now: now}})
	// Signed with k1 before it is withdrawn, valid two days.
	old := e.token("k1", map[string]any{"iss": e.url + "/litware/v2.0", "aud": "api://pal", "tid": "litware", "oid": "ben",
		"nbf": now().Unix(), "exp": now().Add(48 * time.Hour).Unix()})
	if status, body := s.call("GET", "/v1/me", old, ""); status != 200 {
		t.Fatalf("a token of the key held: %d %s", status, body)
	}
	e.addKey("k2")
	e.mu.Lock()
	delete(e.keys, "k1")
	e.mu.Unlock()
	advance(23 * time.Hour)
	if status, _ := s.call("GET", "/v1/me", old, ""); status != 200 {
		t.Errorf("a token of the withdrawn key within the day: %d, want it still trusted", status)
	}
	advance(2 * time.Hour)
	if status, body := s.call("GET", "/v1/me", old, ""); status != 401 || !strings.Contains(string(body), "unknown key") {
		t.Errorf("a token of the withdrawn key a day later: %d %s, want 401", status, body)
	}
}

// syncBuffer is a buffer the service's logger and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
