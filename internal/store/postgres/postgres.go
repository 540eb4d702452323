package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// writeLock is the advisory lock key of the log's writers.
const writeLock = 0x70616c // "pal"

// Store is a store in a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database at url (postgres://…; query parameters
// such as search_path are passed to the server) and brings its schema up to
// date.
func Open(ctx context.Context, url string) (*Store, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return s, nil
}

// migrateUpTo, when set (by tests), is the last migration applied.
var migrateUpTo string

func (s *Store) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		names, err := fs.Glob(migrations, "migrations/*.sql")
		if err != nil {
			return err
		}
		slices.Sort(names)
		if migrateUpTo != "" {
			names = names[:slices.Index(names, "migrations/"+migrateUpTo)+1]
		}
		for _, name := range names {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, name).Scan(&n); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			if n > 0 {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("migrate %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, name); err != nil {
				return fmt.Errorf("migrate %s: %w", name, err)
			}
		}
		return nil
	})
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func scan(ctx context.Context, q querier, query string, fn func(store.Record) error, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("scan log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var body string
		if err := rows.Scan(&seq, &body); err != nil {
			return fmt.Errorf("scan log: %w", err)
		}
		ev, rf := event.Decode([]byte(body), 0)
		if rf != nil {
			return fmt.Errorf("scan log: record %d does not decode: %v", seq, rf)
		}
		if err := fn(store.Record{Seq: seq, Event: ev}); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Scan calls fn with the records after seq, in sequence order.
func (s *Store) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	return scanLog(ctx, s.pool, after, fn)
}

// scanPage is how many records a scan of the log asks of one query. A
// reader that stops early (a start folds the log a chunk at a time) leaves
// at most a page unread, which the connection still receives and drops:
// with one query, that was the rest of the log, at every chunk.
var scanPage = 10_000

// scanLog calls fn with the records after seq, in sequence order, a page
// a query.
func scanLog(ctx context.Context, q querier, after int64, fn func(store.Record) error) error {
	return scanPages(ctx, q, `SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, fn)
}

// scanPages calls fn with the records query gives after seq, in sequence
// order, a page a query: query takes the last record read as $1, then
// args, then the page's size.
func scanPages(ctx context.Context, q querier, query string, after int64, fn func(store.Record) error, args ...any) error {
	for {
		n := 0
		err := scan(ctx, q, query, func(r store.Record) error {
			n++
			after = r.Seq
			return fn(r)
		}, append(append([]any{after}, args...), scanPage)...)
		if err != nil || n < scanPage {
			return err
		}
	}
}

// ScanFollowing calls fn with the records after seq that f names, and
// those of no bucket, in sequence order.
func (s *Store) ScanFollowing(ctx context.Context, after int64, f store.Following, fn func(store.Record) error) (int64, error) {
	return scanFollowing(ctx, s.pool, after, f, fn)
}

// scanFollowing reads the log's last sequence number first: its writers
// hold one lock, so every record up to it is committed, and is read a
// page a query as scanLog reads.
func scanFollowing(ctx context.Context, q querier, after int64, f store.Following, fn func(store.Record) error) (int64, error) {
	var horizon int64
	if err := q.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&horizon); err != nil {
		return 0, fmt.Errorf("scan log: %w", err)
	}
	held := f.Held
	if f.Buckets == 0 {
		held = nil
	}
	err := scanPages(ctx, q, `SELECT seq, body FROM events WHERE seq > $1 AND seq <= $2
		AND (bucket IS NULL OR bucket = ANY($3) OR tenant = ANY($4) OR type = $5) ORDER BY seq LIMIT $6`,
		after, fn, horizon, held, f.Tenants, event.AzureRoleAssigned)
	if err != nil {
		return 0, err
	}
	return horizon, nil
}

// LogDays counts the records by the day of their time.
func (s *Store) LogDays(ctx context.Context) (map[string]int, error) {
	return s.dayCounts(ctx, "days of the log", `SELECT day, events FROM log_days`)
}

// dayCounts returns the counts a query gives by day, its rows a day and a
// count; what names them in its errors.
func (s *Store) dayCounts(ctx context.Context, what, query string, args ...any) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make(map[string]int)
	var day string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&day, &n}, func() error { out[day] = int(n); return nil }); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

const scanTenant = `SELECT seq, body FROM events WHERE tenant = $1 ORDER BY time_ns, seq`

const scanTenantBetween = `SELECT seq, body FROM events WHERE tenant = $1 AND time_ns >= $2 AND time_ns < $3 ORDER BY time_ns, seq`

// scanTenantState reads through events_state_by_tenant, whose condition it
// repeats word for word so that the planner may use it.
const scanTenantState = `SELECT seq, body FROM events WHERE tenant = $1 AND type NOT IN ('usage', 'profiles') ORDER BY time_ns, seq`

// ScanTenant calls fn with one tenant's records in time order.
func (s *Store) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return scan(ctx, s.pool, scanTenant, fn, tenant)
}

// ScanTenantState calls fn with one tenant's records that make its state,
// in time order.
func (s *Store) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return scan(ctx, s.pool, scanTenantState, fn, tenant)
}

// ScanTenantBetween calls fn with one tenant's records at or after from
// and before to (zero: no end), in time order.
func (s *Store) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	return scan(ctx, s.pool, scanTenantBetween, fn, tenant, from.UnixNano(), store.EndNanos(to))
}

// ScanTenantAt calls fn with one tenant's records at an instant, in
// sequence order.
func (s *Store) ScanTenantAt(ctx context.Context, tenant string, at time.Time, fn func(store.Record) error) error {
	return scan(ctx, s.pool, `SELECT seq, body FROM events WHERE tenant = $1 AND time_ns = $2 ORDER BY seq`, fn, tenant, at.UnixNano())
}

// TenantLog calls fn with one tenant's records and the directory's
// registrations in sequence order.
func (s *Store) TenantLog(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return scan(ctx, s.pool, `SELECT seq, body FROM events WHERE tenant = $1 OR (tenant = '' AND type = $2) ORDER BY seq`, fn, tenant, event.PartnerRegistered)
}

// LastSeq returns the last sequence number, 0 when the log is empty.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq *int64
	if err := s.pool.QueryRow(ctx, `SELECT max(seq) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last seq: %w", err)
	}
	if seq == nil {
		return 0, nil
	}
	return *seq, nil
}

// writer appends inside a transaction that holds the log's lock: no one
// else appends meanwhile, so it knows the log's last sequence number once
// it has read it, and the ids it added. The rows it appends are sent in
// one COPY when something reads the log or the transaction ends.
type writer struct {
	tx      pgx.Tx
	last    int64
	read    bool            // whether last was read
	buckets int             // the number of buckets, 0 when not fixed
	ids     map[string]bool // ids known to be in the log, and added
	pending rows
}

// rows are events to add, column by column, and how many a day.
type rows struct {
	seq, time         []int64
	id                []*string
	typ, tenant, body []string
	bucket            []*int32
	days              map[string]int
}

func (r *rows) add(seq int64, ev *event.Event, buckets int) {
	var id *string
	if ev.ID != "" {
		id = &ev.ID
	}
	var bucket *int32
	if buckets > 0 && ev.Tenant != "" {
		b := int32(store.Bucket(ev.Tenant, buckets))
		bucket = &b
	}
	r.seq, r.time, r.id = append(r.seq, seq), append(r.time, ev.Time.UnixNano()), append(r.id, id)
	r.typ, r.tenant, r.body = append(r.typ, ev.Type), append(r.tenant, ev.Tenant), append(r.body, string(ev.AppendJSON(nil)))
	r.bucket = append(r.bucket, bucket)
	if r.days == nil {
		r.days = make(map[string]int)
	}
	r.days[ev.Time.UTC().Format(time.DateOnly)]++
}

func (r *rows) row(i int) ([]any, error) {
	return []any{r.seq[i], r.id[i], r.typ[i], r.time[i], r.tenant[i], r.body[i], r.bucket[i]}, nil
}

// copyRows is the number of rows from which a COPY beats one INSERT of
// arrays: COPY costs two round trips, the INSERT one.
const copyRows = 100

// flush sends the appended rows.
func (w *writer) flush(ctx context.Context) error {
	p := &w.pending
	n := len(p.seq)
	if n == 0 {
		return nil
	}
	days, counts := make([]string, 0, len(p.days)), make([]int64, 0, len(p.days))
	for d, c := range p.days {
		days, counts = append(days, d), append(counts, int64(c))
	}
	// The tenants of the rows, each with its first: those new to the log
	// are noted in tenants (015_tenants.sql).
	var tenants []string
	var buckets []*int32
	var firsts []int64
	seen := make(map[string]bool)
	for i, t := range p.tenant {
		if t != "" && !seen[t] {
			seen[t] = true
			tenants, buckets, firsts = append(tenants, t), append(buckets, p.bucket[i]), append(firsts, p.seq[i])
		}
	}
	const noteTenants = `noted AS (INSERT INTO tenants (tenant, bucket, first_seq)
		SELECT * FROM unnest($3::text[], $4::integer[], $5::bigint[]) ON CONFLICT (tenant) DO NOTHING)
		`
	const countDays = `INSERT INTO log_days (day, events) SELECT * FROM unnest($1::text[], $2::bigint[])
		ON CONFLICT (day) DO UPDATE SET events = log_days.events + excluded.events`
	var err error
	if n >= copyRows {
		_, err = w.tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"seq", "id", "type", "time_ns", "tenant", "body", "bucket"}, pgx.CopyFromSlice(n, p.row))
		if err == nil {
			_, err = w.tx.Exec(ctx, `WITH `+noteTenants+countDays, days, counts, tenants, buckets, firsts)
		}
	} else {
		// One round trip, with the tenants noted and the days counted,
		// while the log is locked.
		_, err = w.tx.Exec(ctx, `WITH appended AS (INSERT INTO events (seq, id, type, time_ns, tenant, body, bucket)
			SELECT * FROM unnest($6::bigint[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::integer[])),
			`+noteTenants+countDays, days, counts, tenants, buckets, firsts, p.seq, p.id, p.typ, p.time, p.tenant, p.body, p.bucket)
	}
	w.pending = rows{}
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	return nil
}

