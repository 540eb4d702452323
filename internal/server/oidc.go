package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// OIDC configures the verification of tokens from an OpenID Connect issuer:
// one issuer, or, as Microsoft Entra ID serves the accounts of every
// tenant, an issuer template holding TenantPlaceholder (SPEC section 8).
type OIDC struct {
	// Issuer is the issuer's URL, or its template:
	// https://login.microsoftonline.com/{tenantid}/v2.0, or Entra's v1
	// shape https://sts.windows.net/{tenantid}/.
	Issuer string
	// Audience is what tokens must be for: pal's application ID URI, or
	// https://management.azure.com/ for the tokens Microsoft's own clients
	// get for the link API.
	Audience string
	// HomeTenant is the tenant whose tokens may carry the operator's and
	// the partner readers' roles. Of a single issuer, every token is of
	// its home when this is empty.
	HomeTenant string
	// Tenants, when not empty, are the only tenants whose tokens are
	// accepted, besides the home tenant.
	Tenants []string
	// KeyRefresh is the least time between two fetches of the keys, which
	// an unknown key ID causes (keys rotate): a minute when zero.
	KeyRefresh time.Duration
	// Now is the clock tokens are checked against; time.Now when nil.
	Now func() time.Time
	// Client fetches the discovery document and the keys;
	// http.DefaultClient when nil.
	Client *http.Client
}

// TenantPlaceholder stands for the token's tenant in an issuer template,
// as Entra's multi-tenant discovery document writes it.
const TenantPlaceholder = "{tenantid}"

// tokenVerifier checks an issuer's tokens: their signature against its
// keys, their issuer against the template filled with their own tenant,
// their audience and their times.
type tokenVerifier struct {
	cfg     OIDC
	keys    *keySet
	tenants map[string]bool // lower case; nil: all
}

func newTokenVerifier(ctx context.Context, c OIDC) (*tokenVerifier, error) {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.KeyRefresh <= 0 {
		c.KeyRefresh = time.Minute
	}
	if c.Client == nil {
		c.Client = http.DefaultClient
	}
	if c.multiTenant() && c.HomeTenant == "" {
		return nil, errors.New("an issuer template serves every tenant: name the tenant whose tokens may carry pal.operator and pal.partner_reader with --oidc-home-tenant")
	}
	if len(c.Tenants) > 0 && c.HomeTenant == "" {
		// Every token of a single issuer is of its home, which a list of
		// tenants would make any of them.
		return nil, errors.New("--oidc-tenants names the tenants served: name the one whose tokens may carry pal.operator and pal.partner_reader with --oidc-home-tenant")
	}
	// The discovery document of a template is read with "common" in the
	// tenant's place, and names the template as its issuer.
	base := strings.TrimSuffix(strings.ReplaceAll(c.Issuer, TenantPlaceholder, "common"), "/")
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, c.Client, base+"/.well-known/openid-configuration", &doc); err != nil {
		return nil, fmt.Errorf("OpenID Connect issuer %s: %w", c.Issuer, err)
	}
	if doc.Issuer != c.Issuer {
		return nil, fmt.Errorf("OpenID Connect issuer %s: its discovery document names the issuer %q: give --oidc-issuer exactly as the document writes it", c.Issuer, doc.Issuer)
	}
	if doc.JWKSURI == "" {
		return nil, fmt.Errorf("OpenID Connect issuer %s: its discovery document names no jwks_uri", c.Issuer)
	}
	v := &tokenVerifier{cfg: c, keys: &keySet{url: doc.JWKSURI, client: c.Client, every: c.KeyRefresh, now: c.Now}}
	if len(c.Tenants) > 0 {
		v.tenants = map[string]bool{}
		for _, t := range append(c.Tenants, c.HomeTenant) {
			v.tenants[strings.ToLower(t)] = true
		}
	}
	if err := v.keys.fetch(ctx); err != nil {
		return nil, fmt.Errorf("OpenID Connect issuer %s: %w", c.Issuer, err)
	}
	return v, nil
}

func (c OIDC) multiTenant() bool { return strings.Contains(c.Issuer, TenantPlaceholder) }

// tokenClaims are the claims pal reads of a token.
type tokenClaims struct {
	jwt.Claims
	TenantID string   `json:"tid"`
	ObjectID string   `json:"oid"`
	Roles    []string `json:"roles"`
	// PartnerOrg is the organisation of a partner reader.
	PartnerOrg string `json:"pal_org"`
}

// refusal is why a token is refused, in words, and the tenant it claims:
// the service answers the one and logs both.
type refusal struct {
	tenant, reason string
}

func (r *refusal) Error() string { return r.reason }

// notBeforeLeeway is how far ahead of the service's clock an issuer's
// may be, as other OpenID Connect relying parties allow.
const notBeforeLeeway = 5 * time.Minute

