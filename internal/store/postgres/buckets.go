package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/palproject/pal/internal/store"
)

var _ store.Buckets = (*Store)(nil)

// holdBack is how long a transaction of the buckets may wait on its
// process before the database ends it: a process stopped in the middle of
// one (a pause, a frozen VM) holds the rows it locked, and with them the
// processes that would take its buckets, no longer than that.
const holdBack = "1s"

// inTx runs fn in a transaction that the database ends when its process
// leaves it idle longer than holdBack.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL idle_in_transaction_session_timeout = '`+holdBack+`'`); err != nil {
			return err
		}
		return fn(tx)
	})
}

// SetBuckets fixes the number of buckets, with a free lease each, on a
// database that has none.
func (s *Store) SetBuckets(ctx context.Context, n int) (int, error) {
	var stored int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO bucket_count (buckets) VALUES ($1) ON CONFLICT DO NOTHING`, n)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			if _, err := tx.Exec(ctx, `INSERT INTO bucket_leases (bucket) SELECT generate_series(0, $1 - 1)`, n); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `SELECT buckets FROM bucket_count`).Scan(&stored)
	})
	if err != nil {
		return 0, fmt.Errorf("set buckets: %w", err)
	}
	return stored, nil
}

// SessionName is the name (application_name) under which a member's
// sessions to the database are to be opened, so that EndSessions can end
// them once the member is gone: the member's ID, or its last 63 bytes,
// which the database keeps, where an ID ends with its random part.
func SessionName(id string) string {
	if len(id) > 63 {
		return id[len(id)-63:]
	}
	return id
}

// Join notes a member alive, forgets those expired before forget, and
// returns those alive at now and those forgotten.
func (s *Store) Join(ctx context.Context, m store.Member, now, forget time.Time) ([]store.Member, []string, error) {
	var alive []store.Member
	var gone []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO bucket_members (id, addr, expires_ns) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, expires_ns = excluded.expires_ns`,
			m.ID, m.Addr, m.Expires.UnixNano()); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM bucket_members WHERE expires_ns < $1 RETURNING id`, forget.UnixNano())
		if err != nil {
			return err
		}
		if gone, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id, addr, expires_ns FROM bucket_members WHERE expires_ns >= $1 ORDER BY id`, now.UnixNano())
		if err != nil {
			return err
		}
		alive, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Member, error) {
			var m store.Member
			var ns int64
			err := r.Scan(&m.ID, &m.Addr, &ns)
			m.Expires = time.Unix(0, ns).UTC()
			return m, err
		})
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("join: %w", err)
	}
	return alive, gone, nil
}

// EndSessions ends the sessions to this database opened under the names of
// the members (SessionName) by a role this one is a member of: the others
// it could not end, and leaves. A member gone while stopped in the middle
// of a transaction (a pause, a frozen VM) holds its locks, the log's among
// them, and with them every writer: ended, they are freed, and the member
// finds its writes in flight not committed when it wakes.
func (s *Store) EndSessions(ctx context.Context, ids []string) error {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = SessionName(id)
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = ANY($1) AND pid <> pg_backend_pid()
			AND pg_has_role(usesysid, 'MEMBER')`, names); err != nil {
		return fmt.Errorf("end the sessions of %v: %w", ids, err)
	}
	return nil
}

// Leave forgets a member.
func (s *Store) Leave(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM bucket_members WHERE id = $1`, id); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// Leases returns every bucket's lease, with the address of its owner when
// the owner is a member; whether its lease is still good is the caller's
// to judge, by its expiry.
func (s *Store) Leases(ctx context.Context) ([]store.Lease, error) {
	rows, err := s.pool.Query(ctx, `SELECT l.bucket, l.owner, l.epoch, l.expires_ns, COALESCE(m.addr, ''), l.filed
		FROM bucket_leases l LEFT JOIN bucket_members m ON m.id = l.owner AND l.owner <> ''
		ORDER BY l.bucket`)
	if err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Lease, error) {
		var l store.Lease
		var ns int64
		err := r.Scan(&l.Bucket, &l.Owner, &l.Epoch, &ns, &l.Addr, &l.Filed)
		l.Expires = time.Unix(0, ns).UTC()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	return out, nil
}

func scanLease(r pgx.CollectableRow) (store.Lease, error) {
	var l store.Lease
	var ns int64
	err := r.Scan(&l.Bucket, &l.Owner, &l.Epoch, &ns, &l.Filed)
	l.Expires = time.Unix(0, ns).UTC()
	return l, err
}

// lockNotAvailable is PostgreSQL's code of a lock not had within its
// lock_timeout.
const lockNotAvailable = "55P03"

