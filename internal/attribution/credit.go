package attribution

import (
	"cmp"
	"slices"
	"time"

	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
)

// Roles of a candidate on a resource.
const (
	RoleOwner       = "owner"
	RoleCoowner     = "coowner"
	RoleContributor = "contributor"
)

// Credit is who a resource is credited to at an instant. A resource that is
// not attributed has a Reason and no partner.
type Credit struct {
	Attributed bool
	Partner    string
	Org        string
	Account    string
	// Since is the winner's association time.
	Since time.Time
	// Shares is set under the split policy: one share per location ID.
	Shares []credit.Share
	Reason string
}

// sameHolder reports whether two credits name the same holders, whatever
// their association times: a change of holder starts a new interval.
func (c Credit) sameHolder(d Credit) bool {
	return c.Attributed == d.Attributed && c.Partner == d.Partner && c.Org == d.Org &&
		c.Account == d.Account && c.Reason == d.Reason && slices.Equal(c.Shares, d.Shares)
}

// Candidate is an attributable account of a resource, with what decides
// whether it can be credited.
type Candidate struct {
	Account string `json:"account"`
	Role    string `json:"role"`
	Partner string `json:"partner"`
	// Org is the organisation that holds Partner at the instant, empty
	// when none does.
	Org string `json:"org"`
	// Association is the time the policy ranks candidates by: under latest
	// and split the latest of role start, link time and activity; under first
	// the later of role start and link time.
	Association time.Time `json:"association"`
	Eligible    bool      `json:"eligible"`
	Reason      string    `json:"reason"`
}

// candidates lists the attributable accounts of r with their eligibility,
// the owner first, then by account.
func (e *Engine) candidates(t *tenant, r *resource) []Candidate {
	var cands []Candidate
	add := func(acct, role string, since time.Time) {
		a := t.accounts[acct]
		c := Candidate{Account: acct, Role: role, Partner: a.link}
		formed := since
		if a.link != "" && a.linkedAt.After(formed) {
			formed = a.linkedAt
		}
		c.Association = formed
		if e.opts.Policy != First {
			if at, ok := r.activity[acct]; ok && at.After(formed) {
				c.Association = at
			}
		}
		org, listed := e.dir.Owner(a.link)
		c.Org = org
		switch {
		case a.disabled:
			c.Reason = credit.AccountDisabled
		case a.link == "":
			c.Reason = credit.NoLink
		case !listed:
			c.Reason = credit.PartnerIDNotEligible
		default:
			c.Eligible = true
		}
		cands = append(cands, c)
	}
	if r.spec.ByActivity {
		for acct, since := range r.active {
			role := RoleContributor
			if acct == r.owner {
				// The owner's role began when it became owner, if it was
				// active before.
				role = RoleOwner
				if r.ownerSince.After(since) {
					since = r.ownerSince
				}
			}
			add(acct, role, since)
		}
	} else {
		if r.owner != "" {
			add(r.owner, RoleOwner, r.ownerSince)
		}
		if r.spec.CoOwnersCredited {
			for acct, since := range r.coowners {
				add(acct, RoleCoowner, since)
			}
		}
	}
	slices.SortFunc(cands, func(a, b Candidate) int {
		return cmp.Or(ownerFirst(a, b), cmp.Compare(a.Account, b.Account))
	})
	return cands
}

func ownerFirst(a, b Candidate) int {
	switch {
	case a.Role == RoleOwner && b.Role != RoleOwner:
		return -1
	case b.Role == RoleOwner && a.Role != RoleOwner:
		return 1
	}
	return 0
}

