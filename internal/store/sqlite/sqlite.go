package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store in one SQLite file.
type Store struct {
	db *sql.DB
	// inserts holds the prepared INSERTs of 1000, 100, 10 and 1 rows, in
	// which Append writes any number of events.
	inserts map[int]*sql.Stmt
}

// Open opens (creating it if need be) the SQLite file at path and brings
// its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// Temporary tables and journals in memory, not in files written page
	// by page; and a page cache of 64 MiB, which holds the index of a
	// million events' tenants.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "cache_size(-65536)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, inserts: make(map[int]*sql.Stmt)}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	for _, n := range insertSizes {
		// OR FAIL: duplicates were filtered under the write lock, so a
		// failing row fails the transaction, and SQLite keeps no
		// statement journal to undo the statement alone.
		stmt, err := db.PrepareContext(ctx, `INSERT OR FAIL INTO events (seq, id, type, time_ns, tenant, body) VALUES (?, ?, ?, ?, ?, ?)`+strings.Repeat(`, (?, ?, ?, ?, ?, ?)`, n-1))
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		s.inserts[n] = stmt
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, name).Scan(&n); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, name); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return tx.Commit()
}

// Close closes the database.
func (s *Store) Close() error {
	for _, stmt := range s.inserts {
		stmt.Close()
	}
	return s.db.Close()
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func scan(ctx context.Context, q querier, query string, fn func(store.Record) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("scan log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return fmt.Errorf("scan log: %w", err)
		}
		ev, rf := event.Decode(body, 0)
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
	return scan(ctx, s.db, `SELECT seq, body FROM events WHERE seq > ? ORDER BY seq`, fn, after)
}

// ScanFollowing calls fn with every record after seq, in sequence order:
// one process serves an SQLite store, and folds every tenant.
func (s *Store) ScanFollowing(ctx context.Context, after int64, _ store.Following, fn func(store.Record) error) (int64, error) {
	return scanFollowing(ctx, s.db, after, fn)
}

// scanFollowing reads the log's last sequence number first, and the
// records up to it: its writers take one lock, so each is committed.
func scanFollowing(ctx context.Context, q querier, after int64, fn func(store.Record) error) (int64, error) {
	var horizon int64
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&horizon); err != nil {
		return 0, fmt.Errorf("scan log: %w", err)
	}
	if err := scan(ctx, q, `SELECT seq, body FROM events WHERE seq > ? AND seq <= ? ORDER BY seq`, fn, after, horizon); err != nil {
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
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var day string
		var n int
		if err := rows.Scan(&day, &n); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out[day] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

const scanTenant = `SELECT seq, body FROM events WHERE tenant = ? ORDER BY time_ns, seq`

const scanTenantBetween = `SELECT seq, body FROM events WHERE tenant = ? AND time_ns >= ? AND time_ns < ? ORDER BY time_ns, seq`

// scanTenantState reads through events_state_by_tenant, whose condition it
// repeats word for word so that the planner may use it.
const scanTenantState = `SELECT seq, body FROM events WHERE tenant = ? AND type NOT IN ('usage', 'profiles') ORDER BY time_ns, seq`

// ScanTenant calls fn with one tenant's records in time order.
func (s *Store) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return scan(ctx, s.db, scanTenant, fn, tenant)
}

// ScanTenantState calls fn with one tenant's records that make its state,
// in time order.
func (s *Store) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return scan(ctx, s.db, scanTenantState, fn, tenant)
}

// ScanTenantBetween calls fn with one tenant's records at or after from
// and before to (zero: no end), in time order.
func (s *Store) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	return scan(ctx, s.db, scanTenantBetween, fn, tenant, from.UnixNano(), store.EndNanos(to))
}

// ScanTenantAt calls fn with one tenant's records at an instant, in
// sequence order.
func (s *Store) ScanTenantAt(ctx context.Context, tenant string, at time.Time, fn func(store.Record) error) error {
	return scan(ctx, s.db, `SELECT seq, body FROM events WHERE tenant = ? AND time_ns = ? ORDER BY seq`, fn, tenant, at.UnixNano())
}

// TenantLog calls fn with one tenant's records and the directory's
// registrations in sequence order.
func (s *Store) TenantLog(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return scan(ctx, s.db, `SELECT seq, body FROM events WHERE tenant = ? OR (tenant = '' AND type = ?) ORDER BY seq`, fn, tenant, event.PartnerRegistered)
}

