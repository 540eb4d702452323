package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

// SignatureHeader carries the HMAC-SHA256 of a webhook's body, keyed with
// the webhook's secret, as "sha256=" and the hex digest.
const SignatureHeader = "X-Pal-Signature"

// DeliveryHeader names a delivery: the webhook, and the change's place in
// the feed. A change is posted once; a receiver may still use it to be sure.
const DeliveryHeader = "X-Pal-Delivery"

// Sign returns the signature header value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// postWebhook registers a URL to which each credit change of the caller's
// organisation is posted, from now on. The answer carries the secret the
// posts are signed with; it is shown once.
func (s *Server) postWebhook(w http.ResponseWriter, r *http.Request, p Principal) error {
	var req struct {
		URL string `json:"url"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		return errorf(codeBadRequest, `send {"url": "https://…"}: %v`, err)
	}
	if err := s.checkWebhookURL(r.Context(), req.URL); err != nil {
		return err
	}
	// Changes up to now are not posted: the cursor starts past them.
	last, err := s.feedEnd(r.Context())
	if err != nil {
		return err
	}
	start := store.Cursor{Seq: last, K: math.MaxInt64}
	owner := p.webhookOwner()
	hook := store.Webhook{ID: randomHex(8), Org: owner.Org, Tenant: owner.Tenant, URL: req.URL, Secret: randomHex(24), Created: s.cfg.Clock().UTC(), Cursor: start}
	if err := s.store.AddWebhook(r.Context(), hook); err != nil {
		return err
	}
	answer := map[string]any{"id": hook.ID, "url": hook.URL, "secret": hook.Secret, "created": hook.Created}
	if hook.Org != "" {
		answer["org"] = hook.Org
	} else {
		answer["tenant"] = hook.Tenant
	}
	writeJSON(w, http.StatusOK, answer)
	return nil
}

// maxAnswer bounds what is read of a receiver's answer.
const maxAnswer = 64 << 10

// deleteWebhook removes one of the caller's organisation's webhooks.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, p Principal) error {
	ok, err := s.store.DeleteWebhook(r.Context(), p.webhookOwner(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !ok {
		return errorf(codeNotFound, "%s has no webhook %s", p.webhookOwnerName(), r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "deleted": true})
	return nil
}

// rotateWebhookSecret gives one of the caller's organisation's webhooks a
// new secret, shown once; posts are signed with it from then on.
func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, p Principal) error {
	secret := randomHex(24)
	ok, err := s.store.SetWebhookSecret(r.Context(), p.webhookOwner(), r.PathValue("id"), secret)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(codeNotFound, "%s has no webhook %s", p.webhookOwnerName(), r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "secret": secret})
	return nil
}

// getWebhooks lists the webhooks of the caller's organisation.
func (s *Server) getWebhooks(w http.ResponseWriter, r *http.Request, p Principal) error {
	hooks, err := s.store.Webhooks(r.Context(), p.webhookOwner())
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, h := range hooks {
		out = append(out, map[string]any{"id": h.ID, "url": h.URL, "created": h.Created})
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
	return nil
}

// delivery is a change to post, at its place in the feed.
type delivery struct {
	at   store.Cursor
	body json.RawMessage
}

// pendingBatch is how many changes one round of a webhook's dispatch reads.
const pendingBatch = 100

// pendingFor reads the changes after cursor of a webhook's owner, in feed
// order, from the store: only that organisation's, or that tenant's.
func (s *Server) pendingFor(ctx context.Context, h store.Webhook, cursor store.Cursor) ([]delivery, error) {
	end, err := s.feedEnd(ctx)
	if err != nil {
		return nil, err
	}
	var out []delivery
	err = s.store.Changes(ctx, store.ChangeFilter{Org: h.Org, Tenant: h.Tenant}, cursor, pendingBatch, func(c store.FiledChange) error {
		if c.At.Seq > end {
			return store.Stop
		}
		out = append(out, delivery{c.At, c.Body})
		return nil
	})
	if errors.Is(err, store.Stop) {
		err = nil
	}
	if err != nil || h.Org == "" {
		return out, err
	}
	// An organisation's webhook carries what its partner reader would
	// read of the changes: other partners' accounts are not named.
	bodies := make([]json.RawMessage, len(out))
	for i, d := range out {
		bodies[i] = d.body
	}
	if bodies, err = s.shownChanges(ctx, Principal{Role: store.RolePartnerReader, Org: h.Org}, bodies); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].body = bodies[i]
	}
	return out, nil
}

// Dispatch posts the credit changes to the webhooks until ctx ends, looking
// for new ones every interval. Several processes may dispatch at once: one
// at a time holds a webhook's lease and posts its organisation's changes in
// feed order, each claimed in the store once its receiver took it, so that
// every change is posted at least once, across restarts and replicas, and
// every post of a change carries the same delivery id. A post that fails is
// retried with back-off, then again after a rest.
func (s *Server) Dispatch(ctx context.Context, every time.Duration) {
	client := s.webhookClient()
	resting := map[string]time.Time{}
	owner := randomHex(8)
	for {
		if err := s.dispatchOnce(ctx, client, owner, resting); err != nil && ctx.Err() == nil {
			s.log.Error("webhook dispatch failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// leaseTime is how long a dispatcher holds a webhook without renewing: it
// renews it every round, and when it dies another process takes over once
// the lease ends.
const leaseTime = 10 * time.Second

func (s *Server) dispatchOnce(ctx context.Context, client *http.Client, owner string, resting map[string]time.Time) error {
	hooks, err := s.store.Webhooks(ctx, store.ChangeFilter{})
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if time.Now().Before(resting[h.ID]) {
			continue
		}
		pending, err := s.pendingFor(ctx, h, h.Cursor)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			continue
		}
		now := time.Now()
		if held, err := s.store.LeaseWebhook(ctx, h.ID, owner, now, now.Add(leaseTime)); err != nil || !held {
			// Another process delivers to this webhook.
			continue
		}
		cursor := h.Cursor
		for _, d := range pending {
			// Posted first, claimed after: a process that dies in between
			// leaves the change to be posted again, with the same delivery
			// id, by whoever holds the lease next. At least once.
			if err := s.post(ctx, client, h, d); err != nil {
				s.log.Warn("webhook post failed; it will be tried again", "webhook", h.ID, "url", h.URL, "err", err)
				resting[h.ID] = time.Now().Add(30 * time.Second)
				break
			}
			ok, err := s.store.ClaimDelivery(ctx, h.ID, cursor, d.at)
			if err != nil {
				return err
			}
			if !ok {
				// Another process moved the cursor: it posts the rest.
				break
			}
			cursor = d.at
		}
	}
	return nil
}

// post posts one change, retrying with back-off.
func (s *Server) post(ctx context.Context, client *http.Client, h store.Webhook, d delivery) error {
	var c fold.Change
	if err := json.Unmarshal(d.body, &c); err != nil {
		return fmt.Errorf("change %d.%d: %w", d.at.Seq, d.at.K, err)
	}
	body, err := json.Marshal(struct {
		Webhook string `json:"webhook"`
		K       int    `json:"k"`
		fold.Change
	}{h.ID, d.at.K, c})
	if err != nil {
		return err
	}
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err = s.postOnce(ctx, client, h, d, body)
		if err == nil || attempt == 6 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (s *Server) postOnce(ctx context.Context, client *http.Client, h store.Webhook, d delivery, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(h.Secret, body))
	req.Header.Set(DeliveryHeader, fmt.Sprintf("%s:%d:%d", h.ID, d.at.Seq, d.at.K))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	// What a receiver answers is read no further than this, and dropped.
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}