// winner returns the index in cands of the candidate the policy credits, or
// -1 when none is eligible. Ties go to the owner, then to the smallest
// account.
func (e *Engine) winner(cands []Candidate) int {
	best := -1
	for i, c := range cands {
		if !c.Eligible {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := cands[best]
		order := c.Association.Compare(b.Association)
		if e.opts.Policy == First {
			order = -order
		}
		if order == 0 {
			order = -cmp.Or(ownerFirst(c, b), cmp.Compare(c.Account, b.Account))
		}
		if order > 0 {
			best = i
		}
	}
	return best
}

// decide computes the credit of r from its candidates, ignoring whether its
// environment is counted.
func (e *Engine) decide(cands []Candidate) Credit {
	w := e.winner(cands)
	if w < 0 {
		return Credit{Reason: credit.NoEligibleAccount}
	}
	c := cands[w]
	won := Credit{Attributed: true, Partner: c.Partner, Org: c.Org, Account: c.Account, Since: c.Association}
	if e.opts.Policy == Split {
		for _, c := range cands {
			if c.Eligible && !slices.ContainsFunc(won.Shares, func(s credit.Share) bool { return s.Partner == c.Partner }) {
				won.Shares = append(won.Shares, credit.Share{Partner: c.Partner, Org: c.Org})
			}
		}
		slices.SortFunc(won.Shares, func(a, b credit.Share) int { return cmp.Compare(a.Partner, b.Partner) })
		for i := range won.Shares {
			won.Shares[i].Share = 1 / float64(len(won.Shares))
		}
	}
	return won
}

// counted reports whether r's environment is of a counted type.
func (e *Engine) isCounted(t *tenant, r *resource) bool {
	return e.counted[t.envs[r.env].envType]
}

// credit computes the credit of r at the current state.
func (e *Engine) credit(t *tenant, r *resource) Credit {
	if !e.isCounted(t, r) {
		return Credit{Reason: credit.EnvironmentNotCounted}
	}
	return e.decide(e.candidates(t, r))
}

// refresh recomputes the credit of resource id of tenant t after a change at
// time at, and records a change of holder in the resource's history.
func (e *Engine) refresh(at time.Time, t *tenant, id string) {
	r := t.resources[id]
	next := e.credit(t, r)
	h := t.history[id]
	if n := len(h); n > 0 && h[n-1].To.IsZero() && h[n-1].Credit.sameHolder(next) {
		h[n-1].renew(at, next.Since)
		r.credit = next
		return
	}
	worked := e.workedBefore(r, next, at)
	byRole := e.gainedByRole(next, worked)
	e.noteChange(t.id, id, at, r.credit, next, worked, byRole)
	r.credit = next
	t.closeHistory(id, at)
	h = t.history[id]
	// A holder that lasted no time at all is dropped, and the interval before
	// it resumes if it had the same holder and was the same resource's, not
	// that of one deleted at that instant.
	if n := len(h); n > 0 && h[n-1].From.Equal(at) {
		t.transients[id] = append(t.transients[id], Transient{At: at, Kind: h[n-1].Kind, Credit: h[n-1].Credit})
		h = h[:n-1]
		if n := len(h); n > 0 && h[n-1].To.Equal(at) && !h[n-1].From.Before(r.born) && h[n-1].Credit.sameHolder(next) {
			h[n-1].To = time.Time{}
			h[n-1].renew(at, next.Since)
			t.history[id] = h
			return
		}
	}
	t.history[id] = append(h, Interval{Kind: r.kind, Environment: r.env, From: at, Credit: next, ActivityBefore: worked, RoleOnly: byRole})
}

// gainedByRole reports whether a credit is gained by a role alone: given to
// an account with no activity before (workedBefore), by an event that made
// it a co-owner or owner of a resource that already existed, or that made
// such an account count (its link, its enabling).
func (e *Engine) gainedByRole(c Credit, worked bool) bool {
	if !c.Attributed || worked || e.cause == nil {
		return false
	}
	switch e.cause.Type {
	case event.ResourceCoownerAdd, event.ResourceOwnerChange, event.PalLinked, event.AccountEnabled:
		return true
	}
	return false
}

// workedBefore reports whether the account a credit names had activity on
// the resource (an edit, a publish, a use, or a re-import by its owner) in
// the activity window before instant at, that instant included: whether
// a partner that gains the credit had worked on the resource, or gained it
// by a role alone.
func (e *Engine) workedBefore(r *resource, c Credit, at time.Time) bool {
	if !c.Attributed {
		return false
	}
	last, ok := r.activity[c.Account]
	return ok && !last.After(at) && !last.Before(at.Add(-e.activityWindow()))
}

// activityWindow is how far back workedBefore looks.
func (e *Engine) activityWindow() time.Duration {
	if e.opts.ActivityWindow > 0 {
		return e.opts.ActivityWindow
	}
	return DefaultActivityWindow
}

// DefaultActivityWindow is the activity window of SPEC-less configuration:
// 90 days.
const DefaultActivityWindow = 90 * 24 * time.Hour

// renew notes that from instant at the holder's association time is since.
func (iv *Interval) renew(at, since time.Time) {
	if iv.creditAt(at).Since.Equal(since) {
		return
	}
	switch n := len(iv.Renewals); {
	case at.Equal(iv.From):
		iv.Credit.Since = since
	case n > 0 && iv.Renewals[n-1].At.Equal(at):
		iv.Renewals[n-1].Since = since
	default:
		iv.Renewals = append(iv.Renewals, Renewal{At: at, Since: since})
	}
}

// creditAt is the interval's credit at an instant within it: its holder,
// with the association time it had then.
func (iv *Interval) creditAt(at time.Time) Credit {
	c := iv.Credit
	for _, r := range iv.Renewals {
		if r.At.After(at) {
			break
		}
		c.Since = r.Since
	}
	return c
}

// closeHistory ends the open interval of a resource, if any, at time at.
func (t *tenant) closeHistory(id string, at time.Time) {
	h := t.history[id]
	if n := len(h); n > 0 && h[n-1].To.IsZero() {
		h[n-1].To = at
	}
}

// Holder is who a resource is credited to, for a change: empty when no one.
type Holder struct {
	Partner string         `json:"partner"`
	Org     string         `json:"org"`
	Account string         `json:"account"`
	Shares  []credit.Share `json:"shares,omitempty"`
	Reason  string         `json:"reason,omitempty"`
}

func holderOf(c Credit) Holder {
	if !c.Attributed {
		return Holder{Reason: c.Reason}
	}
	return Holder{Partner: c.Partner, Org: c.Org, Account: c.Account, Shares: c.Shares}
}

// Change is a change of which partner is credited for a resource: credit
// gained, lost or moved, and the event that caused it.
type Change struct {
	Tenant   string    `json:"tenant"`
	Resource string    `json:"resource"`
	Time     time.Time `json:"time"`
	From     Holder    `json:"from"`
	To       Holder    `json:"to"`
	Cause    string    `json:"cause"`
	CauseID  string    `json:"cause_id,omitempty"`
	// Correction marks a change filed again because a late event changed
	// the past (see Corrections).
	Correction bool `json:"correction,omitempty"`
	// Dropped lists, for the first correction of a resource's refold, the
	// organisations its old history credited from the correction's instant
	// on: the feed files it under them too (Orgs).
	Dropped []string `json:"-"`
	// ActivityBefore tells whether the account that gains the credit had
	// activity on the resource in the activity window before: false when
	// a role alone (a co-owner added, an owner changed) gained it.
	ActivityBefore bool `json:"activity_before"`
	// RoleOnly marks a credit gained by a role alone (gainedByRole): a
	// co-owner added, an owner changed, with no edit or publish before.
	RoleOnly bool `json:"role_only"`
}

// OnChange makes the engine call fn with every change of which partner is
// credited for a resource, as events are applied.
func (e *Engine) OnChange(fn func(Change)) { e.onChange = fn }

// noteChange reports a change from prev to next, when the partners differ;
// worked and byRole say how next was gained (workedBefore, gainedByRole).
func (e *Engine) noteChange(tenantID, id string, at time.Time, prev, next Credit, worked, byRole bool) {
	from, to := holderOf(prev), holderOf(next)
	if e.onChange == nil || sameHolder(from, to) {
		return
	}
	c := Change{Tenant: tenantID, Resource: id, Time: at, From: from, To: to, ActivityBefore: worked, RoleOnly: byRole}
	if e.cause != nil {
		c.Cause, c.CauseID = e.cause.Type, e.cause.ID
	}
	e.onChange(c)
}
