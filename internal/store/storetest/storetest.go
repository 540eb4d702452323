package storetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/store/sqlite"
)

// Opener opens a handle on one fresh database; each call opens another
// handle on the same database, as another process would.
type Opener func(t *testing.T) store.Store

// Exercise runs the suite. fresh returns an opener of a new, empty database.
func Exercise(t *testing.T, fresh func(t *testing.T) Opener) {
	ctx := context.Background()
	at := func(day int) time.Time { return time.Date(2026, 1, day, 0, 0, 0, 0, time.UTC) }
	usage := func(day int, id, user string) *event.Event {
		return &event.Event{Type: event.Usage, Time: at(day), ID: id, Tenant: "contoso", Resource: "app1", User: user}
	}
	appendAll := func(t *testing.T, s store.Store, events ...*event.Event) []int64 {
		t.Helper()
		var seqs []int64
		err := s.Write(ctx, func(w store.Writer) error {
			var err error
			seqs, err = w.Append(ctx, events)
			return err
		})
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		return seqs
	}
	all := func(t *testing.T, s store.Store, byTime bool) []store.Record {
		t.Helper()
		var recs []store.Record
		collect := func(r store.Record) error { recs = append(recs, r); return nil }
		var err error
		if byTime {
			err = s.ScanTenant(ctx, "contoso", collect)
		} else {
			err = s.Scan(ctx, 0, collect)
		}
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		return recs
	}

	t.Run("Empty", func(t *testing.T) {
		s := fresh(t)(t)
		if seq, err := s.LastSeq(ctx); err != nil || seq != 0 {
			t.Errorf("LastSeq = %d, %v; want 0", seq, err)
		}
		if _, _, err := s.LoadSnapshot(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LoadSnapshot = %v, want ErrNotFound", err)
		}
		if _, err := s.Token(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Token = %v, want ErrNotFound", err)
		}
	})

	t.Run("AppendAndScan", func(t *testing.T) {
		s := fresh(t)(t)
		imported := &event.Event{Type: event.PalLinked, Time: at(1), Tenant: "contoso", Account: "alice", Partner: "100011", Imported: true}
		seqs := appendAll(t, s, usage(3, "a", "u1"), usage(2, "", "u2"), imported)
		if fmt.Sprint(seqs) != "[1 2 3]" {
			t.Fatalf("sequence numbers %v, want [1 2 3]", seqs)
		}
		recs := all(t, s, false)
		want := []string{
			`{"type":"usage","time":"2026-01-03T00:00:00Z","id":"a","tenant":"contoso","resource":"app1","user":"u1"}`,
			`{"type":"usage","time":"2026-01-02T00:00:00Z","tenant":"contoso","resource":"app1","user":"u2"}`,
			`{"type":"pal.linked","time":"2026-01-01T00:00:00Z","imported":true,"tenant":"contoso","account":"alice","partner":"100011"}`,
		}
		if len(recs) != len(want) {
			t.Fatalf("Scan returned %d records, want %d", len(recs), len(want))
		}
		for i, r := range recs {
			if got := string(r.Event.AppendJSON(nil)); got != want[i] || r.Seq != int64(i+1) {
				t.Errorf("record %d = %d %s, want %d %s", i, r.Seq, got, i+1, want[i])
			}
		}
		var after []int64
		s.Scan(ctx, 2, func(r store.Record) error { after = append(after, r.Seq); return nil })
		if fmt.Sprint(after) != "[3]" {
			t.Errorf("Scan after 2 = %v, want [3]", after)
		}
		if seq, _ := s.LastSeq(ctx); seq != 3 {
			t.Errorf("LastSeq = %d, want 3", seq)
		}
		var order []int64
		for _, r := range all(t, s, true) {
			order = append(order, r.Seq)
		}
		if fmt.Sprint(order) != "[3 2 1]" {
			t.Errorf("ScanTenant order %v, want [3 2 1]", order)
		}
		// Inside a write, the writer's own appends are read too.
		var inTx []int64
		s.Write(ctx, func(w store.Writer) error {
			if _, err := w.Append(ctx, []*event.Event{usage(1, "", "u9")}); err != nil {
				return err
			}
			return w.ScanTenant(ctx, "contoso", func(r store.Record) error { inTx = append(inTx, r.Seq); return nil })
		})
		if fmt.Sprint(inTx) != "[3 4 2 1]" {
			t.Errorf("Writer.ScanTenant order %v, want [3 4 2 1]", inTx)
		}
	})

	t.Run("EqualTimesKeepSequenceOrder", func(t *testing.T) {
		s := fresh(t)(t)
		appendAll(t, s, usage(5, "", "b"), usage(4, "", "x"), usage(5, "", "a"))
		var users []string
		for _, r := range all(t, s, true) {
			users = append(users, r.Event.User)
		}
		if fmt.Sprint(users) != "[x b a]" {
			t.Errorf("ScanTenant users %v, want [x b a]", users)
		}
	})

	t.Run("DuplicateIDs", func(t *testing.T) {
		s := fresh(t)(t)
		appendAll(t, s, usage(1, "same", "u1"))
		// A known id, an id carried twice in one batch, and events without
		// an id, which are never duplicates.
		seqs := appendAll(t, s, usage(2, "same", "u2"), usage(2, "", "u3"), usage(3, "twice", "u4"),
			usage(3, "twice", "u5"), usage(2, "", "u3"))
		if fmt.Sprint(seqs) != "[0 2 3 0 4]" {
			t.Errorf("sequence numbers %v, want [0 2 3 0 4]", seqs)
		}
		var users []string
		for _, r := range all(t, s, false) {
			users = append(users, r.Event.User)
		}
		if fmt.Sprint(users) != "[u1 u3 u4 u3]" {
			t.Fatalf("log after duplicates: %v, want [u1 u3 u4 u3]", users)
		}
		if seqs := appendAll(t, s, usage(4, "", "u6")); fmt.Sprint(seqs) != "[5]" {
			t.Errorf("next sequence number %v, want [5]", seqs)
		}
	})

	t.Run("LargeBatch", func(t *testing.T) {
		s := fresh(t)(t)
		batch := make([]*event.Event, 2500)
		for i := range batch {
			batch[i] = usage(1+i%28, fmt.Sprintf("b%d", i%2400), fmt.Sprint(i))
		}
		seqs := appendAll(t, s, batch...)
		for i, seq := range seqs {
			want := int64(i + 1)
			if i >= 2400 {
				want = 0
			}
			if seq != want {
				t.Fatalf("event %d got sequence number %d, want %d", i, seq, want)
			}
		}
		if n := len(all(t, s, false)); n != 2400 {
			t.Errorf("%d records, want 2400", n)
		}
	})

	t.Run("ScanTenant", func(t *testing.T) {
		s := fresh(t)(t)
		other := usage(1, "", "o1")
		other.Tenant = "fabrikam"
		dir := &event.Event{Type: event.PartnerRegistered, Time: at(1), Org: "100001", Name: "A", Locations: []string{"100011"}}
		inputs := &event.Event{Type: event.PartnerMetrics, Time: at(1), Org: "100001", Month: "2026-01"}
		appendAll(t, s, usage(5, "", "b"), other, dir, usage(4, "", "x"), usage(5, "", "a"), inputs)
		var got []string
		collect := func(r store.Record) error { got = append(got, fmt.Sprintf("%d:%s", r.Seq, r.Event.User)); return nil }
		if err := s.ScanTenant(ctx, "contoso", collect); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[4:x 1:b 5:a]" {
			t.Errorf("ScanTenant(contoso) = %v, want [4:x 1:b 5:a]", got)
		}
		got = nil
		if err := s.TenantLog(ctx, "contoso", collect); err != nil {
			t.Fatal(err)
		}
		// The directory's registration, not an organisation's inputs.
		if fmt.Sprint(got) != "[1:b 3: 4:x 5:a]" {
			t.Errorf("TenantLog(contoso) = %v, want [1:b 3: 4:x 5:a]", got)
		}
		got = nil
		if err := s.Write(ctx, func(w store.Writer) error { return w.ScanTenant(ctx, "", collect) }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[3: 6:]" {
			t.Errorf("Writer.ScanTenant of the directory = %v, want [3: 6:]", got)
		}
	})

	t.Run("ScanTenantState", func(t *testing.T) {
		s := fresh(t)(t)
		env := &event.Event{Type: event.EnvironmentCreated, Time: at(5), Tenant: "contoso", Environment: "e1", EnvType: event.Production}
		acct := &event.Event{Type: event.AccountCreated, Time: at(2), Tenant: "contoso", Account: "a1", Kind: "user"}
		profiles := &event.Event{Type: event.Profiles, Time: at(3), Tenant: "contoso", Resource: "ci", Count: 7}
		other := &event.Event{Type: event.AccountCreated, Time: at(1), Tenant: "fabrikam", Account: "a2", Kind: "user"}
		appendAll(t, s, usage(1, "", "b"), env, profiles, acct, other, usage(2, "", "x"))
		var got []string
		collect := func(r store.Record) error { got = append(got, fmt.Sprintf("%d:%s", r.Seq, r.Event.Type)); return nil }
		if err := s.ScanTenantState(ctx, "contoso", collect); err != nil {
			t.Fatal(err)
		}
		want := "[4:account.created 2:environment.created]"
		if fmt.Sprint(got) != want {
			t.Errorf("ScanTenantState(contoso) = %v, want %s: no usage or profiles, by time", got, want)
		}
		got = nil
		if err := s.Write(ctx, func(w store.Writer) error { return w.ScanTenantState(ctx, "contoso", collect) }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != want {
			t.Errorf("Writer.ScanTenantState(contoso) = %v, want %s", got, want)
		}
		got = nil
		if err := s.ScanTenantBetween(ctx, "contoso", at(3), time.Time{}, collect); err != nil {
			t.Fatal(err)
		}
		from := "[3:profiles 2:environment.created]"
		if fmt.Sprint(got) != from {
			t.Errorf("ScanTenantBetween(contoso, day 3, no end) = %v, want %s: every record from the instant on, by time", got, from)
		}
		got = nil
		if err := s.Write(ctx, func(w store.Writer) error { return w.ScanTenantBetween(ctx, "contoso", at(2), at(5), collect) }); err != nil {
			t.Fatal(err)
		}
		if between := "[4:account.created 6:usage 3:profiles]"; fmt.Sprint(got) != between {
			t.Errorf("Writer.ScanTenantBetween(contoso, day 2, day 5) = %v, want %s: day 5 excluded", got, between)
		}
	})

	t.Run("Feed", func(t *testing.T) {
		s := fresh(t)(t)
		filed := []store.FiledChange{
			{At: store.Cursor{Seq: 3, K: 1}, Tenant: "contoso", Orgs: []string{"1", "2"}, Body: []byte(`{"n":1}`)},
			{At: store.Cursor{Seq: 3, K: 2}, Tenant: "fabrikam", Orgs: []string{"2"}, Body: []byte(`{"n":2}`)},
			{At: store.Cursor{Seq: 7, K: 1}, Tenant: "contoso", Body: []byte(`{"n":3}`)},
			{At: store.Cursor{Seq: 9, K: 1}, Tenant: "contoso", Orgs: []string{"1"}, Body: []byte(`{"n":4}`)},
		}
		if err := s.Write(ctx, func(w store.Writer) error { return w.FileChanges(ctx, filed) }); err != nil {
			t.Fatal(err)
		}
		read := func(f store.ChangeFilter, after store.Cursor, limit int) string {
			var got []string
			err := s.Changes(ctx, f, after, limit, func(c store.FiledChange) error {
				got = append(got, fmt.Sprintf("%d.%d:%s:%s", c.At.Seq, c.At.K, c.Tenant, c.Body))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(got)
		}
		for _, c := range []struct {
			f     store.ChangeFilter
			after store.Cursor
			limit int
			want  string
		}{
			{store.ChangeFilter{}, store.Cursor{}, 10, `[3.1:contoso:{"n":1} 3.2:fabrikam:{"n":2} 7.1:contoso:{"n":3} 9.1:contoso:{"n":4}]`},
			{store.ChangeFilter{}, store.Cursor{Seq: 3, K: 1}, 2, `[3.2:fabrikam:{"n":2} 7.1:contoso:{"n":3}]`},
			{store.ChangeFilter{Tenant: "contoso"}, store.Cursor{Seq: 3, K: 1}, 10, `[7.1:contoso:{"n":3} 9.1:contoso:{"n":4}]`},
			{store.ChangeFilter{Org: "2"}, store.Cursor{}, 10, `[3.1:contoso:{"n":1} 3.2:fabrikam:{"n":2}]`},
			{store.ChangeFilter{Org: "1"}, store.Cursor{Seq: 3, K: 2}, 10, `[9.1:contoso:{"n":4}]`},
			{store.ChangeFilter{Org: "3"}, store.Cursor{}, 10, `[]`},
			// An organisation's changes in one tenant.
			{store.ChangeFilter{Org: "2", Tenant: "fabrikam"}, store.Cursor{}, 10, `[3.2:fabrikam:{"n":2}]`},
			{store.ChangeFilter{Org: "2", Tenant: "contoso"}, store.Cursor{Seq: 3, K: 1}, 10, `[]`},
		} {
			if got := read(c.f, c.after, c.limit); got != c.want {
				t.Errorf("Changes(%+v, after %+v, %d) = %s, want %s", c.f, c.after, c.limit, got, c.want)
			}
		}
	})

	t.Run("FailedWriteAppendsNothing", func(t *testing.T) {
		s := fresh(t)(t)
		boom := errors.New("boom")
		err := s.Write(ctx, func(w store.Writer) error {
			if _, err := w.Append(ctx, []*event.Event{usage(1, "x", "u1")}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want the error of fn", err)
		}
		if recs := all(t, s, false); len(recs) != 0 {
			t.Fatalf("a failed write left %d records", len(recs))
		}
		// Its id was not used up.
		appendAll(t, s, usage(1, "x", "u1"))
	})

	t.Run("ScanFollowing", func(t *testing.T) {
		s := fresh(t)(t)
		of := func(tenant, typ string, day int) *event.Event {
			ev := &event.Event{Type: typ, Time: at(day), Tenant: tenant, Resource: "app1", User: "u1", Account: "alice", Partner: "100011"}
			if typ == event.PartnerRegistered {
				ev = &event.Event{Type: typ, Time: at(day), Org: "100001", Name: "Fabrikam", Locations: []string{"100011"}}
			}
			if typ == event.AzureRoleAssigned {
				ev = &event.Event{Type: typ, Time: at(day), Tenant: tenant, Scope: "/subscriptions/s1", Assignment: "a1",
					Role: "Contributor", Principal: "p1", PrincipalTenant: "fabrikam"}
			}
			return ev
		}
		// A record stored before the buckets were fixed has none: every
		// process reads it.
		appendAll(t, s, of("t-early", event.Usage, 1))
		const n = 4
		b, sharing := s.(store.Buckets)
		if sharing {
			if _, err := b.SetBuckets(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		var events []*event.Event
		for i := range 24 {
			events = append(events, of(fmt.Sprintf("t%d", i), event.Usage, 1+i%3))
		}
		events = append(events, of("", event.PartnerRegistered, 2), of("t-far", event.AzureRoleAssigned, 3), of("t-read", event.PalLinked, 3))
		appendAll(t, s, events...)
		f := store.Following{Buckets: n, Held: []int{store.Bucket("t0", n)}, Tenants: []string{"t-read"}}
		var must []int64
		for i, r := range all(t, s, false) {
			if i == 0 || f.Names(r.Event.Tenant, r.Event.Type) {
				must = append(must, r.Seq)
			}
		}
		read := func(name string, scan func(fn func(store.Record) error) (int64, error)) {
			var got []int64
			horizon, err := scan(func(r store.Record) error { got = append(got, r.Seq); return nil })
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if horizon != 28 {
				t.Errorf("%s: horizon %d, want the log's last record, 28", name, horizon)
			}
			missing := map[int64]bool{}
			for _, seq := range must {
				missing[seq] = true
			}
			for i, seq := range got {
				delete(missing, seq)
				if i > 0 && seq <= got[i-1] {
					t.Fatalf("%s: records %v out of sequence order", name, got)
				}
			}
			if len(missing) > 0 {
				t.Errorf("%s gave %v, without the records it follows %v", name, got, missing)
			}
			// A store that keeps buckets gives those records alone.
			if sharing && fmt.Sprint(got) != fmt.Sprint(must) {
				t.Errorf("%s gave %v, want %v", name, got, must)
			}
		}
		read("Store.ScanFollowing", func(fn func(store.Record) error) (int64, error) { return s.ScanFollowing(ctx, 0, f, fn) })
		s.Write(ctx, func(w store.Writer) error {
			read("Writer.ScanFollowing", func(fn func(store.Record) error) (int64, error) { return w.ScanFollowing(ctx, 0, f, fn) })
			return nil
		})
		if len(must) < 5 || len(must) > 20 {
			t.Fatalf("the test follows %d records of 28: a bucket of 4 should be some", len(must))
		}
	})

	t.Run("LogDays", func(t *testing.T) {
		s := fresh(t)(t)
		appendAll(t, s, usage(1, "a", "u1"), usage(1, "", "u2"), usage(2, "b", "u1"))
		appendAll(t, s, usage(2, "b", "u1"), usage(3, "", "u1"), &event.Event{Type: event.Usage, Time: at(3).Add(-time.Nanosecond), Tenant: "contoso", Resource: "app1", User: "u3"})
		s.Write(ctx, func(w store.Writer) error {
			if _, err := w.Append(ctx, []*event.Event{usage(9, "", "u1")}); err != nil {
				return err
			}
			return errors.New("rolled back")
		})
		days, err := s.LogDays(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(days); got != "map[2026-01-01:2 2026-01-02:2 2026-01-03:1]" {
			t.Errorf("LogDays = %s: counts stored records by day, duplicates and rolled back writes apart", got)
		}
	})

	t.Run("Snapshot", func(t *testing.T) {
		s := fresh(t)(t)
		if err := s.SaveSnapshot(ctx, 5, []byte("five")); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveSnapshot(ctx, 9, []byte("nine")); err != nil {
			t.Fatal(err)
		}
		// An older snapshot, saved late by a slower process, never wins.
		if err := s.SaveSnapshot(ctx, 7, []byte("seven")); err != nil {
			t.Fatal(err)
		}
		seq, data, err := s.LoadSnapshot(ctx)
		if err != nil || seq != 9 || string(data) != "nine" {
			t.Errorf("LoadSnapshot = %d %q %v, want 9 nine", seq, data, err)
		}
		// One after the same record replaces it: a snapshot that the
		// service could not use (another version's) is not kept for good
		// when the log does not move.
		if err := s.SaveSnapshot(ctx, 9, []byte("nine again")); err != nil {
			t.Fatal(err)
		}
		if seq, data, err := s.LoadSnapshot(ctx); err != nil || seq != 9 || string(data) != "nine again" {
			t.Errorf("LoadSnapshot = %d %q %v, want 9 nine again", seq, data, err)
		}
	})

	t.Run("Tokens", func(t *testing.T) {
		s := fresh(t)(t)
		tok := store.Token{ID: "tok_1", Role: store.RolePartnerReader, Org: "100001", Created: at(1), Expires: at(20)}
		if err := s.AddToken(ctx, "h1", tok); err != nil {
			t.Fatal(err)
		}
		got, err := s.Token(ctx, "h1")
		if err != nil || got != tok {
			t.Errorf("Token = %+v %v, want %+v", got, err, tok)
		}
		if err := s.AddToken(ctx, "h1", tok); err == nil {
			t.Error("a second token with the same hash was accepted")
		}
		other := store.Token{ID: "tok_2", Role: store.RoleOperator, Created: at(2), Expires: at(30)}
		if err := s.AddToken(ctx, "h2", other); err != nil {
			t.Fatal(err)
		}
		if err := s.TokenUsed(ctx, "h2", at(3)); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.RevokeToken(ctx, "tok_1"); !ok || err != nil {
			t.Errorf("RevokeToken = %v %v", ok, err)
		}
		if ok, err := s.RevokeToken(ctx, "tok_9"); ok || err != nil {
			t.Errorf("RevokeToken of an unknown id = %v %v, want false", ok, err)
		}
		all, err := s.Tokens(ctx)
		tok.Revoked, other.LastUsed = true, at(3)
		if err != nil || len(all) != 2 || all[0] != tok || all[1] != other {
			t.Errorf("Tokens = %+v %v, want [%+v %+v]", all, err, tok, other)
		}
	})

	t.Run("Webhooks", func(t *testing.T) {
		open := fresh(t)
		a, b := open(t), open(t)
		w := store.Webhook{ID: "w1", Org: "100001", URL: "http://127.0.0.1:1/hook", Secret: "s", Created: at(1), Cursor: store.Cursor{Seq: 7}}
		if err := a.AddWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
		if err := a.AddWebhook(ctx, w); err == nil {
			t.Error("a second webhook with the same id was accepted")
		}
		got, err := b.Webhooks(ctx, store.ChangeFilter{})
		if err != nil || len(got) != 1 || got[0] != w {
			t.Fatalf("Webhooks = %+v %v, want [%+v]", got, err, w)
		}
		other := store.Webhook{ID: "w2", Org: "200001", URL: "http://127.0.0.1:1/other", Secret: "t", Created: at(2)}
		if err := a.AddWebhook(ctx, other); err != nil {
			t.Fatal(err)
		}
		// Only the organisation's own webhook changes.
		if ok, err := b.SetWebhookSecret(ctx, store.ChangeFilter{Org: "100001"}, "w2", "stolen"); ok || err != nil {
			t.Errorf("another organisation's secret set: %v %v", ok, err)
		}
		if ok, err := b.SetWebhookSecret(ctx, store.ChangeFilter{Org: "200001"}, "w2", "t2"); !ok || err != nil {
			t.Errorf("SetWebhookSecret = %v %v", ok, err)
		}
		if hooks, _ := a.Webhooks(ctx, store.ChangeFilter{Org: "200001"}); len(hooks) != 1 || hooks[0].Secret != "t2" {
			t.Errorf("the secret after SetWebhookSecret: %+v", hooks)
		}
		if ok, err := b.DeleteWebhook(ctx, store.ChangeFilter{Org: "200001"}, "w1"); ok || err != nil {
			t.Errorf("another organisation's webhook deleted: %v %v", ok, err)
		}
		// A tenant's webhook is its administrator's: no organisation's, and
		// the organisations' are not the tenant's.
		mine := store.Webhook{ID: "w3", Tenant: "contoso", URL: "http://127.0.0.1:1/tenant", Secret: "u", Created: at(3)}
		if err := a.AddWebhook(ctx, mine); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.SetWebhookSecret(ctx, store.ChangeFilter{Org: "100001"}, "w3", "stolen"); ok || err != nil {
			t.Errorf("an organisation set a tenant's secret: %v %v", ok, err)
		}
		if got, _ := b.Webhooks(ctx, store.ChangeFilter{Tenant: "contoso"}); len(got) != 1 || got[0] != mine {
			t.Errorf("the tenant's webhooks: %+v, want [%+v]", got, mine)
		}
		if ok, err := b.DeleteWebhook(ctx, store.ChangeFilter{Tenant: "contoso"}, "w3"); !ok || err != nil {
			t.Errorf("the tenant's webhook not deleted: %v %v", ok, err)
		}
		for org, want := range map[string]string{"": "[w1 w2]", "100001": "[w1]", "200001": "[w2]", "300001": "[]"} {
			hooks, err := b.Webhooks(ctx, store.ChangeFilter{Org: org})
			var ids []string
			for _, h := range hooks {
				ids = append(ids, h.ID)
			}
			if err != nil || fmt.Sprint(ids) != want {
				t.Errorf("Webhooks(%q) = %v %v, want %s", org, ids, err, want)
			}
		}
		if ok, err := b.DeleteWebhook(ctx, store.ChangeFilter{Org: "200001"}, "w2"); !ok || err != nil {
			t.Errorf("DeleteWebhook = %v %v", ok, err)
		}
		if hooks, _ := a.Webhooks(ctx, store.ChangeFilter{}); len(hooks) != 1 || hooks[0].ID != "w1" {
			t.Errorf("webhooks after a delete: %+v", hooks)
		}
		next := store.Cursor{Seq: 9, K: 2}
		// Of two processes claiming the same change, one wins.
		results := make(chan bool, 2)
		for _, s := range []store.Store{a, b} {
			go func() {
				ok, err := s.ClaimDelivery(ctx, "w1", w.Cursor, next)
				if err != nil {
					t.Error(err)
				}
				results <- ok
			}()
		}
		if first, second := <-results, <-results; first == second {
			t.Errorf("claims: %v and %v, want exactly one", first, second)
		}
		got, _ = a.Webhooks(ctx, store.ChangeFilter{})
		if got[0].Cursor != next {
			t.Errorf("cursor %+v, want %+v", got[0].Cursor, next)
		}
		// One process holds a webhook's lease until it expires.
		t0 := at(2)
		if ok, err := a.LeaseWebhook(ctx, "w1", "p1", t0, t0.Add(time.Minute)); !ok || err != nil {
			t.Fatalf("first lease: %v %v", ok, err)
		}
		if ok, _ := b.LeaseWebhook(ctx, "w1", "p2", t0.Add(time.Second), t0.Add(time.Minute)); ok {
			t.Error("a second process took an unexpired lease")
		}
		if ok, _ := a.LeaseWebhook(ctx, "w1", "p1", t0.Add(time.Second), t0.Add(2*time.Minute)); !ok {
			t.Error("the holder could not renew its lease")
		}
		if ok, _ := b.LeaseWebhook(ctx, "w1", "p2", t0.Add(3*time.Minute), t0.Add(4*time.Minute)); !ok {
			t.Error("a second process could not take an expired lease")
		}
		if !(store.Cursor{Seq: 9, K: 1}).Before(next) || next.Before(store.Cursor{Seq: 9, K: 2}) || !(store.Cursor{Seq: 8, K: 5}).Before(next) {
			t.Error("Cursor.Before is not the feed's order")
		}
	})

	t.Run("Consumption", func(t *testing.T) {
		open := fresh(t)
		s := open(t)
		if months, err := s.ConsumptionMonths(ctx); err != nil || len(months) != 0 {
			t.Fatalf("an empty store: months %v, %v", months, err)
		}
		if seq, last, err := s.Heads(ctx); err != nil || seq != 0 || last != 0 {
			t.Fatalf("an empty store: heads %d and %d, %v", seq, last, err)
		}
		seqs := appendAll(t, s, usage(1, "c1", "a"), usage(2, "c2", "b"))
		jan := store.Segment{Month: "2026-01", Rows: 2, Data: []byte("first"), Reported: at(20)}
		feb := store.Segment{Month: "2026-02", Rows: 1, Data: []byte{0, 1, 2}, Reported: at(20)}
		r1, r2 := store.TenantResource{Tenant: "t", Resource: "/subscriptions/s/a"}, store.TenantResource{Tenant: "t", Resource: "/subscriptions/s/b"}
		if err := s.AppendConsumption(ctx, []store.Segment{jan, feb}, []store.TenantResource{r2, r1}); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, appendAll(t, s, usage(2, "c3", "c"))...)
		jan2 := store.Segment{Month: "2026-01", Rows: 5, Data: []byte("second"), Reported: at(21)}
		// Another handle, as another process, appends the same resource
		// again: it is noted once.
		if err := open(t).AppendConsumption(ctx, []store.Segment{jan2}, []store.TenantResource{r1}); err != nil {
			t.Fatal(err)
		}
		if seq, last, err := s.Heads(ctx); err != nil || last < 3 || seq != seqs[2] {
			t.Errorf("three segments kept after record %d: heads %d and %d, %v", seqs[2], seq, last, err)
		}
		var got []store.Segment
		if err := s.ConsumptionSegments(ctx, "2026-01", func(seg store.Segment) error { got = append(got, seg); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || string(got[0].Data) != "first" || string(got[1].Data) != "second" || got[1].Rows != 5 || got[0].Month != "2026-01" {
			t.Errorf("January's segments: %+v", got)
		}
		// Each segment's place in the log is the last record when kept.
		if len(got) == 2 && (got[0].After != seqs[1] || got[1].After != seqs[2]) {
			t.Errorf("segments kept after records %d and %d, want %d and %d", got[0].After, got[1].After, seqs[1], seqs[2])
		}
		var atTwo []int64
		if err := s.ScanTenantAt(ctx, "contoso", at(2), func(r store.Record) error { atTwo = append(atTwo, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(atTwo) != fmt.Sprint(seqs[1:]) {
			t.Errorf("the records of contoso at day 2: %v, want %v", atTwo, seqs[1:])
		}
		// Compacting January's two into one keeps it under the second's
		// number; a compaction of segments gone changes nothing.
		if n, err := s.SegmentCount(ctx, "2026-01"); err != nil || n != 2 {
			t.Fatalf("January: %d segments, %v", n, err)
		}
		merged := store.Segment{Month: "2026-01", Rows: 6, Data: []byte("merged")}
		if ok, err := s.CompactConsumption(ctx, "2026-01", got[1].ID, merged); err != nil || !ok {
			t.Fatalf("compact: %v, %v", ok, err)
		}
		if ok, err := s.CompactConsumption(ctx, "2026-01", got[0].ID, merged); err != nil || ok {
			t.Errorf("compacting up to a segment gone: %v, %v", ok, err)
		}
		got = nil
		if err := s.ConsumptionSegments(ctx, "2026-01", func(seg store.Segment) error { got = append(got, seg); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || string(got[0].Data) != "merged" || got[0].Rows != 6 {
			t.Errorf("January compacted: %+v", got)
		}
		// What came in by the day it was reported, compaction or not.
		if days, err := s.ConsumptionDays(ctx, "2026-01-20", "2026-01-31"); err != nil || fmt.Sprint(days) != "map[2026-01-20:3 2026-01-21:5]" {
			t.Errorf("consumption days: %v, %v", days, err)
		}
		if months, err := s.ConsumptionMonths(ctx); err != nil || fmt.Sprint(months) != "[2026-01 2026-02]" {
			t.Errorf("months %v, %v", months, err)
		}
		var res []store.TenantResource
		var ids []int64
		if err := s.ConsumptionResources(ctx, 0, func(id int64, r store.TenantResource) error {
			res, ids = append(res, r), append(ids, id)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(res) != fmt.Sprint([]store.TenantResource{r2, r1}) || len(ids) != 2 || ids[0] >= ids[1] {
			t.Fatalf("resources %v, numbered %v", res, ids)
		}
		r3 := store.TenantResource{Tenant: "u", Resource: "/subscriptions/s/c"}
		if err := s.AppendConsumption(ctx, nil, []store.TenantResource{r1, r3}); err != nil {
			t.Fatal(err)
		}
		res = nil
		if err := s.ConsumptionResources(ctx, ids[1], func(_ int64, r store.TenantResource) error { res = append(res, r); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(res) != fmt.Sprint([]store.TenantResource{r3}) {
			t.Errorf("resources after %d: %v", ids[1], res)
		}
	})

	t.Run("ConcurrentWritersOnTwoHandles", func(t *testing.T) {
		open := fresh(t)
		handles := []store.Store{open(t), open(t)}
		const writers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := handles[g%2]
				for i := range each {
					err := s.Write(ctx, func(w store.Writer) error {
						// Catching up inside the lock sees every commit.
						var seen int64
						if err := w.Scan(ctx, 0, func(r store.Record) error { seen = r.Seq; return nil }); err != nil {
							return err
						}
						seqs, err := w.Append(ctx, []*event.Event{usage(1+i%28, fmt.Sprintf("w%d-%d", g, i), "u")})
						if err != nil {
							return err
						}
						if seq := seqs[0]; seq != seen+1 {
							return fmt.Errorf("appended at %d right after seeing %d: another writer got in between", seq, seen)
						}
						return nil
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		recs := all(t, handles[1], false)
		if len(recs) != writers*each {
			t.Fatalf("%d records, want %d", len(recs), writers*each)
		}
		for i, r := range recs {
			if r.Seq != int64(i+1) {
				t.Fatalf("record %d has sequence number %d: gap or reorder", i, r.Seq)
			}
		}
	})
}

// Backend is a backend the suites run against: fresh returns an opener of
// a new, empty database.
type Backend struct {
	Name  string
	Fresh func(t *testing.T) Opener
}

// Backends are SQLite, always, and PostgreSQL, whose tests are skipped
// (saying why) when PAL_TEST_POSTGRES_URL is not set.
func Backends() []Backend {
	opener := func(open func(context.Context, string) (store.Store, error), name func(t *testing.T) string) func(t *testing.T) Opener {
		return func(t *testing.T) Opener {
			db := name(t)
			return func(t *testing.T) store.Store {
				s, err := open(context.Background(), db)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		}
	}
	return []Backend{
		{"sqlite", opener(func(ctx context.Context, path string) (store.Store, error) { return sqlite.Open(ctx, path) },
			func(t *testing.T) string { return filepath.Join(t.TempDir(), "pal.db") })},
		{"postgres", opener(func(ctx context.Context, url string) (store.Store, error) { return postgres.Open(ctx, url) },
			func(t *testing.T) string { return pgtest.Database(t) })},
	}
}
