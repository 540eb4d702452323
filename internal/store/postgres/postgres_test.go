package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/store/storetest"
)

func TestStore(t *testing.T) { storetest.Exercise(t, storetest.Backends()[1].Fresh) }

// TestStoreInSmallPages: the store's contract holds when a scan of the log
// takes many queries, one a page.
func TestStoreInSmallPages(t *testing.T) {
	defer postgres.SetScanPage(7)()
	storetest.Exercise(t, storetest.Backends()[1].Fresh)
}

// appendLines stores each line in a write of its own, and returns their
// sequence numbers.
func appendLines(t *testing.T, st *postgres.Store, lines ...string) []int64 {
	t.Helper()
	ctx := context.Background()
	var seqs []int64
	for i, line := range lines {
		ev, rf := event.Decode([]byte(line), i+1)
		if rf != nil {
			t.Fatal(rf)
		}
		err := st.Write(ctx, func(w store.Writer) error {
			got, err := w.Append(ctx, []*event.Event{ev})
			seqs = append(seqs, got...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return seqs
}

func environment(tenant string) string {
	return `{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"` + tenant + `","environment":"prod","env_type":"production"}`
}

// TestTenantsOfBuckets: the tenants listed for some buckets after a record
// are those of the buckets whose first record is after it, each once, in
// order; a tenant stored before the number of buckets was fixed is listed
// by its bucket too, and one of a write rolled back not at all.
func TestTenantsOfBuckets(t *testing.T) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 4
	// Two tenants a bucket, the first of each stored before the buckets
	// were fixed.
	names := map[int][]string{}
	for k := 0; len(names) < n || slices.ContainsFunc(slices.Collect(maps.Values(names)), func(ts []string) bool { return len(ts) < 2 }); k++ {
		tenant := fmt.Sprintf("t%d", k)
		if b := store.Bucket(tenant, n); len(names[b]) < 2 {
			names[b] = append(names[b], tenant)
		}
	}
	var before []int64
	for b := range n {
		before = append(before, appendLines(t, st, environment(names[b][0]))...)
	}
	if got, err := st.SetBuckets(ctx, n); err != nil || got != n {
		t.Fatalf("SetBuckets: %d, %v", got, err)
	}
	appendLines(t, st, `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`)
	var after []int64
	for b := range n {
		after = append(after, appendLines(t, st, environment(names[b][1]), environment(names[b][0]))...)
	}
	rolledBack := errors.New("rolled back")
	err = st.Write(ctx, func(w store.Writer) error {
		ev, _ := event.Decode([]byte(environment("gone")), 1)
		if _, err := w.Append(ctx, []*event.Event{ev}); err != nil {
			return err
		}
		return rolledBack
	})
	if !errors.Is(err, rolledBack) {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		buckets []int
		after   int64
		want    []string
	}{
		{[]int{0, 1, 2, 3}, 0, slices.Sorted(slices.Values(slices.Concat(names[0], names[1], names[2], names[3])))},
		{[]int{1}, 0, slices.Sorted(slices.Values(names[1]))},
		{[]int{2, 0}, 0, slices.Sorted(slices.Values(slices.Concat(names[0], names[2])))},
		// The first tenants' later records do not make them new.
		{[]int{0, 1, 2, 3}, before[n-1], slices.Sorted(slices.Values([]string{names[0][1], names[1][1], names[2][1], names[3][1]}))},
		{[]int{3}, after[2*n-1], nil},
		{nil, 0, nil},
	} {
		got, err := st.Tenants(ctx, tt.buckets, tt.after)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("tenants of %v after %d: %q, %v; want %q", tt.buckets, tt.after, got, err, tt.want)
		}
	}
}

// TestTenantsOfALogStoredBefore: a log stored before the tenants were
// noted has them noted when the store is opened, by their first records.
func TestTenantsOfALogStoredBefore(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Database(t)
	restore := postgres.MigrateUpTo("014_bucket_log.sql")
	old, err := postgres.Open(ctx, db)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := old.SetBuckets(ctx, 2); err != nil || got != 2 {
		t.Fatalf("SetBuckets: %d, %v", got, err)
	}
	old.Close()
	// Rows as that version wrote them: one before the buckets were fixed
	// (no bucket), then with their buckets.
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `INSERT INTO events (seq, type, time_ns, tenant, body, bucket) VALUES
		(1, 'environment.created', 0, 'a', '{}', NULL),
		(2, 'partner.registered', 0, '', '{}', NULL),
		(3, 'environment.created', 0, 'b', '{}', $1),
		(4, 'environment.created', 0, 'a', '{}', $2)`, store.Bucket("b", 2), store.Bucket("a", 2))
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tt := range []struct {
		after int64
		want  []string
	}{{0, []string{"a", "b"}}, {1, []string{"b"}}, {3, nil}} {
		if got, err := st.Tenants(ctx, []int{0, 1}, tt.after); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("tenants after %d: %q, %v; want %q", tt.after, got, err, tt.want)
		}
	}
}

// TestTenantsOfAnOlderWriter: a process of a version that predates the
// table of tenants, still running after the migration, appends records
// without noting their tenants; the database notes them all the same,
// for a statement of rows as for a COPY.
func TestTenantsOfAnOlderWriter(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Database(t)
	st, err := postgres.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.SetBuckets(ctx, 2); err != nil || got != 2 {
		t.Fatalf("SetBuckets: %d, %v", got, err)
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	bucket := func(tenant string) *int32 {
		b := int32(store.Bucket(tenant, 2))
		return &b
	}
	// The older version's append of a few rows, as it wrote it.
	_, err = conn.Exec(ctx, `WITH appended AS (INSERT INTO events (seq, id, type, time_ns, tenant, body, bucket)
			SELECT * FROM unnest($3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::integer[]))
			INSERT INTO log_days (day, events) SELECT * FROM unnest($1::text[], $2::bigint[])
		ON CONFLICT (day) DO UPDATE SET events = log_days.events + excluded.events`,
		[]string{"1970-01-01"}, []int64{2}, []int64{1, 2}, []*string{nil, nil}, []string{"environment.created", "environment.created"}, []int64{0, 0},
		[]string{"old", "older"}, []string{"{}", "{}"}, []*int32{bucket("old"), bucket("older")})
	if err != nil {
		t.Fatal(err)
	}
	// And its COPY of many.
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"seq", "type", "time_ns", "tenant", "body", "bucket"},
		pgx.CopyFromRows([][]any{{int64(3), "environment.created", int64(0), "copied", "{}", bucket("copied")}}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.Tenants(ctx, []int{0, 1}, 0); err != nil || !slices.Equal(got, []string{"copied", "old", "older"}) {
		t.Errorf("tenants: %q, %v; want those the older version stored", got, err)
	}
	if got, err := st.Tenants(ctx, []int{0, 1}, 2); err != nil || !slices.Equal(got, []string{"copied"}) {
		t.Errorf("tenants after record 2: %q, %v; want the copied one", got, err)
	}
}