// LastSeq returns the last sequence number, 0 when the log is empty.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last seq: %w", err)
	}
	return seq.Int64, nil
}

type writer struct {
	tx      *sql.Tx
	inserts map[int]*sql.Stmt
}

func (w writer) Scan(ctx context.Context, after int64, fn func(store.Record) error) error {
	return scan(ctx, w.tx, `SELECT seq, body FROM events WHERE seq > ? ORDER BY seq`, fn, after)
}

func (w writer) ScanFollowing(ctx context.Context, after int64, _ store.Following, fn func(store.Record) error) (int64, error) {
	return scanFollowing(ctx, w.tx, after, fn)
}

func (w writer) ScanTenant(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return scan(ctx, w.tx, scanTenant, fn, tenant)
}

func (w writer) ScanTenantState(ctx context.Context, tenant string, fn func(store.Record) error) error {
	return scan(ctx, w.tx, scanTenantState, fn, tenant)
}

func (w writer) ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(store.Record) error) error {
	return scan(ctx, w.tx, scanTenantBetween, fn, tenant, from.UnixNano(), store.EndNanos(to))
}

// insertSizes are the row counts of the prepared INSERTs, largest first:
// six parameters a row, well under SQLite's limit of 32,766 a statement.
var insertSizes = []int{1000, 100, 10, 1}

func (w writer) Append(ctx context.Context, events []*event.Event) ([]int64, error) {
	var last int64
	if err := w.tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&last); err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	known, err := w.knownIDs(ctx, events)
	if err != nil {
		return nil, err
	}
	dup := store.Duplicates(events, known)
	seqs := make([]int64, len(events))
	var rows []any
	days := make(map[string]int)
	for i, ev := range events {
		if dup[i] {
			continue
		}
		days[ev.Time.UTC().Format(time.DateOnly)]++
		last++
		seqs[i] = last
		var id any
		if ev.ID != "" {
			id = ev.ID
		}
		rows = append(rows, last, id, ev.Type, ev.Time.UnixNano(), ev.Tenant, string(ev.AppendJSON(nil)))
	}
	// The rows go in as few prepared statements as their count allows.
	for _, n := range insertSizes {
		stmt := w.tx.StmtContext(ctx, w.inserts[n])
		for len(rows) >= 6*n {
			if _, err := stmt.ExecContext(ctx, rows[:6*n]...); err != nil {
				return nil, fmt.Errorf("append: %w", err)
			}
			rows = rows[6*n:]
		}
	}
	for day, n := range days {
		if _, err := w.tx.ExecContext(ctx, `INSERT INTO log_days (day, events) VALUES (?, ?)
			ON CONFLICT (day) DO UPDATE SET events = events + excluded.events`, day, n); err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
	}
	return seqs, nil
}

// knownIDs returns which of the events' ids the log holds already.
func (w writer) knownIDs(ctx context.Context, events []*event.Event) (map[string]bool, error) {
	known := make(map[string]bool)
	var ids []any
	lookup := func() error {
		if len(ids) == 0 {
			return nil
		}
		rows, err := w.tx.QueryContext(ctx, `SELECT id FROM events WHERE id IS NOT NULL AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, ids...)
		if err != nil {
			return fmt.Errorf("append: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("append: %w", err)
			}
			known[id] = true
		}
		ids = ids[:0]
		return rows.Err()
	}
	for _, ev := range events {
		if ev.ID == "" {
			continue
		}
		ids = append(ids, ev.ID)
		if len(ids) == 6*insertSizes[0] {
			if err := lookup(); err != nil {
				return nil, err
			}
		}
	}
	return known, lookup()
}

func (w writer) FileChanges(ctx context.Context, changes []store.FiledChange) error {
	for _, c := range changes {
		if _, err := w.tx.ExecContext(ctx, `INSERT INTO changes (seq, k, tenant, body) VALUES (?, ?, ?, ?)`, c.At.Seq, c.At.K, c.Tenant, string(c.Body)); err != nil {
			return fmt.Errorf("file changes: %w", err)
		}
		for _, org := range c.Orgs {
			if _, err := w.tx.ExecContext(ctx, `INSERT INTO change_orgs (org, seq, k) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, org, c.At.Seq, c.At.K); err != nil {
				return fmt.Errorf("file changes: %w", err)
			}
		}
	}
	return nil
}

