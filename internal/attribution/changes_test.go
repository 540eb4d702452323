package attribution_test

import (
	"strings"
	"testing"
	"time"

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
	applyLog(t, e, log)
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

// TestCreatedAgainAtTheInstantOfItsDeletion: a resource deleted and created
// again at one instant is a new object with no history (SPEC.md section
// 3). When the new one's first holder lasts no time, the credit that
// follows is the new resource's, not the old one's interval resumed, even
// when it names the same partner: its kind, workload and environment are
// the new resource's, at every instant after.
func TestCreatedAgainAtTheInstantOfItsDeletion(t *testing.T) {
	log := `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"200001","name":"North","locations":["200011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"c","environment":"prod","env_type":"production"}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"c","environment":"prod2","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"c","account":"bob","kind":"guest"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"c","account":"carol","kind":"user"}
{"type":"pal.linked","time":"2026-01-02T00:00:00Z","tenant":"c","account":"bob","partner":"200011"}
{"type":"resource.created","time":"2026-01-05T00:00:00Z","tenant":"c","environment":"prod","resource":"r1","kind":"canvas_app","owner":"bob"}
{"type":"resource.deleted","time":"2026-01-10T00:00:00Z","tenant":"c","resource":"r1"}
{"type":"resource.created","time":"2026-01-10T00:00:00Z","tenant":"c","environment":"prod2","resource":"r1","kind":"pages_site","owner":"carol"}
{"type":"resource.coowner_added","time":"2026-01-10T00:00:00Z","tenant":"c","resource":"r1","account":"bob"}`
	e := attribution.New(attribution.DefaultOptions())
	applyLog(t, e, log)
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	type span struct {
		Kind, Environment, Partner string
		From, To                   time.Time
	}
	var got []span
	for _, iv := range e.History("c", "r1") {
		got = append(got, span{iv.Kind, iv.Environment, iv.Credit.Partner, iv.From, iv.To})
	}
	want := []span{{"canvas_app", "prod", "200011", day(5), day(10)}, {"pages_site", "prod2", "200011", day(10), time.Time{}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("r1's history (-want +got):\n%s", diff)
	}
	for _, row := range e.AttributionAt(day(11), "c") {
		if row.Resource == "r1" && (row.Kind != "pages_site" || row.Environment != "prod2") {
			t.Errorf("r1 on the 11th is a %s of %s, want the pages_site of prod2 created on the 10th", row.Kind, row.Environment)
		}
	}
}

// applyLog applies every line of a log, each of which must apply.
func applyLog(t *testing.T, e *attribution.Engine, log string) {
	t.Helper()
	r := event.NewReader(strings.NewReader(log))
	for {
		ev, rf, err := r.Next()
		if err != nil {
			return
		}
		if rf != nil {
			t.Fatal(rf)
		}
		if res := e.Apply(ev); res.Outcome != attribution.Applied {
			t.Fatalf("%s at %s refused: %+v", ev.Type, ev.Time, res)
		}
	}
}
