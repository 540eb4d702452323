package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// Principal is who a request comes from and what it may see.
type Principal struct {
	Role    string
	Tenant  string
	Account string
	Org     string
}

// tokenPrefix starts every token pal issues, so that it is told from a JWT.
const tokenPrefix = "pal_"

// HashToken returns the hash under which a token pal issued is stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// DefaultTokenTTL is how long a token pal issues lasts unless told.
const DefaultTokenTTL = 90 * 24 * time.Hour

// IssueToken makes a new token granting t, stores its hash, and returns
// the token and what was stored of it: its identifier, which is not
// secret, and its expiry (Created plus DefaultTokenTTL unless t.Expires is
// set). It fails on a grant that does not fit its role.
func IssueToken(ctx context.Context, st store.Store, t store.Token) (string, store.Token, error) {
	switch t.Role {
	case store.RoleAccount:
		if t.Tenant == "" || t.Account == "" {
			return "", t, errors.New("an account token needs --tenant and --account")
		}
	case store.RoleTenantAdmin:
		if t.Tenant == "" {
			return "", t, errors.New("a tenant-admin token needs --tenant")
		}
	case store.RolePartnerReader:
		if t.Org == "" {
			return "", t, errors.New("a partner-reader token needs --org, the organisation's global partner ID")
		}
	case store.RoleOperator:
	default:
		return "", t, fmt.Errorf("unknown role %q: use account, tenant-admin, partner-reader or operator", t.Role)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", t, err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	t.ID = "tok_" + randomHex(8)
	if t.Created.IsZero() {
		t.Created = time.Now().UTC()
	}
	if t.Expires.IsZero() {
		t.Expires = t.Created.Add(DefaultTokenTTL)
	}
	if !t.Expires.After(t.Created) {
		return "", t, errors.New("a token must last some time: give --ttl a positive duration, such as 720h")
	}
	if err := st.AddToken(ctx, HashToken(token), t); err != nil {
		return "", t, err
	}
	return token, t, nil
}

// noteUse keeps when a token was last used, to the minute: one write a
// minute a token at most.
func (s *Server) noteUse(ctx context.Context, hash string, t store.Token, now time.Time) {
	if now.Sub(t.LastUsed) < time.Minute {
		return
	}
	if err := s.store.TokenUsed(ctx, hash, now.Truncate(time.Minute)); err != nil {
		s.log.Warn("noting a token's use failed", "token", t.ID, "err", err)
	}
}

// Role names an issuer's tokens carry in their roles claim, as Microsoft
// Entra ID app roles do. A token with none of them is an account's.
const (
	oidcRoleOperator      = "pal.operator"
	oidcRoleTenantAdmin   = "pal.tenant_admin"
	oidcRolePartnerReader = "pal.partner_reader"
)

// authenticate returns the principal of a request's bearer token.
func (s *Server) authenticate(r *http.Request) (Principal, error) {
	if s.isProcess(r) {
		// Another process sharing the tenants, asking what only an
		// owner knows: it reads as the operator.
		return Principal{Role: store.RoleOperator}, nil
	}
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return Principal{}, errorf(codeUnauthorized, "send a bearer token in the Authorization header")
	}
	if strings.HasPrefix(token, tokenPrefix) {
		hash := HashToken(token)
		t, err := s.store.Token(r.Context(), hash)
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, errorf(codeUnauthorized, "the token is not known to this service")
		}
		if err != nil {
			return Principal{}, err
		}
		now := s.cfg.Clock()
		if t.Revoked {
			return Principal{}, errorf(codeUnauthorized, "token %s was revoked: ask the operator for a new one", t.ID)
		}
		if !now.Before(t.Expires) {
			return Principal{}, errorf(codeUnauthorized, "token %s expired at %s: ask the operator for a new one", t.ID, t.Expires.Format(time.RFC3339))
		}
		s.noteUse(r.Context(), hash, t, now)
		return Principal{Role: t.Role, Tenant: t.Tenant, Account: t.Account, Org: t.Org}, nil
	}
	if s.tokens == nil {
		return Principal{}, errorf(codeUnauthorized, "the token is not one this service issued, and no OpenID Connect issuer is configured")
	}
	c, err := s.tokens.verify(r.Context(), token)
	var rf *refusal
	if errors.As(err, &rf) {
		// The operator sees which tenants fail and why; the caller, why.
		s.log.Info("token refused", "tenant", rf.tenant, "reason", rf.reason)
		return Principal{}, errorf(codeUnauthorized, "%s", rf.reason)
	}
	if err != nil {
		return Principal{}, err
	}
	// The operator's and the partner readers' roles count only in tokens
	// of the home tenant: a customer's tenant, whose administrators assign
	// its own app roles, could otherwise make itself either.
	home := s.tokens.homeTenant(c.TenantID)
	switch {
	case home && slices.Contains(c.Roles, oidcRoleOperator):
		return Principal{Role: store.RoleOperator}, nil
	case home && slices.Contains(c.Roles, oidcRolePartnerReader) && c.PartnerOrg != "":
		return Principal{Role: store.RolePartnerReader, Org: c.PartnerOrg}, nil
	case c.TenantID == "":
		return Principal{}, errorf(codeUnauthorized, "the token has no tid claim")
	case slices.Contains(c.Roles, oidcRoleTenantAdmin):
		return Principal{Role: store.RoleTenantAdmin, Tenant: c.TenantID}, nil
	case c.ObjectID == "":
		return Principal{}, errorf(codeUnauthorized, "the token has no oid claim")
	}
	return Principal{Role: store.RoleAccount, Tenant: c.TenantID, Account: c.ObjectID}, nil
}

// need refuses a principal whose role is not among roles.
func need(p Principal, roles ...string) error {
	if slices.Contains(roles, p.Role) {
		return nil
	}
	return errorf(codeForbidden, "a %s may not do this", p.Role)
}

// getMe says who the caller is, and the time of the service's state: the
// pages show what is theirs, as of then.
func (s *Server) getMe(w http.ResponseWriter, r *http.Request, p Principal) error {
	var now time.Time
	name := ""
	err := s.read(r.Context(), func(st *fold.State) error {
		now = st.Engine().Now()
		if o, ok := st.Engine().Org(p.Org); ok {
			name = o.Name
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Me{Role: p.Role, Tenant: p.Tenant, Account: p.Account, Org: p.Org, OrgName: name, Now: now,
		ScoreMax: s.cfg.Metrics.MaxPoints()})
	return nil
}
