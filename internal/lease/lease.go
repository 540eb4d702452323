// Package lease shares the buckets of tenants between the processes of
// one PostgreSQL database (SPEC.md section 10). Each bucket has a lease:
// an owner, an epoch raised each time the bucket is taken, and an expiry.
// A Manager renews its process's leases, takes free or expired buckets up
// to its fair share of the processes alive, gives back what is beyond it,
// and tells its process which buckets it gained, at which epoch, and which
// it lost. Every write only the owner may make runs through
// store.Buckets.Fenced with that epoch, so a process that lost a lease
// (paused, cut off, too slow) cannot write over its successor.
package lease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palproject/pal/internal/store"
)

// Options configure a Manager.
type Options struct {
	// ID names the process among the members; Addr is where the others
	// reach it.
	ID, Addr string
	// Lease is how long a lease lasts without renewal; a Manager renews
	// its leases every third of it.
	Lease time.Duration
	// Now is the process's clock; time.Now when nil.
	Now func() time.Time
	// Gained is told of a bucket taken, at its epoch, and Lost of a bucket
	// given up or taken by another: the process folds a bucket from the
	// first and stops at once on the second.
	Gained func(bucket int, epoch int64)
	Lost   func(bucket int)
}

// Manager holds a process's leases.
type Manager struct {
	store   store.Buckets
	buckets int
	opts    Options

	mu   sync.Mutex
	held map[int]holding
	// joined is when the last round noted the process alive, by its clock.
	joined time.Time
	// heldNow is a copy of held, with the epochs, for Held to read
	// without waiting for a round, which holds mu through its questions
	// to the database.
	heldNow atomic.Pointer[map[int]int64]
	// leases is every bucket's lease as the last round or Reroute read
	// it, with the owners' addresses: where a tenant's questions go.
	leases atomic.Pointer[[]store.Lease]

	owned            prometheus.Gauge
	renewals, losses prometheus.Counter
	fenced           prometheus.Counter
}

type holding struct {
	epoch   int64
	expires time.Time
}

// New returns the manager of a process's leases on a store of n buckets.
func New(s store.Buckets, n int, opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{store: s, buckets: n, opts: opts, held: map[int]holding{},
		owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pal_buckets_owned",
			Help: "Buckets of tenants this process holds the lease of."}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "pal_lease_renewals_total",
			Help: "Leases of buckets renewed."}),
		losses: prometheus.NewCounter(prometheus.CounterOpts{Name: "pal_lease_losses_total",
			Help: "Leases of buckets lost: expired before they were renewed, or taken by another process."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "pal_fenced_writes_total",
			Help: "Writes refused because another process took the bucket's lease."}),
	}
}

// ID names the process among the members.
func (m *Manager) ID() string { return m.opts.ID }

// Buckets is the number of buckets.
func (m *Manager) Buckets() int { return m.buckets }

// Lost gives up a bucket held at epoch that another process took, as a
// write fenced for it found: it is told at once, not at the next round.
func (m *Manager) Lost(bucket int, epoch int64) {
	m.fenced.Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lose(bucket, epoch, true)
}

// Store is the store of the leases.
func (m *Manager) Store() store.Buckets { return m.store }

// Collectors returns the manager's metrics, to register.
func (m *Manager) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.owned, m.renewals, m.losses, m.fenced}
}

// Held returns the buckets held, with their epochs, as they stood when
// they last changed.
func (m *Manager) Held() map[int]int64 {
	if p := m.heldNow.Load(); p != nil {
		return maps.Clone(*p)
	}
	return map[int]int64{}
}

// Lag counts, for each bucket held, the records of its tenants in the log
// after the record folded: how far the process's answers about them are
// behind the log.
func (m *Manager) Lag(ctx context.Context, folded int64) (map[int]int64, error) {
	behind, err := m.store.Behind(ctx, folded)
	if err != nil {
		return nil, err
	}
	held := m.Held() // epochs start at 1
	lag := make(map[int]int64, len(held))
	for b := range held {
		lag[b] = 0
	}
	for tenant, n := range behind {
		if tenant == "" {
			continue // the directory's records are of no bucket
		}
		if b := store.Bucket(tenant, m.buckets); held[b] > 0 {
			lag[b] += n
		}
	}
	return lag, nil
}

