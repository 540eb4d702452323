package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

// issuer is an OpenID Connect issuer on loopback: discovery, JWKS, and a
// signer of tokens.
type issuer struct {
	url    string
	key    *rsa.PrivateKey
	signer jose.Signer
}

func newIssuer(t *testing.T) *issuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{key: key}
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	iss.url = hs.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": iss.url, "jwks_uri": iss.url + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	iss.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func (iss *issuer) token(t *testing.T, signer jose.Signer, claims map[string]any) string {
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestOpenIDConnectTokens(t *testing.T) {
	iss := newIssuer(t)
	s := start(t, sqliteStore(t), server.Config{OIDC: &server.OIDC{Issuer: iss.url, Audience: "api://pal"}})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, demoLog(t))

	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	forger, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: otherKey, KeyID: "k1"}}, nil)
	now := time.Now()
	base := func() map[string]any {
		return map[string]any{"iss": iss.url, "aud": "api://pal", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
			"tid": "contoso", "oid": "alice@fabrikam.example"}
	}
	with := func(k string, v any) map[string]any { c := base(); c[k] = v; return c }
	link := "/providers/Microsoft.ManagementPartner/partners"
	tests := []struct {
		name   string
		token  string
		path   string
		status int
	}{
		{"an account's own link", iss.token(t, iss.signer, base()), link, 200},
		{"an account may not read reports", iss.token(t, iss.signer, base()), "/v1/reports/monthly?month=2026-03", 403},
		{"wrong audience", iss.token(t, iss.signer, with("aud", "api://other")), link, 401},
		{"wrong issuer", iss.token(t, iss.signer, with("iss", "https://elsewhere.example")), link, 401},
		{"expired", iss.token(t, iss.signer, with("exp", now.Add(-time.Minute).Unix())), link, 401},
		{"signed by another key", iss.token(t, forger, base()), link, 401},
		{"no oid", iss.token(t, iss.signer, with("oid", nil)), link, 401},
		{"tenant administrator role", iss.token(t, iss.signer, with("roles", []string{"pal.tenant_admin"})), "/v1/explain?tenant=contoso&resource=expenses", 200},
		{"tenant administrator of another tenant", iss.token(t, iss.signer, with("roles", []string{"pal.tenant_admin"})), "/v1/explain?tenant=litware&resource=timesheets", 403},
		{"operator role", iss.token(t, iss.signer, with("roles", []string{"pal.operator"})), "/v1/log", 200},
		{"partner reader role", iss.token(t, iss.signer, func() map[string]any {
			c := with("roles", []string{"pal.partner_reader"})
			c["pal_org"] = "2000001"
			return c
		}()), "/v1/reports/pcs?month=2026-03&org=2000001", 200},
	}
	for _, tt := range tests {
		if status, body := s.call("GET", tt.path, tt.token, ""); status != tt.status {
			t.Errorf("%s: GET %s = %d %s, want %d", tt.name, tt.path, status, body, tt.status)
		}
	}
}

// TestTenantsOfOneIssuer: a single issuer's tokens are all of its home,
// unless a list names the tenants served: then the home is named too, or
// any listed tenant's token would be the operator's; and a token that
// says no tenant is refused, not served as the home's.
func TestTenantsOfOneIssuer(t *testing.T) {
	iss := newIssuer(t)
	_, err := server.New(t.Context(), server.Config{Store: sqliteStore(t), OIDC: &server.OIDC{Issuer: iss.url, Audience: "api://pal", Tenants: []string{"contoso", "litware"}}})
	if err == nil || !strings.Contains(err.Error(), "--oidc-home-tenant") {
		t.Errorf("a list of tenants with no home: %v", err)
	}
	s := start(t, sqliteStore(t), server.Config{OIDC: &server.OIDC{Issuer: iss.url, Audience: "api://pal", HomeTenant: "contoso", Tenants: []string{"litware"}}})
	now := time.Now()
	claims := map[string]any{"iss": iss.url, "aud": "api://pal", "exp": now.Add(time.Hour).Unix(), "oid": "x", "roles": []string{"pal.operator"}}
	if status, body := s.call("GET", "/v1/me", iss.token(t, iss.signer, claims), ""); status != 401 || !strings.Contains(string(body), "no tid claim") {
		t.Errorf("a token of no tenant: %d %s, want 401", status, body)
	}
	claims["tid"] = "litware"
	var me struct{ Role string }
	if status := s.json("GET", "/v1/me", iss.token(t, iss.signer, claims), "", &me); status != 200 || me.Role != store.RoleAccount {
		t.Errorf("a listed tenant's token asking to be the operator: %d %+v, want an account", status, me)
	}
}
