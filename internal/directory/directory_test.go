package directory_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/event"
)

func registered(at time.Time, org, name string, locs ...string) *event.Event {
	return &event.Event{Type: event.PartnerRegistered, Time: at, Org: org, Name: name, Locations: locs}
}

func TestRegisterAndAdopt(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	d := directory.New()
	if _, rf := d.Register(registered(day(1), "100001", "Fabrikam", "100011", "100012")); rf != nil {
		t.Fatal(rf)
	}
	for _, c := range []struct {
		ev   *event.Event
		code event.Code
	}{
		{registered(day(2), "100011", "Contoso"), event.AlreadyExists},
		{registered(day(2), "200001", "Contoso", "100001"), event.GlobalPartnerID},
		{registered(day(2), "200001", "Contoso", "100012"), event.AlreadyExists},
		{registered(day(2), "200001", "Contoso", "200001"), event.GlobalPartnerID},
	} {
		if _, rf := d.Register(c.ev); rf == nil || rf.Code != c.code {
			t.Errorf("%s %v: refusal %v, want %s", c.ev.Org, c.ev.Locations, rf, c.code)
		}
	}
	// Fabrikam drops 100012: a link to it names what to link instead.
	changed, rf := d.Register(registered(day(3), "100001", "Fabrikam", "100011"))
	if rf != nil || !slices.Equal(changed, []string{"100012"}) {
		t.Fatalf("dropping 100012: changed %v, %v", changed, rf)
	}
	link := &event.Event{Type: event.PalLinked, Time: day(4), Partner: "100012"}
	if rf := d.CheckLink(link); rf == nil || !strings.Contains(rf.Message, "no longer a location ID of organisation Fabrikam (100001); link one of its current location IDs: 100011") {
		t.Errorf("a link to a dropped location: %v", rf)
	}
	if org := d.OwnerEver("100012"); org != "100001" {
		t.Errorf("100012 was Fabrikam's, got %q", org)
	}
	if o := d.Org("100001"); o.SegmentAt(day(1)) != "" || !o.Lists("100012") || o.Lists("200011") {
		t.Errorf("Fabrikam: segment %q, lists 100012 %v", o.SegmentAt(day(1)), o.Lists("100012"))
	}

	// Adopting a directory that knows another organisation and the same
	// Fabrikam names only the other's partner IDs.
	other := directory.New()
	other.Register(registered(day(1), "100001", "Fabrikam", "100011", "100012"))
	other.Register(registered(day(3), "100001", "Fabrikam", "100011"))
	other.Register(registered(day(2), "200001", "Contoso", "200011"))
	if changed := d.Adopt(other); !slices.Equal(changed, []string{"200001", "200011"}) {
		t.Errorf("adopting a directory with Contoso: changed %v", changed)
	}
	if got := d.IDs(); !slices.Equal(got, []string{"100001", "200001"}) {
		t.Errorf("IDs after adopting: %v", got)
	}
	// A snapshot restores the same directory.
	again := directory.Restore(d.Snapshot())
	if changed := again.Adopt(d); len(changed) != 0 {
		t.Errorf("a restored snapshot differs: %v", changed)
	}
}
