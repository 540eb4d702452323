package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"time"

	"github.com/palproject/pal/internal/event"
)

// Errors of the store contract.
var (
	// ErrNotFound is returned for a snapshot or token that does not exist.
	ErrNotFound = errors.New("not found")
	// Stop, returned by a scan's callback, ends the scan early; the caller
	// that returned it takes it for success (errors.Is).
	Stop = errors.New("stop scanning")
	// ErrFenced is the error of a write that only a bucket's owner may make,
	// by a process whose lease on the bucket another has taken since.
	ErrFenced = errors.New("fenced: another process took the bucket's lease; this process no longer owns it")
)

// FencedBucket is the ErrFenced of a write for a bucket held at Epoch,
// which another process took since.
type FencedBucket struct {
	Bucket int
	Epoch  int64
}

func (f *FencedBucket) Error() string {
	return fmt.Sprintf("bucket %d held at epoch %d: %v", f.Bucket, f.Epoch, ErrFenced)
}

func (f *FencedBucket) Unwrap() error { return ErrFenced }

// Following names the records of the log that a process sharing the
// tenants by buckets (SPEC.md section 10) folds: the directory's, every
// Azure role assignment (which says which tenants read which others'
// accounts), and those of the tenants of the buckets held, of Buckets,
// and of the tenants named, which those read. Its zero value names the
// directory's records and the role assignments alone.
type Following struct {
	Buckets int
	Held    []int
	Tenants []string
}

// Bucket returns a tenant's bucket of n (SPEC.md section 10): the 32-bit
// FNV-1a hash of its UTF-8 bytes, mod n. The directory ("") is of no
// bucket: its records are everyone's.
func Bucket(tenant string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	return int(h.Sum32() % uint32(n))
}

// Names reports whether f names a record of a tenant and a type.
func (f Following) Names(tenant, typ string) bool {
	if tenant == "" || typ == event.AzureRoleAssigned || slices.Contains(f.Tenants, tenant) {
		return true
	}
	return f.Buckets > 0 && slices.Contains(f.Held, Bucket(tenant, f.Buckets))
}

// Record is an event of the log with its place in it. Sequence numbers
// start at 1 and grow in the order in which events were committed.
type Record struct {
	Seq   int64
	Event *event.Event
}

// Roles of a token.
const (
	RoleAccount       = "account"
	RoleTenantAdmin   = "tenant-admin"
	RolePartnerReader = "partner-reader"
	RoleOperator      = "operator"
)

// Token is what a token issued by pal grants, and its life. Only its hash
// is stored; ID names it without being secret.
type Token struct {
	ID      string
	Role    string
	Tenant  string
	Account string
	Org     string
	Created time.Time
	Expires time.Time
	Revoked bool
	// LastUsed is when it was last used, to the minute; zero when never.
	LastUsed time.Time
}

// Cursor is a place in the feed of credit changes: the sequence number of
// the record that caused a change, and the change's place among that
// record's changes, from 1.
type Cursor struct {
	Seq int64
	K   int
}

// Before reports whether c comes before d in the feed.
func (c Cursor) Before(d Cursor) bool {
	return c.Seq < d.Seq || (c.Seq == d.Seq && c.K < d.K)
}

// FiledChange is a change of the feed of credit changes at its place: the
// record that caused it and its place among that record's changes. The
// store keeps its body as it is given, and finds it by tenant and by the
// organisations it concerns.
type FiledChange struct {
	At     Cursor
	Tenant string
	// Orgs are the organisations the change concerns, each once.
	Orgs []string
	Body []byte
}

// ChangeFilter narrows the feed: to one tenant's changes, or to those that
// concern one organisation; with both empty it keeps every change.
type ChangeFilter struct {
	Tenant string
	Org    string // with Tenant, the organisation's changes in that tenant
}

// Webhook is a URL an organisation's or a tenant's changes are posted to,
// signed with its secret; Cursor is the last change claimed for it. One of
// Org and Tenant is set: its owner.
type Webhook struct {
	ID      string
	Org     string
	Tenant  string
	URL     string
	Secret  string
	Created time.Time
	Cursor  Cursor
}

