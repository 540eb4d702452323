package cli

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestEntraDoc holds docs/entra.md to the code: each pal serve command it
// shows starts, with its sign-in host served on loopback in Entra's shapes
// (v2.0 and v1 discovery with {tenantid}, the common keys); and each app
// role of its manifest, in a token of the home tenant, gives the powers
// its table says and, in a customer tenant's token, none of them.
func TestEntraDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/entra.md")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	defer hs.Close()
	// Entra's v2.0 and v1 discovery documents, read with "common".
	for path, issuer := range map[string]string{"/common/v2.0": "/{tenantid}/v2.0", "/common": "/{tenantid}/"} {
		mux.HandleFunc("GET "+path+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]any{"issuer": hs.URL + issuer, "jwks_uri": hs.URL + "/common/discovery/keys"})
		})
	}
	mux.HandleFunc("GET /common/discovery/keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})

	commands := regexp.MustCompile("(?s)```sh\n(pal serve .*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(commands) != 3 {
		t.Fatalf("docs/entra.md shows %d pal serve commands, want the public cloud's two and a sovereign cloud's", len(commands))
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tenants.txt"), []byte("# served\ncontoso\n72f988bf-86f1-41af-91ab-2d7cd011db47\n"), 0o644)
	for i, c := range commands {
		args := shellWords(strings.ReplaceAll(c[1], "\\\n", " "))[2:]
		var home, audience, issuer string
		for j := 0; j+1 < len(args); j++ {
			switch args[j] {
			case "--db":
				args[j+1] = filepath.Join(dir, "pal.db")
			case "--oidc-issuer":
				// The documented sign-in host, served here.
				args[j+1] = regexp.MustCompile(`^https://[^/]+`).ReplaceAllString(args[j+1], hs.URL)
				issuer = args[j+1]
			case "--oidc-tenants":
				args[j+1] = filepath.Join(dir, args[j+1])
			case "--oidc-home-tenant":
				home = args[j+1]
			case "--oidc-audience":
				audience = args[j+1]
			}
		}
		args = append(args, "--addr", "127.0.0.1:0", "--demo")
		url, stop := serveInBackground(t, args)
		tenant := func(tid string, roles ...string) string {
			claims := map[string]any{"iss": strings.ReplaceAll(issuer, "{tenantid}", tid), "aud": audience, "tid": tid, "oid": "someone",
				"exp": time.Now().Add(time.Hour).Unix(), "roles": roles, "pal_org": "1000001"}
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
			tok, _ := jwt.Signed(signer).Claims(claims).Serialize()
			return tok
		}
		get := func(path, token string) int {
			req, _ := http.NewRequest("GET", url+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		roles := appRoles(t, string(doc))
		for _, r := range []struct{ role, path string }{{"pal.operator", "/v1/log"}, {"pal.partner_reader", "/v1/reports/pcs?month=2026-03&org=1000001"}} {
			if !slices.Contains(roles, r.role) {
				t.Fatalf("the manifest of docs/entra.md defines no %s: %v", r.role, roles)
			}
			if got := get(r.path, tenant(home, r.role)); got != 200 {
				t.Errorf("command %d: %s of the home tenant: GET %s = %d", i+1, r.role, r.path, got)
			}
			if got := get(r.path, tenant("contoso", r.role)); got != 403 {
				t.Errorf("command %d: %s of a customer tenant: GET %s = %d, want 403", i+1, r.role, r.path, got)
			}
		}
		if got := get("/v1/attribution?tenant=contoso", tenant("contoso", "pal.tenant_admin")); got != 200 {
			t.Errorf("command %d: pal.tenant_admin of its own tenant: %d", i+1, got)
		}
		stop()
	}
}

// appRoles returns the values of the app roles of the manifest in a doc.
func appRoles(t *testing.T, doc string) []string {
	block := regexp.MustCompile("(?s)```json\n(.*?)```").FindStringSubmatch(doc)
	var roles []struct{ Value string }
	if block == nil || json.Unmarshal([]byte(block[1]), &roles) != nil {
		t.Fatal("docs/entra.md: no manifest of app roles")
	}
	var out []string
	for _, r := range roles {
		out = append(out, r.Value)
	}
	return out
}

// serveInBackground runs pal serve until stop, and returns its URL.
func serveInBackground(t *testing.T, args []string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errOut strings.Builder
	go func() {
		done <- Run(ctx, &Env{Stdin: strings.NewReader(""), Stdout: pw, Stderr: &errOut}, append([]string{"serve"}, args...))
		pw.Close()
	}()
	buf := make([]byte, 4096)
	n, _ := pr.Read(buf)
	url := regexp.MustCompile(`https?://[0-9.:]+`).FindString(string(buf[:n]))
	if url == "" {
		cancel()
		t.Fatalf("pal serve %s: %s %s", strings.Join(args, " "), buf[:n], errOut.String())
	}
	go io.Copy(io.Discard, pr)
	return url, func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("pal serve %s exited %d: %s", strings.Join(args, " "), code, errOut.String())
		}
	}
}

// shellWords splits a command line as a shell would, for the commands of
// the docs: words, and single-quoted words.
func shellWords(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`'([^']*)'|(\S+)`).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1]+m[2])
	}
	return out
}