// Take takes a bucket that is free, expired or the owner's own: one
// conditional update, which raises the epoch unless the owner renews. A
// lease row that a filing of its owner holds (FOR SHARE) is waited for
// half a second at most: an owner stopped in the middle of a write holds
// it until its sessions are ended, which a later round does.
func (s *Store) Take(ctx context.Context, bucket int, owner string, now, until time.Time) (store.Lease, bool, error) {
	var taken []store.Lease
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '500ms'`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE bucket_leases
			SET epoch = CASE WHEN owner = $2 THEN epoch ELSE epoch + 1 END, owner = $2, expires_ns = $3
			WHERE bucket = $1 AND (owner = $2 OR owner = '' OR expires_ns < $4)
			RETURNING bucket, owner, epoch, expires_ns, filed`, bucket, owner, until.UnixNano(), now.UnixNano())
		if err != nil {
			return err
		}
		taken, err = pgx.CollectRows(rows, scanLease)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == lockNotAvailable {
		taken, err = nil, nil
	}
	if err != nil {
		return store.Lease{}, false, fmt.Errorf("take bucket %d: %w", bucket, err)
	}
	if len(taken) == 1 {
		return taken[0], true, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT bucket, owner, epoch, expires_ns, filed FROM bucket_leases WHERE bucket = $1`, bucket)
	if err != nil {
		return store.Lease{}, false, fmt.Errorf("take bucket %d: %w", bucket, err)
	}
	held, err := pgx.CollectExactlyOneRow(rows, scanLease)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, false, fmt.Errorf("take bucket %d: there is no such bucket", bucket)
	}
	if err != nil {
		return store.Lease{}, false, fmt.Errorf("take bucket %d: %w", bucket, err)
	}
	return held, false, nil
}

// Renew extends a lease held at an epoch.
func (s *Store) Renew(ctx context.Context, bucket int, owner string, epoch int64, until time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE bucket_leases SET expires_ns = $4 WHERE bucket = $1 AND owner = $2 AND epoch = $3`,
		bucket, owner, epoch, until.UnixNano())
	if err != nil {
		return false, fmt.Errorf("renew bucket %d: %w", bucket, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Release gives a bucket back.
func (s *Store) Release(ctx context.Context, bucket int, owner string, epoch int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE bucket_leases SET owner = '', expires_ns = 0 WHERE bucket = $1 AND owner = $2 AND epoch = $3`,
		bucket, owner, epoch); err != nil {
		return fmt.Errorf("release bucket %d: %w", bucket, err)
	}
	return nil
}

// Fenced runs fn after reading the bucket's epoch FOR SHARE: a Take of the
// bucket, an UPDATE of the row, waits for the transaction to end, so fn's
// writes are committed before the bucket changes hands, or not at all.
func (s *Store) Fenced(ctx context.Context, bucket int, epoch int64, fn func(store.FencedWriter) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var current int64
		err := tx.QueryRow(ctx, `SELECT epoch FROM bucket_leases WHERE bucket = $1 FOR SHARE`, bucket).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("bucket %d: there is no such bucket", bucket)
		}
		if err != nil {
			return fmt.Errorf("bucket %d: %w", bucket, err)
		}
		if current != epoch {
			return fmt.Errorf("bucket %d at epoch %d, now %d: %w", bucket, epoch, current, store.ErrFenced)
		}
		return fn(fencedWriter{tx: tx, bucket: bucket, epoch: epoch})
	})
}

type fencedWriter struct {
	tx     pgx.Tx
	bucket int
	epoch  int64
}

func (w fencedWriter) SaveCheckpoint(ctx context.Context, seq int64, data []byte) error {
	if _, err := w.tx.Exec(ctx, `INSERT INTO bucket_checkpoints (bucket, seq, epoch, data) VALUES ($1, $2, $3, $4)
		ON CONFLICT (bucket) DO UPDATE SET seq = excluded.seq, epoch = excluded.epoch, data = excluded.data`,
		w.bucket, seq, w.epoch, data); err != nil {
		return fmt.Errorf("checkpoint bucket %d: %w", w.bucket, err)
	}
	return nil
}

// Checkpoint returns a bucket's checkpoint.
func (s *Store) Checkpoint(ctx context.Context, bucket int) (seq, epoch int64, data []byte, err error) {
	err = s.pool.QueryRow(ctx, `SELECT seq, epoch, data FROM bucket_checkpoints WHERE bucket = $1`, bucket).Scan(&seq, &epoch, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, nil, store.ErrNotFound
	}
	if err != nil {
		return 0, 0, nil, fmt.Errorf("checkpoint bucket %d: %w", bucket, err)
	}
	return seq, epoch, data, nil
}

// Behind counts the records after seq by tenant.
func (s *Store) Behind(ctx context.Context, seq int64) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT tenant, count(*) FROM events WHERE seq > $1 GROUP BY tenant`, seq)
	if err != nil {
		return nil, fmt.Errorf("records behind %d: %w", seq, err)
	}
	out := make(map[string]int64)
	var tenant string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&tenant, &n}, func() error {
		out[tenant] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("records behind %d: %w", seq, err)
	}
	return out, nil
}