// Store keeps the log. Implementations are safe for concurrent use, by
// several goroutines and by several processes on the same database.
type Store interface {
	// Write runs fn in one transaction holding the log's write lock: no
	// other writer, in this process or another, appends until fn returns.
	// What fn appends is committed together when fn returns nil, and not at
	// all otherwise.
	Write(ctx context.Context, fn func(Writer) error) error
	// Scan calls fn with every record after sequence number after, in
	// sequence order, until fn returns an error.
	Scan(ctx context.Context, after int64, fn func(Record) error) error
	// ScanTenant calls fn with the records of one tenant in time order,
	// equal times in sequence order; the tenant "" holds the events of no
	// tenant (the partner directory). It reads only that tenant's records.
	ScanTenant(ctx context.Context, tenant string, fn func(Record) error) error
	// ScanTenantState calls fn with the records of one tenant that make its
	// state, as ScanTenant orders them: every record but usage and profiles,
	// which are credited from the state and change none of it. A tenant's
	// fold reads them alone when it has no use for the credit of its usage.
	ScanTenantState(ctx context.Context, tenant string, fn func(Record) error) error
	// ScanTenantBetween calls fn with the records of one tenant at or after
	// the instant from and before to (zero: no end), as ScanTenant orders
	// them: a tenant's fold counts again the uses of the months its credit
	// moved in.
	ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(Record) error) error
	// ScanTenantAt calls fn with the records of one tenant at an instant,
	// in sequence order.
	ScanTenantAt(ctx context.Context, tenant string, at time.Time, fn func(Record) error) error
	// TenantLog calls fn with the records of one tenant, and the partner
	// directory's registrations, in sequence order: the log a tenant's
	// administrator exports, with the registrations its fold reads, on
	// which pal answers as the service does for that tenant.
	TenantLog(ctx context.Context, tenant string, fn func(Record) error) error
	// ScanFollowing calls fn, in sequence order, with the records after
	// sequence number after that a process folding the tenants f names
	// reads; it may give others. It returns its horizon: every record up
	// to it that f names was given, unless fn ended the scan.
	ScanFollowing(ctx context.Context, after int64, f Following, fn func(Record) error) (horizon int64, err error)
	// LastSeq returns the sequence number of the last record, 0 when empty.
	LastSeq(ctx context.Context) (int64, error)
	// LogDays counts the records of the log by the day of their time
	// (YYYY-MM-DD, UTC).
	LogDays(ctx context.Context) (map[string]int, error)

	// SaveSnapshot keeps data as the engine's state after record seq,
	// replacing any snapshot after the same record or an older one.
	SaveSnapshot(ctx context.Context, seq int64, data []byte) error
	// LoadSnapshot returns the latest snapshot, or ErrNotFound.
	LoadSnapshot(ctx context.Context) (seq int64, data []byte, err error)

	// Changes calls fn with the filed changes after the cursor that match
	// the filter, in feed order, at most limit of them.
	Changes(ctx context.Context, f ChangeFilter, after Cursor, limit int, fn func(FiledChange) error) error

	// AddWebhook registers a webhook; its cursor starts where w's is.
	AddWebhook(ctx context.Context, w Webhook) error
	// Webhooks lists the webhooks of an owner (an organisation or a
	// tenant, as a ChangeFilter names them), or every one when owner is
	// empty, oldest first.
	Webhooks(ctx context.Context, owner ChangeFilter) ([]Webhook, error)
	// DeleteWebhook removes an owner's webhook, and reports false when it
	// has none with that id.
	DeleteWebhook(ctx context.Context, owner ChangeFilter, id string) (bool, error)
	// SetWebhookSecret replaces the secret of an owner's webhook, and
	// reports false when it has none with that id.
	SetWebhookSecret(ctx context.Context, owner ChangeFilter, id, secret string) (bool, error)
	// LeaseWebhook makes owner the one process that delivers to a webhook
	// until the time until, when no other process holds an unexpired lease
	// at now; it reports whether owner holds the lease.
	LeaseWebhook(ctx context.Context, id, owner string, now, until time.Time) (bool, error)
	// ClaimDelivery moves a webhook's cursor from one change to the next,
	// and reports false when the cursor was not at from: another process
	// claimed that change. A change is posted only by whoever claimed it.
	ClaimDelivery(ctx context.Context, id string, from, to Cursor) (bool, error)

	// AddToken stores what a token grants under the token's hash.
	AddToken(ctx context.Context, hash string, t Token) error
	// Token returns what the token with this hash grants, or ErrNotFound.
	Token(ctx context.Context, hash string) (Token, error)
	// Tokens lists every token, by creation.
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken revokes the token called id, and reports false when
	// there is none.
	RevokeToken(ctx context.Context, id string) (bool, error)
	// TokenUsed notes that the token with this hash was used at at.
	TokenUsed(ctx context.Context, hash string, at time.Time) error

	// AppendConsumption keeps consumption segments and notes the resources
	// they concern, in one transaction, outside the log and its write
	// lock: consumption changes no credit, and its records replace one
	// another by the time they were reported, whatever order they are
	// stored in.
	AppendConsumption(ctx context.Context, segments []Segment, resources []TenantResource) error
	// ConsumptionSegments calls fn with the segments of a month (YYYY-MM),
	// oldest first, until fn returns an error.
	ConsumptionSegments(ctx context.Context, month string, fn func(Segment) error) error
	// ConsumptionResources calls fn with the resources that have
	// consumption in a segment, each with the number it was noted under,
	// in that order: those after number after. A resource noted later has
	// a higher number, once every transaction that noted one committed.
	ConsumptionResources(ctx context.Context, after int64, fn func(id int64, r TenantResource) error) error
	// Heads returns, in one question, the sequence number of the last
	// record (LastSeq) and the number of the last segment kept, each 0
	// when there is none: what a reader asks before every answer. The
	// segment's grows with every AppendConsumption that keeps one.
	Heads(ctx context.Context) (seq, segment int64, err error)
	// SegmentCount returns how many segments a month has.
	SegmentCount(ctx context.Context, month string) (int, error)
	// CompactConsumption replaces a month's segments numbered up to last
	// with merged, kept under number last: it keeps its place among the
	// segments, those kept since still coming after it. It reports false,
	// and changes nothing, when the month has no segment last any more
	// (another process compacted them first).
	CompactConsumption(ctx context.Context, month string, last int64, merged Segment) (bool, error)
	// ConsumptionDays returns how many records the segments kept from
	// day first to day last (YYYY-MM-DD) hold, by the day they were
	// reported.
	ConsumptionDays(ctx context.Context, first, last string) (map[string]int, error)
	// ConsumptionMonths returns the months that have segments, oldest
	// first.
	ConsumptionMonths(ctx context.Context) ([]string, error)

	Close() error
}