func (w *writer) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	if err := w.flush(ctx); err != nil {
		return err
	}
	return scanLog(ctx, w.tx, after, fn)
}

func (w *writer) ScanFollowing(ctx context.Context, after int64, f store.Following, fn func(store.Record) error) (int64, error) {
	if err := w.flush(ctx); err != nil {
		return 0, err
	}
	return scanFollowing(ctx, w.tx, after, f, fn)
}

func (w *writer) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	if err := w.flush(ctx); err != nil {
		return err
	}
	return scan(ctx, w.tx, scanTenant, fn, tenant)
}

func (w *writer) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	if err := w.flush(ctx); err != nil {
		return err
	}
	return scan(ctx, w.tx, scanTenantState, fn, tenant)
}

func (w *writer) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	if err := w.flush(ctx); err != nil {
		return err
	}
	return scan(ctx, w.tx, scanTenantBetween, fn, tenant, from.UnixNano(), store.EndNanos(to))
}

// Append finds which of the events' ids the log holds, and the log's last
// sequence number the first time, in one query (none when it knows both),
// and keeps the rows for the next COPY.
func (w *writer) Append(ctx context.Context, events []*event.Event) ([]int64, error) {
	var ids []string
	for _, ev := range events {
		if ev.ID != "" && !w.ids[ev.ID] {
			ids = append(ids, ev.ID)
		}
	}
	if !w.read || len(ids) > 0 {
		var last int64
		var buckets int
		var found []string
		err := w.tx.QueryRow(ctx, `SELECT coalesce((SELECT max(seq) FROM events), 0),
			coalesce((SELECT buckets FROM bucket_count), 0),
			coalesce((SELECT array_agg(id) FROM events WHERE id = ANY($1)), '{}')`, ids).Scan(&last, &buckets, &found)
		if err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		if !w.read {
			w.last, w.buckets, w.read = last, buckets, true
		}
		for _, id := range found {
			w.ids[id] = true
		}
	}
	dup := store.Duplicates(events, w.ids)
	seqs := make([]int64, len(events))
	for i, ev := range events {
		if dup[i] {
			continue
		}
		w.last++
		seqs[i] = w.last
		w.pending.add(w.last, ev, w.buckets)
	}
	return seqs, nil
}