// changed notes that the buckets held changed, with mu held.
func (m *Manager) changed() {
	now := make(map[int]int64, len(m.held))
	for b, h := range m.held {
		now[b] = h.epoch
	}
	m.heldNow.Store(&now)
	m.owned.Set(float64(len(m.held)))
}

// Fenced runs fn as a write only the bucket's owner may make, at the epoch
// held: it fails with store.ErrFenced when the process does not hold the
// bucket, or another took it since, and then gives the bucket up at once.
func (m *Manager) Fenced(ctx context.Context, bucket int, fn func(store.FencedWriter) error) error {
	m.mu.Lock()
	h, ok := m.held[bucket]
	m.mu.Unlock()
	if !ok {
		m.fenced.Inc()
		return fmt.Errorf("bucket %d: %w", bucket, store.ErrFenced)
	}
	err := m.store.Fenced(ctx, bucket, h.epoch, fn)
	if errors.Is(err, store.ErrFenced) {
		m.fenced.Inc()
		m.mu.Lock()
		m.lose(bucket, h.epoch, true)
		m.mu.Unlock()
	}
	return err
}

// Run ticks every third of a lease until ctx ends, then gives every
// bucket back and leaves. A failed tick is told to report and tried again
// at the next.
func (m *Manager) Run(ctx context.Context, report func(error)) {
	t := time.NewTicker(m.opts.Lease / 3)
	defer t.Stop()
	for {
		if err := m.Tick(ctx); err != nil && ctx.Err() == nil {
			report(err)
		}
		select {
		case <-ctx.Done():
			m.leave()
			return
		case <-t.C:
		}
	}
}

// Start runs the rounds (Run) in the background, and returns what stops
// them: stop gives every bucket back and returns once it has.
func (m *Manager) Start(report func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		m.Run(ctx, report)
	}()
	return func() {
		cancel()
		<-ran
	}
}

// leave gives every bucket back, so that the others take them at once
// rather than when the leases expire.
func (m *Manager) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.Lease/3)
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	for b, h := range m.held {
		m.store.Release(ctx, b, m.opts.ID, h.epoch)
		m.lose(b, h.epoch, false)
	}
	m.store.Leave(ctx, m.opts.ID)
}

// Tick runs one round: it gives up the leases that expired by the
// process's clock (it was paused: another may own them already), notes the
// process alive, renews its leases, then gives back the buckets beyond its
// fair share, or takes free and expired ones up to it.
func (m *Manager) Tick(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	until := now.Add(m.opts.Lease)
	for b, h := range m.held {
		if !now.Before(h.expires) {
			m.lose(b, h.epoch, true)
		}
	}
	// A member is forgotten, and its sessions ended, a round (a third of a
	// lease) after it expired: a process whose clock is behind, or whose
	// renewal is late, by less than that keeps its sessions, though it may
	// lose its buckets. A clock kept by NTP is milliseconds off. And only
	// when it expired before this process's last round: after an outage
	// of the database, when no one could renew, no one is forgotten until
	// each had a round to renew in.
	forget := now.Add(-m.opts.Lease / 3)
	if m.joined.Before(forget) {
		forget = m.joined
	}
	members, gone, err := m.store.Join(ctx, store.Member{ID: m.opts.ID, Addr: m.opts.Addr, Expires: until}, now, forget)
	if err != nil {
		return err
	}
	m.joined = now
	var ended error
	if len(gone) > 0 {
		ended = m.store.EndSessions(ctx, gone)
	}
	for _, b := range m.sortedHeld() {
		h := m.held[b]
		ok, err := m.store.Renew(ctx, b, m.opts.ID, h.epoch, until)
		if err != nil {
			return err
		}
		if !ok {
			m.lose(b, h.epoch, true)
			continue
		}
		m.held[b] = holding{h.epoch, until}
		m.renewals.Inc()
	}
	share := m.share(members)
	for held := m.sortedHeld(); len(held) > share; held = held[:len(held)-1] {
		b := held[len(held)-1]
		if err := m.store.Release(ctx, b, m.opts.ID, m.held[b].epoch); err != nil {
			return err
		}
		m.lose(b, m.held[b].epoch, false)
	}
	// Every round reads the leases, whether it takes buckets or not: they
	// say where each tenant's questions go.
	leases, err := m.store.Leases(ctx)
	if err != nil {
		return err
	}
	defer m.leases.Store(&leases)
	for i, l := range leases {
		if len(m.held) >= share {
			break
		}
		if _, mine := m.held[l.Bucket]; mine || l.Owner != "" && l.Owner != m.opts.ID && !l.Expires.Before(now) {
			continue
		}
		taken, ok, err := m.store.Take(ctx, l.Bucket, m.opts.ID, now, until)
		if err != nil {
			return err
		}
		if ok {
			taken.Addr = m.opts.Addr
			leases[i] = taken
			m.held[l.Bucket] = holding{taken.Epoch, until}
			m.changed()
			if m.opts.Gained != nil {
				m.opts.Gained(l.Bucket, taken.Epoch)
			}
		}
	}
	return ended
}