// Segment is consumption of one month as the service keeps it: the rows
// of one push, in the columns of usage.CostRow, encoded by
// usage.WriteSegment.
type Segment struct {
	// ID is the segment's number, which ConsumptionSegments says: later
	// segments have higher ones.
	ID    int64
	Month string
	Rows  int
	Data  []byte
	// Reported is when its records were reported, which AppendConsumption
	// counts them under (ConsumptionDays).
	Reported time.Time
	// After is its place in the log: the sequence number of the log's
	// last record when AppendConsumption kept it, which it sets itself,
	// in order with the log's appends.
	After int64
}

// TenantResource names a resource of a tenant.
type TenantResource struct{ Tenant, Resource string }

// Writer appends to the log inside Store.Write.
type Writer interface {
	// Scan reads the records after seq, as Store.Scan, inside the
	// transaction: a writer catches up with the log before it appends.
	Scan(ctx context.Context, after int64, fn func(Record) error) error
	// ScanFollowing reads the records after seq that f names, as
	// Store.ScanFollowing, inside the transaction.
	ScanFollowing(ctx context.Context, after int64, f Following, fn func(Record) error) (int64, error)
	// ScanTenant reads one tenant's records in time order, as
	// Store.ScanTenant, inside the transaction.
	ScanTenant(ctx context.Context, tenant string, fn func(Record) error) error
	// ScanTenantState reads the records of one tenant that make its state,
	// as Store.ScanTenantState, inside the transaction.
	ScanTenantState(ctx context.Context, tenant string, fn func(Record) error) error
	// ScanTenantBetween reads the records of one tenant between two
	// instants, as Store.ScanTenantBetween, inside the transaction.
	ScanTenantBetween(ctx context.Context, tenant string, from, to time.Time, fn func(Record) error) error
	// Append adds events at the end of the log, in their order, all in one
	// statement: each but a duplicate, an event whose id is in the log
	// already or was carried by an earlier event of the same call. It
	// returns each event's sequence number, 0 for a duplicate; the numbers
	// of the events it adds follow the log's last one without a gap.
	Append(ctx context.Context, events []*event.Event) ([]int64, error)
	// FileChanges adds changes to the feed, committed with the records
	// that caused them.
	FileChanges(ctx context.Context, changes []FiledChange) error
}

// Duplicates returns, for events about to be appended after the ids that
// known holds, which are duplicates: those whose id is known or was carried
// by an earlier event of the list. Both backends decide by it.
func Duplicates(events []*event.Event, known map[string]bool) []bool {
	dup := make([]bool, len(events))
	for i, ev := range events {
		if ev.ID == "" {
			continue
		}
		if known[ev.ID] {
			dup[i] = true
			continue
		}
		known[ev.ID] = true
	}
	return dup
}

// Lease is a process's hold on a bucket of tenants (SPEC.md section 10):
// Owner ("" when none) holds it until Expires, and Epoch grows each time
// the bucket is taken. Addr, which Leases tells, is where the owner
// answers: its address as a member, "" when it is none.
type Lease struct {
	Bucket  int
	Owner   string
	Epoch   int64
	Expires time.Time
	Addr    string
	// Filed is the record up to which the bucket's owners filed its
	// tenants' changes (FileOwned).
	Filed int64
}

// Member is a process that shares the buckets, alive until Expires and
// reached at Addr.
type Member struct {
	ID      string
	Addr    string
	Expires time.Time
}