// Changes calls fn with the filed changes after the cursor that match f.
func (s *Store) Changes(ctx context.Context, f store.ChangeFilter, after store.Cursor, limit int, fn func(store.FiledChange) error) error {
	var rows *sql.Rows
	var err error
	switch {
	case f.Org != "":
		rows, err = s.db.QueryContext(ctx, `SELECT c.seq, c.k, c.tenant, c.body FROM change_orgs o JOIN changes c ON c.seq = o.seq AND c.k = o.k
			WHERE o.org = ? AND (? = '' OR c.tenant = ?) AND (o.seq > ? OR (o.seq = ? AND o.k > ?)) ORDER BY o.seq, o.k LIMIT ?`,
			f.Org, f.Tenant, f.Tenant, after.Seq, after.Seq, after.K, limit)
	case f.Tenant != "":
		rows, err = s.db.QueryContext(ctx, `SELECT seq, k, tenant, body FROM changes
			WHERE tenant = ? AND (seq > ? OR (seq = ? AND k > ?)) ORDER BY seq, k LIMIT ?`, f.Tenant, after.Seq, after.Seq, after.K, limit)
	default:
		rows, err = s.db.QueryContext(ctx, `SELECT seq, k, tenant, body FROM changes
			WHERE seq > ? OR (seq = ? AND k > ?) ORDER BY seq, k LIMIT ?`, after.Seq, after.Seq, after.K, limit)
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

// Write runs fn in an immediate transaction: SQLite's write lock is taken
// at its start.
func (s *Store) Write(ctx context.Context, fn func(store.Writer) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(writer{tx, s.inserts}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// SaveSnapshot replaces the snapshot.
func (s *Store) SaveSnapshot(ctx context.Context, seq int64, data []byte) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO snapshot (one, seq, data) VALUES (1, ?, ?) ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, data = excluded.data WHERE snapshot.seq <= excluded.seq`, seq, data)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	return nil
}

// LoadSnapshot returns the snapshot, or store.ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var data []byte
	err := s.db.QueryRowContext(ctx, `SELECT seq, data FROM snapshot WHERE one = 1`).Scan(&seq, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, store.ErrNotFound
	}
	if err != nil {
		return 0, nil, fmt.Errorf("load snapshot: %w", err)
	}
	return seq, data, nil
}

// AddToken stores a token's grant and life under its hash.
func (s *Store) AddToken(ctx context.Context, hash string, t store.Token) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (hash, id, role, tenant, account, org, created_ns, expires_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		hash, t.ID, t.Role, t.Tenant, t.Account, t.Org, t.Created.UnixNano(), t.Expires.UnixNano())
	if err != nil {
		return fmt.Errorf("add token: %w", err)
	}
	return nil
}

const tokenColumns = `id, role, tenant, account, org, created_ns, expires_ns, revoked != 0, last_used_ns`

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
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// Tokens lists every token, by creation.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_ns, id`)
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
	res, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked = 1 WHERE id = ?`, id)
	if err != nil {
		return false, fmt.Errorf("revoke token: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// TokenUsed notes when a token was used.
func (s *Store) TokenUsed(ctx context.Context, hash string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE tokens SET last_used_ns = ? WHERE hash = ?`, at.UnixNano(), hash); err != nil {
		return fmt.Errorf("note token use: %w", err)
	}
	return nil
}

// AddWebhook registers a webhook.
func (s *Store) AddWebhook(ctx context.Context, w store.Webhook) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO webhooks (id, org, tenant, url, secret, created_ns, cursor_seq, cursor_k) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.Org, w.Tenant, w.URL, w.Secret, w.Created.UnixNano(), w.Cursor.Seq, w.Cursor.K)
	if err != nil {
		return fmt.Errorf("add webhook: %w", err)
	}
	return nil
}