// Tenants lists the tenants of the buckets given whose first record is
// after record after. A tenant stored only before the number of buckets
// was fixed has its bucket computed here.
func (s *Store) Tenants(ctx context.Context, buckets []int, after int64) ([]string, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT buckets FROM bucket_count), 0)`).Scan(&n)
	if err != nil || n == 0 {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT tenant, bucket FROM tenants
		WHERE (bucket = ANY($1) OR bucket IS NULL) AND first_seq > $2 ORDER BY tenant`, buckets, after)
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	in := make(map[int]bool, len(buckets))
	for _, b := range buckets {
		in[b] = true
	}
	var out []string
	var tenant string
	var bucket *int32
	_, err = pgx.ForEachRow(rows, []any{&tenant, &bucket}, func() error {
		if bucket != nil || in[store.Bucket(tenant, n)] {
			out = append(out, tenant)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	return out, nil
}

// Key returns the processes' key, made by the first to ask.
func (s *Store) Key(ctx context.Context) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	var key string
	err := s.pool.QueryRow(ctx, `WITH made AS (INSERT INTO bucket_key (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING key)
		SELECT key FROM made UNION ALL SELECT key FROM bucket_key LIMIT 1`, hex.EncodeToString(b)).Scan(&key)
	if err != nil {
		return "", fmt.Errorf("the processes' key: %w", err)
	}
	return key, nil
}

// Present returns the latest instant an owner applied.
func (s *Store) Present(ctx context.Context) (time.Time, error) {
	var ns int64
	err := s.pool.QueryRow(ctx, `SELECT ns FROM bucket_present`).Scan(&ns)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("present: %w", err)
	}
	return time.Unix(0, ns).UTC(), nil
}

// Filed returns the lowest record up to which a bucket's changes are filed.
func (s *Store) Filed(ctx context.Context) (int64, error) {
	var seq *int64
	if err := s.pool.QueryRow(ctx, `SELECT min(filed) FROM bucket_leases`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("filed: %w", err)
	}
	if seq == nil {
		return 0, nil
	}
	return *seq, nil
}

// FileOwned reads the leases of the buckets held FOR SHARE, as Fenced does,
// then files the changes and notes the buckets filed.
func (s *Store) FileOwned(ctx context.Context, w store.Writer, held map[int]int64, seq int64, present time.Time, changes []store.FiledChange) error {
	file := func(tx pgx.Tx, wr *writer) error {
		buckets := make([]int32, 0, len(held))
		for b := range held {
			buckets = append(buckets, int32(b))
		}
		rows, err := tx.Query(ctx, `SELECT bucket, epoch FROM bucket_leases WHERE bucket = ANY($1) FOR SHARE`, buckets)
		if err != nil {
			return fmt.Errorf("file: %w", err)
		}
		var b int32
		var epoch int64
		_, err = pgx.ForEachRow(rows, []any{&b, &epoch}, func() error {
			if held[int(b)] != epoch {
				return &store.FencedBucket{Bucket: int(b), Epoch: held[int(b)]}
			}
			return nil
		})
		if err != nil {
			return err
		}
		// The changes of a record and a bucket are numbered on from the
		// last filed: only the bucket's owner files them, one filing at a
		// time, its lease row held.
		var seqs []int64
		for _, c := range changes {
			seqs = append(seqs, c.At.Seq)
		}
		next := make(map[[2]int64]int64)
		if len(seqs) > 0 {
			rows, err := tx.Query(ctx, `SELECT seq, k >> 32, max(k) & 4294967295 FROM changes WHERE seq = ANY($1) GROUP BY 1, 2`, seqs)
			if err != nil {
				return fmt.Errorf("file: %w", err)
			}
			var seq, bucket, last int64
			if _, err := pgx.ForEachRow(rows, []any{&seq, &bucket, &last}, func() error {
				next[[2]int64{seq, bucket}] = last
				return nil
			}); err != nil {
				return fmt.Errorf("file: %w", err)
			}
		}
		numbered := make([]store.FiledChange, len(changes))
		for i, c := range changes {
			at := [2]int64{c.At.Seq, int64(c.At.K) >> 32}
			next[at]++
			c.At.K = int(at[1]<<32 | next[at])
			numbered[i] = c
		}
		if err := wr.FileChanges(ctx, numbered); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE bucket_leases SET filed = greatest(filed, $2) WHERE bucket = ANY($1)`, buckets, seq); err != nil {
			return fmt.Errorf("file: %w", err)
		}
		if present.IsZero() {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO bucket_present (ns) VALUES ($1)
			ON CONFLICT (only_row) DO UPDATE SET ns = excluded.ns WHERE bucket_present.ns < excluded.ns`, present.UnixNano())
		return err
	}
	if wr, ok := w.(*writer); ok {
		return file(wr.tx, wr)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error { return file(tx, &writer{tx: tx}) })
}
