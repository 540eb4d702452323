package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/web"
)

// Config configures a server.
type Config struct {
	Store   store.Store
	Options attribution.Options
	Metrics metrics.Config
	// OIDC, when set, makes the server accept the issuer's JWTs.
	OIDC   *OIDC
	Logger *slog.Logger
	// Clock gives the time of the link events the service makes, and the
	// latest time a line other than the operator's may have.
	Clock func() time.Time
	// SnapshotEvery is how many records are applied between two
	// snapshots of the state.
	SnapshotEvery int
	// FoldChunk is how many records a cold start (no usable snapshot)
	// holds at once as it folds the log; 0 is 20,000.
	FoldChunk int
	// LoadInBackground makes New return before the state is loaded: until
	// it is, /healthz answers "loading" with the records folded so far and
	// every other route 503 with Retry-After. Wait says when it is done. A
	// cold start of a large log takes minutes; the process is alive and
	// says so meanwhile.
	LoadInBackground bool
	// WebhookAllowHTTP lets webhooks post over plain http://, and
	// WebhookAllowPrivate to loopback, private, link-local, multicast and
	// unspecified addresses; both are off by default.
	WebhookAllowHTTP    bool
	WebhookAllowPrivate bool
	// Resolver resolves webhook hosts; net.DefaultResolver by default.
	Resolver Resolver
	// WriteRate bounds the events each principal but the operator writes a
	// second, in bursts of at most WriteBurst; 0 is no limit.
	WriteRate  float64
	WriteBurst int
	// ForwardTimeout bounds how long a process sharing buckets waits for
	// the owner of a tenant's bucket to be reached, and again to begin its
	// answer, for a question it forwards; 0 is DefaultForwardTimeout.
	ForwardTimeout time.Duration
}

// Server serves the API. Several servers, in one process or many, may share
// one store.
type Server struct {
	store    store.Store
	cfg      Config
	log      *slog.Logger
	tokens   *tokenVerifier
	views    *views
	commits  commits
	limits   *limits
	registry *prometheus.Registry
	m        serverMetrics
	mux      *http.ServeMux
	// loaded is closed once the state is loaded, loadErr then set;
	// folding counts the records folded meanwhile.
	loaded  chan struct{}
	loadErr error
	folding atomic.Int64
	// consumption is how far the state noted the resources with
	// consumption kept as segments.
	consumption consumptionNotes
	// own, when set, tells the buckets of tenants the process owns and
	// where the others' owners answer; forwarder asks them, and forwards
	// times it (Own).
	own       Ownership
	forwarder *http.Client
	patient   *http.Client
	forwards  *prometheus.HistogramVec
	// forwardTimeout is how long an owner has to be reached and to begin
	// its answer; silent holds, by process, until when an owner that did
	// not answer is not asked again.
	forwardTimeout time.Duration
	silent         sync.Map
	// committing is held by a group of writes from its first fold to its
	// commit, or its failure and the state marked stale: a snapshot never
	// keeps records the log may not take. A process sharing the tenants
	// also holds it to tell the state what it owns and to file changes.
	committing sync.Mutex
	// shared is the store of a process sharing the tenants (own set);
	// owning the buckets, with their epochs, that the state was last told
	// it owns (reown), nil until it is told. unfiled holds, under
	// views.mu, the changes of the tenants it owns folded from others'
	// records, until they are filed (fileOwned).
	shared  store.Buckets
	key     string
	owning  atomic.Pointer[map[int]int64]
	unfiled []fold.Change
	// split, set by tests only, splits the tenants into groups, each
	// standing for a process that owns them: an answer across tenants is
	// then merged from a part of each (owners).
	split []func(tenant string) bool
}

type serverMetrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	events      *prometheus.CounterVec
	storeErrors prometheus.Counter
	refusals    *prometheus.CounterVec
	// stateWait is how long writers wait for readers to leave a copy of
	// the state.
	stateWait prometheus.Histogram
}

// New returns a server whose state is restored from the store's snapshot
// and the log after it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 10000
	}
	if cfg.Options.Policy == "" {
		cfg.Options = attribution.DefaultOptions()
	}
	if cfg.Metrics.Rates == nil {
		cfg.Metrics = metrics.DefaultConfig()
	}
	s := &Server{store: cfg.Store, cfg: cfg, log: cfg.Logger, registry: prometheus.NewRegistry()}
	s.views = newViews(cfg.Options, cfg.FoldChunk, func(d time.Duration) { s.m.stateWait.Observe(d.Seconds()) })
	s.limits = newLimits(cfg.WriteRate, cfg.WriteBurst)
	if cfg.OIDC != nil {
		v, err := newTokenVerifier(ctx, *cfg.OIDC)
		if err != nil {
			return nil, err
		}
		s.tokens = v
	}
	s.registerMetrics()
	s.routes()
	s.loaded = make(chan struct{})
	if cfg.LoadInBackground {
		go func() {
			s.loadErr = s.load(ctx)
			close(s.loaded)
		}()
		return s, nil
	}
	s.loadErr = s.load(ctx)
	close(s.loaded)
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	return s, nil
}

