package server

import (
	"net/http"
	"time"

	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/fold"
)

type timelineRow struct {
	Kind    string         `json:"kind"`
	From    time.Time      `json:"from"`
	To      *time.Time     `json:"to"`
	Partner string         `json:"partner"`
	Org     string         `json:"org"`
	Account string         `json:"account"`
	Reason  string         `json:"reason"`
	Shares  []credit.Share `json:"shares,omitempty"`
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
	if azure.IsPath(resource) {
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
	return s.answerTimeline(w, r, p, tenant, resource, map[string]any{"tenant": tenant, "resource": resource, "intervals": rows})
}

// answerTimeline writes a resource's timeline, once p may read of it.
func (s *Server) answerTimeline(w http.ResponseWriter, r *http.Request, p Principal, tenant, resource string, answer map[string]any) error {
	concerned, err := s.candidateAt(r, p, tenant, resource)
	if err != nil {
		return err
	}
	if err := s.mayRead(r, p, tenant, resource, concerned); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, answer)
	return nil
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
		h, err := st.Engine().Azure().History(tenant, resource)
		if err != nil {
			return errorf(codeBadRequest, "resource: %v", err)
		}
		for _, iv := range h {
			row := azureRow{Kind: azure.Kind, From: iv.From, Partner: iv.Partner, Org: iv.Org,
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
	return s.answerTimeline(w, r, p, tenant, resource, map[string]any{"tenant": tenant, "resource": resource, "azure": true, "intervals": rows})
}