// FileChanges adds the changes and the organisations they concern in one
// statement.
func (w *writer) FileChanges(ctx context.Context, changes []store.FiledChange) error {
	if err := w.flush(ctx); err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	var seqs, orgSeqs, ks, orgKs []int64
	var tenants, bodies, orgs []string
	for _, c := range changes {
		seqs, ks, tenants, bodies = append(seqs, c.At.Seq), append(ks, int64(c.At.K)), append(tenants, c.Tenant), append(bodies, string(c.Body))
		for _, org := range c.Orgs {
			orgs, orgSeqs, orgKs = append(orgs, org), append(orgSeqs, c.At.Seq), append(orgKs, int64(c.At.K))
		}
	}
	_, err := w.tx.Exec(ctx, `WITH filed AS (
			INSERT INTO changes (seq, k, tenant, body) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[])
		)
		INSERT INTO change_orgs (org, seq, k) SELECT * FROM unnest($5::text[], $6::bigint[], $7::bigint[])`,
		seqs, ks, tenants, bodies, orgs, orgSeqs, orgKs)
	if err != nil {
		return fmt.Errorf("file changes: %w", err)
	}
	return nil
}

// Changes calls fn with the filed changes after the cursor that match f.
func (s *Store) Changes(ctx context.Context, f store.ChangeFilter, after store.Cursor, limit int, fn func(store.FiledChange) error) error {
	var rows pgx.Rows
	var err error
	switch {
	case f.Org != "":
		rows, err = s.pool.Query(ctx, `SELECT c.seq, c.k, c.tenant, c.body FROM change_orgs o JOIN changes c ON c.seq = o.seq AND c.k = o.k
			WHERE o.org = $1 AND ($5 = '' OR c.tenant = $5) AND (o.seq, o.k) > ($2, $3) ORDER BY o.seq, o.k LIMIT $4`, f.Org, after.Seq, after.K, limit, f.Tenant)
	case f.Tenant != "":
		rows, err = s.pool.Query(ctx, `SELECT seq, k, tenant, body FROM changes
			WHERE tenant = $1 AND (seq, k) > ($2, $3) ORDER BY seq, k LIMIT $4`, f.Tenant, after.Seq, after.K, limit)
	default:
		rows, err = s.pool.Query(ctx, `SELECT seq, k, tenant, body FROM changes
			WHERE (seq, k) > ($1, $2) ORDER BY seq, k LIMIT $3`, after.Seq, after.K, limit)
	}
	if err != nil {
		return fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c store.FiledChange
		var body string
		if err := rows.Scan(&c.At.Seq, &c.At.K, &c.Tenant, &body); err != nil {
			return fmt.Errorf("read changes: %w", err)
		}
		c.Body = []byte(body)
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Write runs fn in a transaction that holds the log's advisory lock. The
// transaction says that it notes the tenants it appends itself, which the
// database would otherwise note row by row (015_tenants.sql).
func (s *Store) Write(ctx context.Context, fn func(store.Writer) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1), set_config('pal.tenants_noted', 'on', true)`, writeLock); err != nil {
			return fmt.Errorf("lock log: %w", err)
		}
		w := &writer{tx: tx, ids: make(map[string]bool)}
		if err := fn(w); err != nil {
			return err
		}
		return w.flush(ctx)
	})
}

// SaveSnapshot replaces the snapshot.
func (s *Store) SaveSnapshot(ctx context.Context, seq int64, data []byte) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO snapshot (one, seq, data) VALUES (1, $1, $2) ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, data = excluded.data WHERE snapshot.seq <= excluded.seq`, seq, data)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	return nil
}