// Wait waits until the state is loaded, and returns what failed to load
// it, if anything.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-s.loaded:
		return s.loadErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isLoaded reports whether the state is loaded.
func (s *Server) isLoaded() bool {
	select {
	case <-s.loaded:
		return s.loadErr == nil
	default:
		return false
	}
}

// load restores the state from the snapshot, if any, and the log after it.
func (s *Server) load(ctx context.Context) error {
	start := time.Now()
	head, err := s.store.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("load log: %w", err)
	}
	snapshot := s.usableSnapshot(ctx, head)
	var records int64
	last, lastAt := snapshot.seq, start
	first := true
	err = s.views.each(func(st *fold.State) error {
		// The first copy says how the fold goes: in the log about every
		// five seconds, and on /healthz.
		if first {
			st.SetProgress(func(at int64) {
				s.folding.Store(at)
				if now := time.Now(); now.Sub(lastAt) >= 5*time.Second {
					s.log.Info("folding the log", "records", at, "records_per_second", int(float64(at-last)/now.Sub(lastAt).Seconds()))
					last, lastAt = at, now
				}
			})
			defer st.SetProgress(nil)
			first = false
		}
		if err := s.restore(ctx, st, s.store, snapshot); err != nil {
			return err
		}
		if err := st.CatchUp(ctx, s.store); err != nil {
			return fmt.Errorf("load log: %w", err)
		}
		// The writers of these records filed their changes.
		st.TakeOutbox()
		records = st.Seq()
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.noteConsumption(ctx, true); err != nil {
		return fmt.Errorf("load the resources with consumption: %w", err)
	}
	s.log.Info("state loaded", "records", records, "from_snapshot", snapshot.seq, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Server) registerMetrics() {
	s.m = serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pal_http_requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pal_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pal_events_total",
			Help: "Events received, by outcome: accepted, duplicate or refused."}, []string{"outcome"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "pal_store_errors_total",
			Help: "Requests that failed on an error of the store."}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pal_auth_refusals_total",
			Help: "Requests refused for their token (401) or their role (403)."}, []string{"code"}),
		stateWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pal_state_drain_seconds",
			Help: "Time a writer waits for readers to leave the copy of the state it changes next; readers never wait.", Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10)}),
	}
	s.registry.MustRegister(s.m.requests, s.m.latency, s.m.events, s.m.storeErrors, s.m.refusals, s.m.stateWait,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.protect(s.mux) }

// protect sets the headers every answer carries, and answers a panic with a
// 500 that says nothing of it, logged for the operator.
func (s *Server) protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.TLS != nil {
			// Over HTTPS, browsers are told to come back over HTTPS only.
			h.Set("Strict-Transport-Security", "max-age=63072000")
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("request panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeJSON(w, http.StatusInternalServerError, map[string]any{"error": apiError{Code: codeInternal, Message: "the service failed on this request; the operator's log says why"}})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// loadingError is the answer of a process still folding its log.
func (s *Server) loadingError() error {
	return &apiError{Code: codeLoading, RetryAfter: 5,
		Message: fmt.Sprintf("the service is folding its log (%d records so far) and answers once it is done; /healthz says how far it is", s.folding.Load())}
}

// handler is an API handler: it returns an error instead of writing one.
type handler func(w http.ResponseWriter, r *http.Request, p Principal) error

// route is one endpoint, as served and as documented in /openapi.json.
type route struct {
	method, path string
	summary      string
	// roles may call it; none means it needs no token.
	roles []string
	h     handler
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	for _, rt := range s.routeTable() {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	ui := web.Handler()
	s.mux.Handle("GET /{$}", ui)
	s.mux.Handle("GET /static/", ui)
	s.mux.HandleFunc("/", s.unrouted)
}

// unrouted answers, in the API's shape, a request that no route takes: 405
// with Allow when its path is served for other methods, 404 otherwise. The
// codes are those SPEC.md section 8 lists: a wrong method is a BadRequest.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); m != r.Method && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": apiError{Code: codeBadRequest,
			Message: fmt.Sprintf("%s takes %s, not %s", r.URL.Path, strings.Join(allow, ", "), r.Method)}})
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"error": apiError{Code: codeNotFound,
		Message: fmt.Sprintf("no endpoint %s: /openapi.json lists them", r.URL.Path)}})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// wrap authenticates the caller, runs the handler, writes its error in the
