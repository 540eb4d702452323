package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// auditContentType is the Office 365 Management Activity API's content
// type that holds the Power Apps, Power Automate and Power BI records
// (every workload but Entra ID, Exchange and SharePoint).
const auditContentType = "Audit.General"

// auditWindow is a span of the API's content, by when it became
// available: at most 24 hours, as the API takes it.
type auditWindow struct{ start, end time.Time }

// auditWindows are the days before a run, oldest first, each ending where
// the next starts: the API lists content from startTime (included) to
// endTime (left out).
func auditWindows(at time.Time, days int) []auditWindow {
	out := make([]auditWindow, days)
	for i := range out {
		end := at.Add(-time.Duration(days-1-i) * 24 * time.Hour)
		out[i] = auditWindow{end.Add(-24 * time.Hour), end}
	}
	return out
}

// content is a blob of audit records the API lists.
type content struct {
	ID  string `json:"contentId"`
	URI string `json:"contentUri"`
}

// audit reads the tenant's Audit.General content of the AuditDays days
// before the run: the content each day's window lists (every page, after
// NextPageUri), then each content blob — a JSON array of audit records,
// each the AuditData that a Microsoft Purview audit search exports, which
// pal import audit reads. The tenant's subscription to the content type
// must have been started: pal reads, and starts nothing.
func (r *run) audit(ctx context.Context, t *target, st *counter) ([]page, error) {
	windows := auditWindows(r.at, r.c.cfg.AuditDays)
	listed := make([][]content, len(windows))
	_, err := eachScope(ctx, t, indices(len(windows)), func(i int) ([]page, error) {
		w := windows[i]
		q := url.Values{
			"contentType":         {auditContentType},
			"startTime":           {w.start.UTC().Format("2006-01-02T15:04:05")},
			"endTime":             {w.end.UTC().Format("2006-01-02T15:04:05")},
			"PublisherIdentifier": {t.tenant},
		}
		// The lists are not records: only the content is counted.
		pgs, err := t.own.office.list(ctx, "/api/v1.0/"+url.PathEscape(t.tenant)+"/activity/feed/subscriptions/content?"+q.Encode(), func(page) {})
		if err != nil {
			return nil, err
		}
		for _, pg := range pgs {
			var cs []content
			if err := json.Unmarshal(bytes.TrimPrefix(pg.body, []byte("\xef\xbb\xbf")), &cs); err != nil {
				return nil, fmt.Errorf("%s: not a list of available content ([{\"contentId\", \"contentUri\", …}]): %w", pg.name, err)
			}
			listed[i] = append(listed[i], cs...)
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	var all []content
	seen := map[string]bool{}
	for _, cs := range listed {
		for _, c := range cs {
			if c.URI == "" {
				return nil, fmt.Errorf("the content %q has no contentUri", c.ID)
			}
			if !seen[c.ID] {
				seen[c.ID] = true
				all = append(all, c)
			}
		}
	}
	return eachScope(ctx, t, all, func(c content) ([]page, error) {
		pg, err := t.own.office.get(ctx, c.URI)
		if err != nil {
			return nil, err
		}
		st.page(pg)
		return []page{pg}, nil
	})
}