// LoadSnapshot returns the snapshot, or store.ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT seq, data FROM snapshot WHERE one = 1`).Scan(&seq, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, store.ErrNotFound
	}
	if err != nil {
		return 0, nil, fmt.Errorf("load snapshot: %w", err)
	}
	return seq, data, nil
}

// AddToken stores a token's grant and life under its hash.
func (s *Store) AddToken(ctx context.Context, hash string, t store.Token) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tokens (hash, id, role, tenant, account, org, created_ns, expires_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		hash, t.ID, t.Role, t.Tenant, t.Account, t.Org, t.Created.UnixNano(), t.Expires.UnixNano())
	if err != nil {
		return fmt.Errorf("add token: %w", err)
	}
	return nil
}

const tokenColumns = `id, role, tenant, account, org, created_ns, expires_ns, revoked, last_used_ns`

// scanToken reads a row of tokenColumns.
func scanToken(row interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var created, expires, used int64
	if err := row.Scan(&t.ID, &t.Role, &t.Tenant, &t.Account, &t.Org, &created, &expires, &t.Revoked, &used); err != nil {
		return t, err
	}
	t.Created, t.Expires = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	if used != 0 {
		t.LastUsed = time.Unix(0, used).UTC()
	}
	return t, nil
}

// Token returns the grant of the token with this hash.
func (s *Store) Token(ctx context.Context, hash string) (store.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// Tokens lists every token, by creation.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_ns, id`)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes the token called id.
func (s *Store) RevokeToken(ctx context.Context, id string) (bool, error) {
	res, err := s.pool.Exec(ctx, `UPDATE tokens SET revoked = true WHERE id = $1`, id)
	if err != nil {
		return false, fmt.Errorf("revoke token: %w", err)
	}
	return res.RowsAffected() == 1, nil
}

// TokenUsed notes when a token was used.
func (s *Store) TokenUsed(ctx context.Context, hash string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE tokens SET last_used_ns = $1 WHERE hash = $2`, at.UnixNano(), hash); err != nil {
		return fmt.Errorf("note token use: %w", err)
	}
	return nil
}

// AddWebhook registers a webhook.
func (s *Store) AddWebhook(ctx context.Context, w store.Webhook) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webhooks (id, org, tenant, url, secret, created_ns, cursor_seq, cursor_k) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		w.ID, w.Org, w.Tenant, w.URL, w.Secret, w.Created.UnixNano(), w.Cursor.Seq, w.Cursor.K)
	if err != nil {
		return fmt.Errorf("add webhook: %w", err)
	}
	return nil
}

// Webhooks lists the webhooks of an owner, or all of them when owner is
// empty, oldest first.
func (s *Store) Webhooks(ctx context.Context, owner store.ChangeFilter) ([]store.Webhook, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, org, tenant, url, secret, created_ns, cursor_seq, cursor_k FROM webhooks
		WHERE ($1 = '' AND $2 = '') OR (org = $1 AND tenant = $2) ORDER BY created_ns, id`, owner.Org, owner.Tenant)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	defer rows.Close()
	var out []store.Webhook
	for rows.Next() {
		var w store.Webhook
		var created int64
		if err := rows.Scan(&w.ID, &w.Org, &w.Tenant, &w.URL, &w.Secret, &created, &w.Cursor.Seq, &w.Cursor.K); err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		w.Created = time.Unix(0, created).UTC()
		out = append(out, w)
	}
	return out, rows.Err()
}

