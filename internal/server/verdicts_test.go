package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
)

type batchAnswer struct {
	Accepted   int
	Duplicates int
	Held       []struct {
		Line    int
		Type    string
		Code    string
		Message string
	}
	Refused []struct {
		Line int
		Code string
	}
}

func (s *service) pushBatch(token string, lines ...string) batchAnswer {
	s.t.Helper()
	var a batchAnswer
	if status := s.json("POST", "/v1/events", token, strings.Join(lines, "\n"), &a); status != 200 {
		s.t.Fatalf("POST /v1/events: %d", status)
	}
	return a
}

type refusalPage struct {
	Refused []struct {
		Seq  int64
		Type string
		Code string
	}
	Next *int64
}

const setup = `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"contoso","account":"alice","partner":"100011"}`

// TestHeldEventsApplyWhenTheirPastArrives is the operator's story: usage
// from telemetry arrives before the ownership event it depends on. The
// usage is stored and held, and counts once the resource arrives.
func TestHeldEventsApplyWhenTheirPastArrives(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		s := start(t, open(t), server.Config{})
		operator := s.token(store.RoleOperator, "", "", "")
		s.pushBatch(operator, setup)
		var uses []string
		for i := range 5 {
			uses = append(uses, fmt.Sprintf(`{"type":"usage","time":"2026-03-05T00:00:00Z","tenant":"contoso","resource":"app1","user":"u%d","id":"use-%d"}`, i, i))
		}
		a := s.pushBatch(operator, append(uses, `not json`)...)
		if a.Accepted != 0 || len(a.Held) != 5 || len(a.Refused) != 1 || a.Refused[0].Line != 6 || a.Refused[0].Code != "malformed" {
			t.Fatalf("usage before its resource: %+v, want 5 held and line 6 refused", a)
		}
		if h := a.Held[2]; h.Line != 3 || h.Type != "usage" || h.Code != "unknown_tenant_object" {
			t.Errorf("held line: %+v", h)
		}
		var page refusalPage
		s.json("GET", "/v1/refusals", operator, "", &page)
		if len(page.Refused) != 5 || page.Next != nil {
			t.Fatalf("refusals while held: %+v", page)
		}
		// The same lines again: duplicates, by their ids.
		if a := s.pushBatch(operator, uses...); a.Duplicates != 5 || a.Accepted+len(a.Held) != 0 {
			t.Errorf("the usage delivered again: %+v, want 5 duplicates", a)
		}
		a = s.pushBatch(operator, `{"type":"resource.created","time":"2026-03-01T00:00:00Z","tenant":"contoso","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}`)
		if a.Accepted != 1 {
			t.Fatalf("resource.created: %+v", a)
		}
		page = refusalPage{}
		s.json("GET", "/v1/refusals", operator, "", &page)
		if len(page.Refused) != 0 {
			t.Errorf("refusals once the resource arrived: %+v, want none", page)
		}
		var m struct {
			Resources []struct {
				Resource string
				MAU      float64
			}
		}
		s.json("GET", "/v1/reports/monthly?month=2026-03", operator, "", &m)
		if len(m.Resources) != 1 || m.Resources[0].Resource != "app1" || m.Resources[0].MAU != 5 {
			t.Errorf("March: %+v, want app1 with 5 MAU", m.Resources)
		}
	})
}

// TestAppliedEventsBecomeRefusedWhenTheirPastChanges: a late deletion of a
// resource makes the usage after it, applied when it came, refused; the
// credit it had is corrected in the feed.
func TestAppliedEventsBecomeRefusedWhenTheirPastChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		s := start(t, open(t), server.Config{})
		operator := s.token(store.RoleOperator, "", "", "")
		fabrikam := s.token(store.RolePartnerReader, "", "", "100001")
		s.pushBatch(operator, setup,
			`{"type":"resource.created","time":"2026-03-01T00:00:00Z","tenant":"contoso","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}`,
			`{"type":"usage","time":"2026-03-10T00:00:00Z","tenant":"contoso","resource":"app1","user":"u1"}`,
			`{"type":"usage","time":"2026-03-20T00:00:00Z","tenant":"contoso","resource":"app1","user":"u2"}`)
		type feed struct {
			Changes []struct {
				Seq        int64
				Time       string
				Cause      string
				Correction bool
				To         struct{ Partner, Reason string }
			}
			Next int64
		}
		var before feed
		s.json("GET", "/v1/changes", fabrikam, "", &before)
		if len(before.Changes) != 1 || before.Changes[0].To.Partner != "100011" || before.Changes[0].Correction {
			t.Fatalf("Fabrikam's feed: %+v, want app1 gained", before)
		}
		// An audit trail reports, late, that app1 was deleted on the 15th.
		a := s.pushBatch(operator, `{"type":"resource.deleted","time":"2026-03-15T00:00:00Z","tenant":"contoso","resource":"app1"}`)
		if a.Accepted != 1 {
			t.Fatalf("resource.deleted: %+v", a)
		}
		var page refusalPage
		s.json("GET", "/v1/refusals", operator, "", &page)
		if len(page.Refused) != 1 || page.Refused[0].Type != "usage" || page.Refused[0].Code != "unknown_tenant_object" || page.Refused[0].Seq != 7 {
			t.Fatalf("refusals: %+v, want the usage of the 20th (record 7)", page)
		}
		var after feed
		s.json("GET", fmt.Sprintf("/v1/changes?since=%d", before.Next), fabrikam, "", &after)
		if len(after.Changes) != 1 {
			t.Fatalf("the feed after the late deletion: %+v, want one correction", after)
		}
		c := after.Changes[0]
		if !c.Correction || c.Time != "2026-03-15T00:00:00Z" || c.To.Partner != "" || c.Cause != "resource.deleted" || c.Seq != 8 {
			t.Errorf("correction %+v, want app1's credit ended on the 15th, filed under record 8", c)
		}
		var m struct{ Resources []struct{ MAU float64 } }
		s.json("GET", "/v1/reports/monthly?month=2026-03", operator, "", &m)
		if len(m.Resources) != 1 || m.Resources[0].MAU != 1 {
			t.Errorf("March: %+v, want 1 MAU (u2 came after the deletion)", m.Resources)
		}
		// A tenant administrator pages through its own tenant's refusals only.
		other := s.token(store.RoleTenantAdmin, "fabrikam-tenant", "", "")
		page = refusalPage{}
		s.json("GET", "/v1/refusals", other, "", &page)
		if len(page.Refused) != 0 {
			t.Errorf("another tenant's administrator sees %+v", page)
		}
		if status, _ := s.call("GET", "/v1/refusals", fabrikam, ""); status != 403 {
			t.Errorf("a partner reader reading refusals: %d, want 403", status)
		}
		if status, _ := s.call("GET", "/v1/refusals?limit=0", operator, ""); status != 400 {
			t.Errorf("limit=0: %d, want 400", status)
		}
	})
}