// Route is where the questions about a tenant go: its bucket's owner, as
// a lease names it, and the address it answers at.
type Route struct {
	Bucket int
	Owner  string
	Addr   string
	// Self says the owner is this process.
	Self bool
}

// Route returns where a tenant's questions go, as the last round read the
// leases, and false when no process alive holds its bucket by this
// process's clock, or no round read them yet.
func (m *Manager) Route(tenant string) (Route, bool) {
	p := m.leases.Load()
	if p == nil {
		return Route{}, false
	}
	return m.route(*p, tenant)
}

// Reroute reads the leases again, for a question whose owner did not
// answer: the bucket may have changed hands since the last round.
func (m *Manager) Reroute(ctx context.Context, tenant string) (Route, bool, error) {
	leases, err := m.store.Leases(ctx)
	if err != nil {
		return Route{}, false, err
	}
	m.leases.Store(&leases)
	r, ok := m.route(leases, tenant)
	return r, ok, nil
}

// Routes returns where each bucket's questions go, by bucket, as the last
// round read the leases (or, with fresh, as the database has them now): a
// bucket missing has no process alive holding it.
func (m *Manager) Routes(ctx context.Context, fresh bool) (map[int]Route, error) {
	p := m.leases.Load()
	if fresh || p == nil {
		leases, err := m.store.Leases(ctx)
		if err != nil {
			return nil, err
		}
		m.leases.Store(&leases)
		p = &leases
	}
	out := make(map[int]Route, len(*p))
	for b := range m.buckets {
		if r, ok := m.routeBucket(*p, b); ok {
			out[b] = r
		}
	}
	return out, nil
}

func (m *Manager) route(leases []store.Lease, tenant string) (Route, bool) {
	return m.routeBucket(leases, store.Bucket(tenant, m.buckets))
}

func (m *Manager) routeBucket(leases []store.Lease, b int) (Route, bool) {
	if b >= len(leases) {
		return Route{}, false
	}
	l := leases[b]
	if l.Owner == "" || l.Addr == "" || !m.opts.Now().Before(l.Expires) {
		return Route{}, false
	}
	return Route{Bucket: b, Owner: l.Owner, Addr: l.Addr, Self: l.Owner == m.opts.ID}, true
}

// share is the process's fair share of the buckets among the members
// alive, by its rank among them: the first take one more while the
// buckets do not divide evenly.
func (m *Manager) share(members []store.Member) int {
	rank := slices.IndexFunc(members, func(x store.Member) bool { return x.ID == m.opts.ID })
	if rank < 0 || len(members) == 0 {
		return 0
	}
	n := m.buckets / len(members)
	if rank < m.buckets%len(members) {
		n++
	}
	return n
}

// lose gives up a bucket held at an epoch: lost, or given back.
func (m *Manager) lose(bucket int, epoch int64, lost bool) {
	if h, ok := m.held[bucket]; !ok || h.epoch != epoch {
		return
	}
	delete(m.held, bucket)
	if lost {
		m.losses.Inc()
	}
	m.changed()
	if m.opts.Lost != nil {
		m.opts.Lost(bucket)
	}
}

func (m *Manager) sortedHeld() []int {
	out := make([]int, 0, len(m.held))
	for b := range m.held {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}

// DefaultBuckets is the number of buckets of a database first served
// without --buckets; MaxBuckets the most it may have.
const (
	DefaultBuckets = 64
	MaxBuckets     = 1 << 16
)