// DeleteWebhook removes an owner's webhook.
func (s *Store) DeleteWebhook(ctx context.Context, owner store.ChangeFilter, id string) (bool, error) {
	res, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE org = $1 AND tenant = $2 AND id = $3`, owner.Org, owner.Tenant, id)
	if err != nil {
		return false, fmt.Errorf("delete webhook: %w", err)
	}
	return res.RowsAffected() == 1, nil
}

// SetWebhookSecret replaces the secret of an owner's webhook.
func (s *Store) SetWebhookSecret(ctx context.Context, owner store.ChangeFilter, id, secret string) (bool, error) {
	res, err := s.pool.Exec(ctx, `UPDATE webhooks SET secret = $1 WHERE org = $2 AND tenant = $3 AND id = $4`, secret, owner.Org, owner.Tenant, id)
	if err != nil {
		return false, fmt.Errorf("set webhook secret: %w", err)
	}
	return res.RowsAffected() == 1, nil
}

// ClaimDelivery moves a webhook's cursor when it is at from.
func (s *Store) ClaimDelivery(ctx context.Context, id string, from, to store.Cursor) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE webhooks SET cursor_seq = $1, cursor_k = $2 WHERE id = $3 AND cursor_seq = $4 AND cursor_k = $5`,
		to.Seq, to.K, id, from.Seq, from.K)
	if err != nil {
		return false, fmt.Errorf("claim delivery: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// LeaseWebhook takes or renews the delivery lease of a webhook.
func (s *Store) LeaseWebhook(ctx context.Context, id, owner string, now, until time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE webhooks SET lease_owner = $1, lease_until_ns = $2 WHERE id = $3 AND (lease_owner = $1 OR lease_until_ns < $4)`,
		owner, until.UnixNano(), id, now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("lease webhook: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// consumptionLock is the advisory lock that AppendConsumption holds.
const consumptionLock = writeLock + 1

// AppendConsumption keeps segments and notes the resources they concern,
// in one transaction.
func (s *Store) AppendConsumption(ctx context.Context, segments []store.Segment, resources []store.TenantResource) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One noter at a time, so that resources are numbered in the
		// order their transactions commit: a process that read up to a
		// number misses none below it. And the log's writers' lock, so
		// that no record is appended between the log's last one read here
		// and the commit: the segments' place in the log.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, consumptionLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
			return err
		}
		var after int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&after); err != nil {
			return err
		}
		for _, seg := range segments {
			if _, err := tx.Exec(ctx, `INSERT INTO consumption_segments (month, rows, data, after_seq) VALUES ($1, $2, $3, $4)`, seg.Month, seg.Rows, seg.Data, after); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO consumption_days (day, rows) VALUES ($1, $2) ON CONFLICT (day) DO UPDATE SET rows = consumption_days.rows + excluded.rows`,
				seg.Reported.UTC().Format(time.DateOnly), seg.Rows); err != nil {
				return err
			}
		}
		if len(resources) == 0 {
			return nil
		}
		tenants, paths := make([]string, len(resources)), make([]string, len(resources))
		for i, r := range resources {
			tenants[i], paths[i] = r.Tenant, r.Resource
		}
		_, err := tx.Exec(ctx, `INSERT INTO consumption_resources (tenant, resource) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`, tenants, paths)
		return err
	})
	if err != nil {
		return fmt.Errorf("append consumption: %w", err)
	}
	return nil
}