// verify checks a token and returns its claims, or a refusal saying why
// not. Nothing the token says is believed before its signature is
// verified, but its issuer and tenant are read first, to say which of
// them is not allowed.
func (v *tokenVerifier) verify(ctx context.Context, raw string) (tokenClaims, error) {
	var c tokenClaims
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(tok.Headers) != 1 {
		return c, &refusal{reason: "the token is not a JWT signed with RS256"}
	}
	var unverified tokenClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return c, &refusal{reason: "the token's claims do not read"}
	}
	tenant := unverified.TenantID
	refuse := func(format string, args ...any) (tokenClaims, error) {
		return c, &refusal{tenant: tenant, reason: fmt.Sprintf(format, args...)}
	}
	want := v.cfg.Issuer
	if v.cfg.multiTenant() {
		if tenant == "" {
			return refuse("the token has no tid claim")
		}
		want = strings.ReplaceAll(v.cfg.Issuer, TenantPlaceholder, tenant)
	}
	switch iss := unverified.Issuer; {
	case iss == want:
	case v.cfg.multiTenant() && v.fromTemplate(iss):
		return refuse("the token's tenant (tid %s) and its issuer (%s) disagree: a tenant's tokens are issued by %s", tenant, iss, want)
	default:
		return refuse("issuer %q is not allowed: this service accepts tokens of %s", iss, v.cfg.Issuer)
	}
	switch {
	case v.tenants != nil && tenant == "":
		return refuse("the token has no tid claim: this service serves only the tenants of its --oidc-tenants list")
	case v.tenants != nil && !v.tenants[strings.ToLower(tenant)]:
		return refuse("tenant %s is not allowed: this service serves only the tenants of its --oidc-tenants list", tenant)
	}
	kid := tok.Headers[0].KeyID
	key, ok := v.keys.key(ctx, kid)
	if !ok {
		return refuse("the token is signed with an unknown key (kid %q): the issuer publishes no such key", kid)
	}
	if err := tok.Claims(key, &c); err != nil {
		return refuse("the token's signature does not verify against the issuer's key %q", kid)
	}
	now := v.cfg.Now()
	switch {
	case !slices.Contains(c.Audience, v.cfg.Audience):
		return refuse("the token is for the audience %q, and this service is %q", []string(c.Audience), v.cfg.Audience)
	case c.Expiry == nil:
		return refuse("the token has no expiry (exp)")
	case !now.Before(c.Expiry.Time()):
		return refuse("the token expired at %s", c.Expiry.Time().UTC().Format(time.RFC3339))
	case c.NotBefore != nil && now.Add(notBeforeLeeway).Before(c.NotBefore.Time()):
		return refuse("the token is not valid before %s", c.NotBefore.Time().UTC().Format(time.RFC3339))
	}
	return c, nil
}

// fromTemplate reports whether an issuer is the template filled with some
// tenant.
func (v *tokenVerifier) fromTemplate(iss string) bool {
	prefix, suffix, _ := strings.Cut(v.cfg.Issuer, TenantPlaceholder)
	return len(iss) > len(prefix)+len(suffix) && strings.HasPrefix(iss, prefix) && strings.HasSuffix(iss, suffix) &&
		!strings.Contains(iss[len(prefix):len(iss)-len(suffix)], "/")
}

// homeTenant reports whether a token's tenant may grant the operator's and
// the partner readers' roles.
func (v *tokenVerifier) homeTenant(tenant string) bool {
	if v.cfg.HomeTenant == "" {
		return !v.cfg.multiTenant()
	}
	return strings.EqualFold(tenant, v.cfg.HomeTenant)
}

// keySet holds an issuer's signing keys. A key ID it does not hold makes
// it fetch them again — keys rotate — at most once every `every`, so that
// tokens naming made-up keys cannot make the service hammer the issuer;
// and keys held for keyLife are fetched again before they are used, so
// that a key the issuer withdrew is trusted that long at most.
type keySet struct {
	url    string
	client *http.Client
	every  time.Duration
	now    func() time.Time

	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
}

// key returns the key of an ID, fetching the keys again when it is
// unknown and the last fetch is old enough.
func (k *keySet) key(ctx context.Context, kid string) (jose.JSONWebKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.now().Sub(k.fetched) >= keyLife && k.fetchLocked(ctx) != nil {
		// Kept as they are while the issuer cannot be reached, and
		// asked for again a refresh later.
		k.fetched = k.now().Add(k.every - keyLife)
	}
	if found := k.keys.Key(kid); len(found) > 0 {
		return found[0], true
	}
	if k.now().Sub(k.fetched) < k.every {
		return jose.JSONWebKey{}, false
	}
	if err := k.fetchLocked(ctx); err != nil {
		return jose.JSONWebKey{}, false
	}
	if found := k.keys.Key(kid); len(found) > 0 {
		return found[0], true
	}
	return jose.JSONWebKey{}, false
}

// keyLife is how long keys are trusted without asking the issuer again:
// a day, as Microsoft advises its relying parties to refresh its keys.
const keyLife = 24 * time.Hour

func (k *keySet) fetch(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetchLocked(ctx)
}

func (k *keySet) fetchLocked(ctx context.Context) error {
	k.fetched = k.now()
	var keys jose.JSONWebKeySet
	if err := getJSON(ctx, k.client, k.url, &keys); err != nil {
		return fmt.Errorf("its keys: %w", err)
	}
	k.keys = keys
	return nil
}

// getJSON reads a JSON document over HTTP.
func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
