package attribution_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
)

func TestChanges(t *testing.T) {
	log := `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","locations":["100011"]}
{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"200001","locations":["200011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"t","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"t","account":"alice","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"t","account":"bob","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t","account":"alice","partner":"100011"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"t","account":"bob","partner":"200011"}
{"type":"resource.created","time":"2026-01-02T00:00:00Z","tenant":"t","environment":"prod","resource":"app","kind":"canvas_app","owner":"alice"}
{"type":"resource.activity","time":"2026-01-03T00:00:00Z","tenant":"t","resource":"app","account":"alice","action":"edit"}
{"type":"resource.coowner_added","time":"2026-01-04T00:00:00Z","id":"e9","tenant":"t","resource":"app","account":"bob"}
{"type":"resource.activity","time":"2026-01-05T00:00:00Z","tenant":"t","resource":"app","account":"alice","action":"publish"}
{"type":"resource.coowner_removed","time":"2026-06-01T00:00:00Z","tenant":"t","resource":"app","account":"bob"}
{"type":"resource.coowner_added","time":"2026-06-03T00:00:00Z","tenant":"t","resource":"app","account":"bob"}
{"type":"resource.coowner_removed","time":"2026-06-04T00:00:00Z","tenant":"t","resource":"app","account":"bob"}
{"type":"resource.activity","time":"2026-06-05T00:00:00Z","tenant":"t","resource":"app","account":"alice","action":"edit"}
{"type":"resource.coowner_added","time":"2026-06-06T00:00:00Z","tenant":"t","resource":"app","account":"bob"}
{"type":"resource.coowner_removed","time":"2026-06-07T00:00:00Z","tenant":"t","resource":"app","account":"bob"}
{"type":"resource.deleted","time":"2026-06-08T00:00:00Z","tenant":"t","resource":"app"}`
	e := attribution.New(attribution.DefaultOptions())
	var got []attribution.Change
	e.OnChange(func(c attribution.Change) { got = append(got, c) })
	r := event.NewReader(strings.NewReader(log))
	for {
		ev, rf, err := r.Next()
		if err != nil {
			break
		}
		if rf != nil {
			t.Fatal(rf)
		}
		e.Apply(ev)
	}
	type short struct {
		Cause, CauseID, From, To, Reason string
		Worked, RoleOnly                 bool
	}
	var s []short
	for _, c := range got {
		s = append(s, short{c.Cause, c.CauseID, c.From.Partner, c.To.Partner, c.To.Reason, c.ActivityBefore, c.RoleOnly})
	}
	// Bob gains the credit by a role alone, each time; alice takes it back
	// by a publish (activity at the change's own instant), gets it back in
	// June when bob leaves with no activity of hers in the 90 days before,
	// and again after her edit of 5 June.
	want := []short{
		{"resource.created", "", "", "100011", "", false, false},
		{"resource.coowner_added", "e9", "100011", "200011", "", false, true},
		{"resource.activity", "", "200011", "100011", "", true, false},
		{"resource.coowner_added", "", "100011", "200011", "", false, true},
		{"resource.coowner_removed", "", "200011", "100011", "", false, false},
		{"resource.coowner_added", "", "100011", "200011", "", false, true},
		{"resource.coowner_removed", "", "200011", "100011", "", true, false},
		{"resource.deleted", "", "100011", "", credit.ResourceDeleted, false, false},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}