// Webhooks lists the webhooks of an owner, or all of them when owner is
// empty, oldest first.
func (s *Store) Webhooks(ctx context.Context, owner store.ChangeFilter) ([]store.Webhook, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, org, tenant, url, secret, created_ns, cursor_seq, cursor_k FROM webhooks
		WHERE (?1 = '' AND ?2 = '') OR (org = ?1 AND tenant = ?2) ORDER BY created_ns, id`, owner.Org, owner.Tenant)
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
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhooks WHERE org = ? AND tenant = ? AND id = ?`, owner.Org, owner.Tenant, id)
	if err != nil {
		return false, fmt.Errorf("delete webhook: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetWebhookSecret replaces the secret of an owner's webhook.
func (s *Store) SetWebhookSecret(ctx context.Context, owner store.ChangeFilter, id, secret string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE webhooks SET secret = ? WHERE org = ? AND tenant = ? AND id = ?`, secret, owner.Org, owner.Tenant, id)
	if err != nil {
		return false, fmt.Errorf("set webhook secret: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ClaimDelivery moves a webhook's cursor when it is at from.
func (s *Store) ClaimDelivery(ctx context.Context, id string, from, to store.Cursor) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE webhooks SET cursor_seq = ?, cursor_k = ? WHERE id = ? AND cursor_seq = ? AND cursor_k = ?`,
		to.Seq, to.K, id, from.Seq, from.K)
	if err != nil {
		return false, fmt.Errorf("claim delivery: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// LeaseWebhook takes or renews the delivery lease of a webhook.
func (s *Store) LeaseWebhook(ctx context.Context, id, owner string, now, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE webhooks SET lease_owner = ?, lease_until_ns = ? WHERE id = ? AND (lease_owner = ? OR lease_until_ns < ?)`,
		owner, until.UnixNano(), id, owner, now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("lease webhook: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AppendConsumption keeps segments and notes the resources they concern,
// in one transaction.
func (s *Store) AppendConsumption(ctx context.Context, segments []store.Segment, resources []store.TenantResource) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append consumption: %w", err)
	}
	defer tx.Rollback()
	// The transaction holds the database's one write lock: no record is
	// appended between the log's last one read here and the commit.
	var after int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&after); err != nil {
		return fmt.Errorf("append consumption: %w", err)
	}
	for _, seg := range segments {
		if _, err := tx.ExecContext(ctx, `INSERT INTO consumption_segments (month, rows, data, after_seq) VALUES (?, ?, ?, ?)`, seg.Month, seg.Rows, seg.Data, after); err != nil {
			return fmt.Errorf("append consumption: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO consumption_days (day, rows) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET rows = rows + excluded.rows`,
			seg.Reported.UTC().Format(time.DateOnly), seg.Rows); err != nil {
			return fmt.Errorf("append consumption: %w", err)
		}
	}
	if len(resources) > 0 {
		stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO consumption_resources (tenant, resource) VALUES (?, ?)`)
		if err != nil {
			return fmt.Errorf("append consumption: %w", err)
		}
		defer stmt.Close()
		for _, r := range resources {
			if _, err := stmt.ExecContext(ctx, r.Tenant, r.Resource); err != nil {
				return fmt.Errorf("append consumption: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append consumption: %w", err)
	}
	return nil
}

// ConsumptionSegments calls fn with the segments of a month, oldest first.
func (s *Store) ConsumptionSegments(ctx context.Context, month string, fn func(store.Segment) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, month, rows, data, after_seq FROM consumption_segments WHERE month = ? ORDER BY id`, month)
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
	rows, err := s.db.QueryContext(ctx, `SELECT id, tenant, resource FROM consumption_resources WHERE id > ? ORDER BY id`, after)
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
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT month FROM consumption_segments ORDER BY month`)
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
	err = s.db.QueryRowContext(ctx, `SELECT coalesce((SELECT max(seq) FROM events), 0), coalesce((SELECT max(id) FROM consumption_segments), 0)`).Scan(&seq, &segment)
	if err != nil {
		return 0, 0, fmt.Errorf("heads: %w", err)
	}
	return seq, segment, nil
}

// SegmentCount returns how many segments a month has.
func (s *Store) SegmentCount(ctx context.Context, month string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM consumption_segments WHERE month = ?`, month).Scan(&n); err != nil {
		return 0, fmt.Errorf("segment count: %w", err)
	}
	return n, nil
}

// CompactConsumption replaces a month's segments up to last with merged,
// under number last.
func (s *Store) CompactConsumption(ctx context.Context, month string, last int64, merged store.Segment) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("compact consumption: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE consumption_segments SET rows = ?, data = ? WHERE id = ? AND month = ?`, merged.Rows, merged.Data, last, month)
	if err != nil {
		return false, fmt.Errorf("compact consumption: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM consumption_segments WHERE month = ? AND id < ?`, month, last); err != nil {
		return false, fmt.Errorf("compact consumption: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("compact consumption: %w", err)
	}
	return true, nil
}

// ConsumptionDays returns the records kept from day first to day last, by
// the day they were reported.
func (s *Store) ConsumptionDays(ctx context.Context, first, last string) (map[string]int, error) {
	return s.dayCounts(ctx, "consumption days", `SELECT day, rows FROM consumption_days WHERE day >= ? AND day <= ?`, first, last)
}
