package server

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/store"
)

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
	writeJSON(w, http.StatusOK, map[string]any{"role": p.Role, "tenant": p.Tenant, "account": p.Account, "org": p.Org, "org_name": name, "now": now})
	return nil
}

type timelineRow struct {
	Kind    string              `json:"kind"`
	From    time.Time           `json:"from"`
	To      *time.Time          `json:"to"`
	Partner string              `json:"partner"`
	Org     string              `json:"org"`
	Account string              `json:"account"`
	Reason  string              `json:"reason"`
	Shares  []attribution.Share `json:"shares,omitempty"`
}

// getTimeline returns a resource's credit as intervals: to the operator,
// the tenant's administrator, and a partner reader whose organisation it
// was ever credited to or whose account is one of its candidates (now, or
// at ?at=), the accounts of each interval named as shownAccount says.
func (s *Server) getTimeline(w http.ResponseWriter, r *http.Request, p Principal) error {
	tenant, resource, err := resourceParams(r, p)
	if err != nil {
		return err
	}
	if attribution.IsAzurePath(resource) {
		return s.azureTimeline(w, r, p, tenant, resource)
	}
	rows := []timelineRow{}
	err = s.read(r.Context(), func(st *fold.State) error {
		for _, iv := range st.Engine().History(tenant, resource) {
			row := timelineRow{Kind: iv.Kind, From: iv.From, Partner: iv.Credit.Partner, Org: iv.Credit.Org,
				Account: p.shownAccount(st.Engine(), iv.Credit.Account, iv.Credit.Partner), Reason: iv.Credit.Reason, Shares: iv.Credit.Shares}
			if !iv.To.IsZero() {
				to := iv.To
				row.To = &to
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		return err
	}
	concerned, err := s.candidateAt(r, p, tenant, resource)
	if err != nil {
		return err
	}
	if err := s.mayRead(r, p, tenant, resource, concerned); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant": tenant, "resource": resource, "intervals": rows})
	return nil
}

// candidateAt reports whether one of a partner reader's accounts is a
// candidate for a resource at ?at= (now by default): a Power Platform
// resource's attributable account, an Azure resource's account through an
// assignment covering it.
func (s *Server) candidateAt(r *http.Request, p Principal, tenant, resource string) (bool, error) {
	if p.Role != store.RolePartnerReader {
		return true, nil
	}
	found := false
	if attribution.IsAzurePath(resource) {
		at, err := parseAt(r)
		if err != nil {
			return false, err
		}
		err = s.read(r.Context(), func(st *fold.State) error {
			when := st.Engine().Now()
			if at != nil {
				when = *at
			}
			x, err := st.Engine().ExplainAzure(tenant, resource, when)
			if err != nil {
				return errorf(codeBadRequest, "resource: %v", err)
			}
			found = slices.ContainsFunc(x.Assignments, func(a attribution.AzureAssignment) bool {
				return slices.ContainsFunc(a.Accounts, func(acct attribution.AzureAccount) bool { return p.ownsPartner(st.Engine(), acct.Partner) })
			})
			return nil
		})
		return found, err
	}
	err := s.explainAt(r, tenant, func(e *attribution.Engine, when time.Time) error {
		found = p.hasRole(e, tenant, e.Explain(tenant, resource, when))
		return nil
	})
	return found, err
}

// azureRow is an interval of an Azure resource's timeline.
type azureRow struct {
	Kind    string     `json:"kind"`
	From    time.Time  `json:"from"`
	To      *time.Time `json:"to"`
	Partner string     `json:"partner"`
	Org     string     `json:"org"`
	Account string     `json:"account"`
	Share   float64    `json:"share"`
}

// azureTimeline returns the intervals over which each location is credited
// for an Azure resource, under the service's Azure policy; a partner
// reader sees the resources ever credited to its organisation, or on which
// one of its accounts holds a role.
func (s *Server) azureTimeline(w http.ResponseWriter, r *http.Request, p Principal, tenant, resource string) error {
	rows := []azureRow{}
	err := s.read(r.Context(), func(st *fold.State) error {
		h, err := st.Engine().AzureHistory(tenant, resource)
		if err != nil {
			return errorf(codeBadRequest, "resource: %v", err)
		}
		for _, iv := range h {
			row := azureRow{Kind: attribution.AzureKind, From: iv.From, Partner: iv.Partner, Org: iv.Org,
				Account: p.shownAccount(st.Engine(), iv.Account, iv.Partner), Share: iv.Share}
			if !iv.To.IsZero() {
				to := iv.To
				row.To = &to
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		return err
	}
	concerned, err := s.candidateAt(r, p, tenant, resource)
	if err != nil {
		return err
	}
	if err := s.mayRead(r, p, tenant, resource, concerned); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant": tenant, "resource": resource, "azure": true, "intervals": rows})
	return nil
}

// getLinks lists the accounts of a tenant that hold a link: account and
// partner ID only, as PAL reveals no more.
func (s *Server) getLinks(w http.ResponseWriter, r *http.Request, p Principal) error {
	tenant, org, err := linksScope(r, p)
	if err != nil {
		return err
	}
	var answer map[string]any
	err = s.read(r.Context(), func(st *fold.State) error {
		if org != "" {
			links := st.Engine().OrgLinks(org)
			if tenant != "" {
				links = slices.DeleteFunc(links, func(l attribution.OrgLink) bool { return l.Tenant != tenant })
			}
			answer = map[string]any{"org": org, "links": links}
		} else {
			answer = map[string]any{"tenant": tenant, "links": st.Engine().Links(tenant)}
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, answer)
	return nil
}

// postWhatIf applies hypothetical events to a copy of the state, and
// answers the attribution of the tenant before and after, and each event's
// refusal if any. Nothing is written.
// maxWhatIfBytes is the largest what-if the service reads.
const maxWhatIfBytes = 1 << 20

func (s *Server) postWhatIf(w http.ResponseWriter, r *http.Request, p Principal) error {
	tenant, err := tenantParam(r, p)
	if err != nil {
		return err
	}
	refused := []*event.Refusal{}
	events, err := readBatch(http.MaxBytesReader(w, r.Body, maxWhatIfBytes), func(ev *event.Event) *event.Refusal {
		if ev.Tenant != tenant {
			return event.Refuse(ev, event.Forbidden, "a what-if is about tenant %s only", tenant)
		}
		return nil
	}, &refused)
	if err != nil {
		return err
	}
	// The what-if folds its tenant alone, then applies the hypothetical
	// events after it: nothing of the state is copied or changed.
	var now time.Time
	var dir []store.Record
	var reads []string
	err = s.read(r.Context(), func(st *fold.State) error {
		now, dir, reads = st.Engine().Now(), st.Directory(), st.Reads(tenant)
		return nil
	})
	if err != nil {
		return err
	}
	e, err := fold.Tenant(r.Context(), s.store, s.cfg.Options, dir, tenant, reads, time.Time{}, nil)
	if err != nil {
		return err
	}
	before := tenantRows(e, tenant)
	events, _ = fold.Order(events)
	for _, ev := range events {
		if ev.Time.Before(now) {
			refused = append(refused, event.Refuse(ev, event.InvalidTime, "a what-if happens after %s, the time of the state", now.Format(time.RFC3339)))
			continue
		}
		if res := e.Apply(ev); res.Outcome == attribution.Refused {
			refused = append(refused, res.Refusal)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant": tenant, "before": before, "after": tenantRows(e, tenant), "refused": refused})
	return nil
}

// tenantRows is the attribution of one tenant, an empty list when it has
// no resource.
func tenantRows(e *attribution.Engine, tenant string) []attribution.Row {
	return append([]attribution.Row{}, e.Attribution(tenant)...)
}

// getIntake says what comes in, for the operator: events by day, and the
// held events by refusal code.
func (s *Server) getIntake(w http.ResponseWriter, r *http.Request, p Principal) error {
	days := 30
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3660 {
			return errorf(codeBadRequest, "days=%q is not a number of days from 1 to 3660", v)
		}
		days = n
	}
	type day struct {
		Day    string `json:"day"`
		Events int    `json:"events"`
	}
	var out []day
	held := map[event.Code]int{}
	total := 0
	err := s.read(r.Context(), func(st *fold.State) error {
		end := st.Engine().Now()
		for i := days - 1; i >= 0; i-- {
			d := end.AddDate(0, 0, -i).Format(time.DateOnly)
			out = append(out, day{d, st.PerDay()[d]})
		}
		for _, rf := range st.Refusals(nil) {
			held[rf.Code]++
			total++
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"days": out, "held": total, "held_by_code": held})
	return nil
}

// getDiagnosis says where an organisation's credit is missing: a partner
// reader's own, or the one the operator names.
func (s *Server) getDiagnosis(w http.ResponseWriter, r *http.Request, p Principal) error {
	org := r.URL.Query().Get("org")
	if p.Role == store.RolePartnerReader && org == "" {
		org = p.Org
	}
	if err := p.readsScore(org); err != nil {
		return err
	}
	if org == "" {
		return errorf(codeBadRequest, "org is required: %s?org=ORG", r.URL.Path)
	}
	var d attribution.Diagnosis
	err := s.read(r.Context(), func(st *fold.State) error {
		d = st.Engine().Diagnose(org)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