// ConsumptionSegments calls fn with the segments of a month, oldest first.
func (s *Store) ConsumptionSegments(ctx context.Context, month string, fn func(store.Segment) error) error {
	rows, err := s.pool.Query(ctx, `SELECT id, month, rows, data, after_seq FROM consumption_segments WHERE month = $1 ORDER BY id`, month)
	if err != nil {
		return fmt.Errorf("consumption segments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seg store.Segment
		if err := rows.Scan(&seg.ID, &seg.Month, &seg.Rows, &seg.Data, &seg.After); err != nil {
			return fmt.Errorf("consumption segments: %w", err)
		}
		if err := fn(seg); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ConsumptionResources calls fn with the resources noted after number
// after, in the order they were noted.
func (s *Store) ConsumptionResources(ctx context.Context, after int64, fn func(int64, store.TenantResource) error) error {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant, resource FROM consumption_resources WHERE id > $1 ORDER BY id`, after)
	if err != nil {
		return fmt.Errorf("consumption resources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var r store.TenantResource
		if err := rows.Scan(&id, &r.Tenant, &r.Resource); err != nil {
			return fmt.Errorf("consumption resources: %w", err)
		}
		if err := fn(id, r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ConsumptionMonths returns the months that have segments, oldest first.
func (s *Store) ConsumptionMonths(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT month FROM consumption_segments ORDER BY month`)
	if err != nil {
		return nil, fmt.Errorf("consumption months: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("consumption months: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Heads returns the last record's sequence number and the last segment's
// number, in one question.
func (s *Store) Heads(ctx context.Context) (seq, segment int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT coalesce((SELECT max(seq) FROM events), 0), coalesce((SELECT max(id) FROM consumption_segments), 0)`).Scan(&seq, &segment)
	if err != nil {
		return 0, 0, fmt.Errorf("heads: %w", err)
	}
	return seq, segment, nil
}

// SegmentCount returns how many segments a month has.
func (s *Store) SegmentCount(ctx context.Context, month string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM consumption_segments WHERE month = $1`, month).Scan(&n); err != nil {
		return 0, fmt.Errorf("segment count: %w", err)
	}
	return n, nil
}

// CompactConsumption replaces a month's segments up to last with merged,
// under number last.
func (s *Store) CompactConsumption(ctx context.Context, month string, last int64, merged store.Segment) (bool, error) {
	done := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE consumption_segments SET rows = $1, data = $2 WHERE id = $3 AND month = $4`, merged.Rows, merged.Data, last, month)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM consumption_segments WHERE month = $1 AND id < $2`, month, last); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("compact consumption: %w", err)
	}
	return done, nil
}

// ConsumptionDays returns the records kept from day first to day last, by
// the day they were reported.
func (s *Store) ConsumptionDays(ctx context.Context, first, last string) (map[string]int, error) {
	return s.dayCounts(ctx, "consumption days", `SELECT day, rows FROM consumption_days WHERE day >= $1 AND day <= $2`, first, last)
}