// API's shape, and counts the request.
func (s *Server) wrap(rt route) http.Handler {
	name := rt.method + " " + rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// API answers carry data that no cache should keep.
		w.Header().Set("Cache-Control", "no-store")
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		err := s.serve(sw, r, rt)
		if errors.Is(err, errPartGiven) {
			err = nil
		}
		if err != nil {
			ae, known := asAPIError(err)
			if !known {
				s.m.storeErrors.Inc()
				s.log.Error("request failed", "route", name, "err", err)
			}
			if ae.Code == codeUnauthorized || ae.Code == codeForbidden {
				s.m.refusals.WithLabelValues(strconv.Itoa(statusOf[ae.Code])).Inc()
			}
			if ae.RetryAfter > 0 {
				sw.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
			}
			writeJSON(sw, statusOf[ae.Code], map[string]any{"error": ae})
		}
		s.m.requests.WithLabelValues(name, strconv.Itoa(sw.status)).Inc()
		s.m.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) error {
	loading := len(rt.roles) > 0 && !s.isLoaded()
	if loading && s.own == nil {
		return s.loadingError()
	}
	var p Principal
	if len(rt.roles) > 0 {
		var err error
		if p, err = s.authenticate(r); err != nil {
			return err
		}
		if err := need(p, rt.roles...); err != nil {
			return err
		}
		// A caller with a token is told which process answered; the
		// process's name is no one else's business.
		if s.own != nil {
			w.Header().Set(answeredBy, s.own.ID())
		}
		// A process still loading answers nothing itself, but passes a
		// question about one tenant on to its owner.
		if loading {
			if done, err := s.forward(w, r, askedOf(rt, r, p)); done || err != nil {
				return err
			}
			return s.loadingError()
		}
		// A write costs its caller one token; a batch of events costs one
		// an event, charged once it is read (postEvents).
		if rt.method != http.MethodGet && rt.path != "/v1/events" {
			if err := s.limits.charge(p, 1, s.cfg.Clock()); err != nil {
				return err
			}
		}
	}
	// A process asking for a part asks the owner of its buckets, which
	// answers it whatever tenant the question is about.
	tenant := ""
	if r.Header.Get(partHeader) == "" || r.Header.Get(forwardedBy) == "" {
		tenant = askedOf(rt, r, p)
		if done, err := s.forward(w, r, tenant); done || err != nil {
			return err
		}
	}
	r, err := s.withGathering(w, r, rt.path == "/v1/whatif", tenant != "")
	if err != nil {
		return err
	}
	return rt.h(w, r, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// sync brings both copies of the state up to date with the log, which
// other servers on the same store may have appended to: they fold what was
// committed after their last record, read through src (fold.State.CatchUp);
// the writers of those records filed their changes. When nothing was, the
// copies are left alone: no swap, and no wait for readers.
//
// A write folds into the copy not published, which a failed catch-up may
// have left behind or stale while the published one is not: both must be
// current before it, where a reader needs the published one only.
func (s *Server) sync(ctx context.Context, src fold.Source) error {
	last, err := s.store.LastSeq(ctx)
	if err != nil {
		return err
	}
	if s.views.current(last) {
		return nil
	}
	return s.catchUp(ctx, src, last)
}

// syncTo brings the published copy of the state up to the log's record
// last, for a reader.
func (s *Server) syncTo(ctx context.Context, src fold.Source, last int64) error {
	var current bool
	s.views.read(func(st *fold.State) error {
		current = last <= st.Seq() && !st.Stale()
		return nil
	})
	if current {
		return nil
	}
	return s.catchUp(ctx, src, last)
}

// catchUp folds into both copies what was committed after their last
// record, the log's record last at least; the writers of those records
// filed their changes. A copy that is stale (a write it folded failed)
// starts again from the latest snapshot, when there is a usable one,
// rather than from the log's first record.
func (s *Server) catchUp(ctx context.Context, src fold.Source, last int64) error {
	// The snapshot is read once, by the first of the readers that find a
	// copy stale, with the copies held: the others find them current.
	var snapshot *storedSnapshot
	_, err := update(s.views, src, func(st *fold.State, src fold.Source) (struct{}, error) {
		wasStale := st.Stale()
		if wasStale {
			// Restored, it owns what the snapshot's did, and its catch-up
			// folds records whose changes were filed: it is told again
			// what it owns, and files what moved from the notes on.
			s.owning.Store(nil)
			if snapshot == nil {
				snapshot = s.usableSnapshot(ctx, last)
			}
			// A snapshot that does not fit leaves the state stale: it
			// folds the whole log.
			if err := s.restore(ctx, st, src, snapshot); err != nil {
				return struct{}{}, err
			}
		}
		err := st.CatchUp(ctx, src)
		if err != nil && !st.Stale() {
			err = intact{err}
		}
		// The changes of the tenants it owns are filed by a process
		// sharing the tenants; otherwise their writers filed them. Those
		// of the chunks a catch-up cut short folded are kept too: the
		// state goes on past them.
		if changes := st.TakeOutbox(); !st.Stale() && !wasStale {
			if r, ok := src.(*replay); !ok || !r.replaying {
				s.queue(changes)
			}
		}
		return struct{}{}, err
	})
	return err
}

// storedSnapshot is the store's snapshot, its data nil when there is none
// to use.
type storedSnapshot struct {
	seq  int64
	data []byte
}

// restore restores a snapshot into st, if there is one, and says when it
// does not fit: st is then left as it was, and folds the whole log.
func (s *Server) restore(ctx context.Context, st *fold.State, src fold.Source, snapshot *storedSnapshot) error {
	if snapshot.data == nil {
		return nil
	}
	ok, err := st.Restore(ctx, src, snapshot.seq, snapshot.data)
	if err == nil && !ok {
		s.log.Warn("the snapshot does not fit this version or configuration; folding the whole log")
	}
	return err
}

// usableSnapshot returns the store's snapshot, unless it is after record
// last, the log's last, which it cannot be unless it kept a write the log
// did not take: the state then folds the whole log, as without one.
func (s *Server) usableSnapshot(ctx context.Context, last int64) *storedSnapshot {
	seq, data, err := s.store.LoadSnapshot(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &storedSnapshot{}
	case err != nil:
		s.log.Warn("the snapshot could not be read; folding the whole log", "error", err)
		return &storedSnapshot{}
	case seq > last:
		s.log.Warn("the snapshot is after the log's last record; folding the whole log", "snapshot", seq, "last", last)
		return &storedSnapshot{}
	}
	return &storedSnapshot{seq, data}
}

// read runs fn on the state, caught up with the log, which nothing changes
// while fn runs: what fn keeps of it past its return must be a copy.
func (s *Server) read(ctx context.Context, fn func(st *fold.State) error) error {
	// One question of the store says whether the log or the consumption
	// kept out of it moved.
	seq, segment, err := s.store.Heads(ctx)
	if err != nil {
		return err
	}
	if err := s.syncTo(ctx, s.store, seq); err != nil {
		return err
	}
	if err := s.noteConsumptionTo(ctx, segment, false); err != nil {
		return err
	}
	return s.views.read(fn)
}

// snapshotIfDue saves a snapshot when enough records were folded since the
// last one.
func (s *Server) snapshotIfDue(ctx context.Context) {
	var due bool
	s.views.read(func(st *fold.State) error {
		due = st.SinceSnapshot() >= s.cfg.SnapshotEvery
		return nil
	})
	if !due {
		return
	}
	if err := s.Snapshot(ctx); err != nil {
		s.m.storeErrors.Inc()
		s.log.Error("snapshot failed", "err", err)
	}
}

// Snapshot saves a snapshot of the state now, so that the next start
// replays only what comes after; the service calls it when it stops. It is
// encoded from the published copy, as a reader: readers go on meanwhile.
func (s *Server) Snapshot(ctx context.Context) error {
	if !s.isLoaded() {
		// Stopped while it loads: the snapshot it started from stands.
		return nil
	}
	var folded int
	var seq int64
	var data []byte
	stale := false
	// A group of writes publishes what it folds before it commits: the
	// snapshot waits for it to commit, or to fail and mark the state stale.
	s.committing.Lock()
	err := s.views.read(func(st *fold.State) error {
		// A state that folded a write the log did not take (its commit
		// failed) holds records the log will number otherwise: kept, it
		// would be the next start's, wrong for good. It folds the log
		// again at the next write or read; a later snapshot keeps that.
		if stale = st.Stale(); stale {
			return nil
		}
		folded = st.SinceSnapshot()
		var err error
		seq, data, err = st.Snapshot()
		return err
	})
	s.committing.Unlock()
	if err != nil || stale {
		return err
	}
	if err := s.store.SaveSnapshot(ctx, seq, data); err != nil {
		return err
	}
	_, err = update(s.views, s.store, func(st *fold.State, _ fold.Source) (struct{}, error) {
		st.Snapshotted(folded)
		return struct{}{}, nil
	})
	return err
}