// Buckets is a store that several processes share by buckets of tenants
// (SPEC.md section 10). Times are the processes' own clocks: a lease is
// taken from a process whose lease expired by the taker's clock, and the
// epoch, not the clock, keeps the process that lost it from writing.
type Buckets interface {
	// SetBuckets fixes the number of buckets at n on a database that has
	// none, and returns the number the database holds, n or the one
	// fixed before.
	SetBuckets(ctx context.Context, n int) (int, error)
	// Join notes that a member is alive until its Expires, and returns
	// the members alive at now, by ID. It forgets the members that expired
	// before forget, a while before now, so that one whose clock or
	// renewal lags a little is not taken for gone, and returns their IDs.
	Join(ctx context.Context, m Member, now, forget time.Time) (alive []Member, gone []string, err error)
	// EndSessions ends the database sessions of members gone, opened under
	// their IDs, that this process may end: a member stopped in the middle
	// of a transaction holds its locks no longer.
	EndSessions(ctx context.Context, ids []string) error
	// Leave forgets a member.
	Leave(ctx context.Context, id string) error
	// Leases returns the lease of every bucket, by bucket, each with its
	// owner's address.
	Leases(ctx context.Context) ([]Lease, error)
	// Take makes owner the holder of a bucket until until, raising its
	// epoch, when no other owner's lease is unexpired at now (its own is
	// renewed at the same epoch). It returns the lease as it stands and
	// whether owner holds it.
	Take(ctx context.Context, bucket int, owner string, now, until time.Time) (Lease, bool, error)
	// Renew extends owner's lease at epoch until until, and reports false
	// when owner no longer holds the bucket at that epoch.
	Renew(ctx context.Context, bucket int, owner string, epoch int64, until time.Time) (bool, error)
	// Release gives a bucket back, when owner holds it at epoch.
	Release(ctx context.Context, bucket int, owner string, epoch int64) error
	// Fenced runs fn in a transaction that first holds the lease of the
	// bucket: it fails with ErrFenced, and fn's writes are not committed,
	// when the bucket's epoch is no longer epoch. A process that takes the
	// bucket meanwhile waits for the transaction to end, which the
	// database ends when its process leaves it idle for a second.
	Fenced(ctx context.Context, bucket int, epoch int64, fn func(FencedWriter) error) error
	// Checkpoint returns a bucket's checkpoint, written by the owner of
	// the epoch returned, or ErrNotFound.
	Checkpoint(ctx context.Context, bucket int) (seq, epoch int64, data []byte, err error)
	// Tenants lists, in order, the tenants of the buckets given whose first
	// record is after record after (0: every tenant of the buckets).
	Tenants(ctx context.Context, buckets []int, after int64) ([]string, error)
	// Key returns the key with which the processes sharing the database
	// ask each other what only an owner knows, made on first use.
	Key(ctx context.Context) (string, error)
	// Present returns the latest instant an owner applied (FileOwned),
	// the zero time when none did.
	Present(ctx context.Context) (time.Time, error)
	// Filed returns the record up to which every bucket's changes are
	// filed: no change is filed later under a number up to it, so the
	// feed is read up to it.
	Filed(ctx context.Context) (int64, error)
	// FileOwned files changes of the tenants of the buckets held, with the
	// epochs held, as Writer.FileChanges does, and notes those buckets
	// filed up to record seq and the present at least present: in a
	// transaction that first checks that each bucket is still held at its
	// epoch, and fails with a *FencedBucket, filing nothing, when one is
	// not. Each change's K names its bucket in its high 32 bits; the store
	// numbers the changes of one record and bucket on from those filed
	// before in the low ones. Given a writer of the log, it files inside
	// the writer's transaction.
	FileOwned(ctx context.Context, w Writer, held map[int]int64, seq int64, present time.Time, changes []FiledChange) error
	// Behind counts the records after sequence number seq by tenant, the
	// directory's under "": what a process that folded the log up to seq
	// has yet to fold.
	Behind(ctx context.Context, seq int64) (map[string]int64, error)
}

// FencedWriter makes the writes only a bucket's owner may make.
type FencedWriter interface {
	// SaveCheckpoint keeps data as the bucket's fold after record seq.
	SaveCheckpoint(ctx context.Context, seq int64, data []byte) error
}

// Earliest and Latest are the first and last instants a store keeps a
// record at: its time is kept as nanoseconds since 1970 in 64 bits, by
// which the scans order and bound records.
var (
	Earliest = time.Unix(0, math.MinInt64).UTC()
	Latest   = time.Unix(0, math.MaxInt64).UTC()
)

// EndNanos is the bound in nanoseconds of a scan of the records before to
// (ScanTenantBetween): the latest there is when to is zero.
func EndNanos(to time.Time) int64 {
	if to.IsZero() {
		return math.MaxInt64
	}
	return to.UnixNano()
}
