package collecttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// AuditContent is a blob of audit records of the Office 365 Management
// Activity API: the records, each an AuditData object as Microsoft Purview
// exports it, and when the blob became available.
type AuditContent struct {
	Created time.Time
	Records []json.RawMessage
}

// SetAudit starts a tenant's subscription to Audit.General and sets the
// content it lists. A tenant whose subscription was never started is
// answered AF20022, as the API answers it.
func (a *API) SetAudit(tenant string, contents []AuditContent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.audit[tenant] = append([]AuditContent{}, contents...)
}

// AuditContentPath is the path of the list of a tenant's available
// content; AuditBlobPath the prefix of its content blobs' paths.
func AuditContentPath(tenant string) string {
	return "/api/v1.0/" + tenant + "/activity/feed/subscriptions/content"
}

func auditBlobPath(tenant string) string { return "/api/v1.0/" + tenant + "/activity/feed/audit/" }

// office answers the Management Activity API: the list of available
// content of a window of at most 24 hours (inclusive start, exclusive
// end), PageSize entries a page with a NextPageUri header to the next,
// and each content blob, a JSON array of records.
func (a *API) office(w http.ResponseWriter, r *http.Request, tenant string) {
	rest := strings.TrimPrefix(r.URL.Path, "/api/v1.0/")
	inPath, _, _ := strings.Cut(rest, "/")
	if !strings.EqualFold(inPath, tenant) {
		writeError(w, http.StatusBadRequest, "AF20010", fmt.Sprintf("The tenant ID passed in the URL (%s) does not match the tenant ID passed in the access token (%s).", inPath, tenant))
		return
	}
	a.mu.Lock()
	contents, started := a.audit[tenant]
	size := max(a.PageSize, 1)
	a.mu.Unlock()
	if !started {
		writeError(w, http.StatusBadRequest, "AF20022", "No subscription found for the specified content type")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == AuditContentPath(inPath):
		q := r.URL.Query()
		if q.Get("contentType") != "Audit.General" {
			writeError(w, http.StatusBadRequest, "AF20020", "The specified content type is not valid.")
			return
		}
		start, ok1 := officeTime(q.Get("startTime"))
		end, ok2 := officeTime(q.Get("endTime"))
		if !ok1 || !ok2 || end.Sub(start) > 24*time.Hour || !end.After(start) {
			writeError(w, http.StatusBadRequest, "AF20030", "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.")
			return
		}
		var list []map[string]string
		for i, c := range contents {
			if c.Created.Before(start) || !c.Created.Before(end) {
				continue
			}
			id := fmt.Sprintf("%s$%04d", strings.ReplaceAll(tenant, "-", ""), i)
			list = append(list, map[string]string{
				"contentType":       "Audit.General",
				"contentId":         id,
				"contentUri":        a.URL + auditBlobPath(inPath) + id,
				"contentCreated":    c.Created.UTC().Format("2006-01-02T15:04:05.000Z"),
				"contentExpiration": c.Created.Add(7 * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z"),
			})
		}
		from, _ := strconv.Atoi(q.Get("nextPage"))
		to := min(from+size, len(list))
		if to < len(list) {
			q.Set("nextPage", strconv.Itoa(to))
			w.Header().Set("NextPageUri", a.URL+r.URL.Path+"?"+q.Encode())
		}
		writeJSON(w, nonNil(list[min(from, len(list)):to]))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, auditBlobPath(inPath)):
		id := strings.TrimPrefix(r.URL.Path, auditBlobPath(inPath))
		_, n, _ := strings.Cut(id, "$")
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || i >= len(contents) {
			writeError(w, http.StatusNotFound, "AF20050", fmt.Sprintf("The specified content (%s) does not exist.", id))
			return
		}
		writeJSON(w, nonNil(contents[i].Records))
	default:
		writeError(w, http.StatusNotFound, "NotFound", r.URL.Path)
	}
}

// officeTime reads a time as the API takes it, in UTC.
func officeTime(s string) (time.Time, bool) {
	for _, l := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
