package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/lease"
	"github.com/palproject/pal/internal/store"
)

// A question about one tenant is answered by its bucket's owner (SPEC.md
// section 10): the process that receives it, when it is not the owner,
// forwards it there with the caller's own token, which the owner checks
// again, and passes the owner's answer back as it is.

// forwardedBy is the header a forwarded question carries: the process that
// forwarded it. Its receiver answers it itself, whatever it thinks of the
// leases, so that a question goes one hop at most.
const forwardedBy = "X-Pal-Forwarded-By"

// answeredBy is the header of every answer to a caller with a token, of a
// process sharing buckets: the process that answered, the owner for a
// forwarded question.
const answeredBy = "X-Pal-Process"

// DefaultForwardTimeout is how long a process waits, unless told
// otherwise, for the owner of a tenant's bucket to be reached, and again to
// begin its answer: an owner answers a question about one tenant in
// milliseconds, and one that does not in two seconds is taken for stopped.
const DefaultForwardTimeout = 2 * time.Second

// Ownership is what a process knows of the buckets of tenants among those
// serving one database (SPEC.md section 10): those it owns, and where the
// others are.
type Ownership interface {
	// ID names the process among the members.
	ID() string
	// Held returns the buckets held, with their epochs.
	Held() map[int]int64
	// Route returns where a tenant's questions go, false when no process
	// alive is known to hold its bucket.
	Route(tenant string) (lease.Route, bool)
	// Reroute reads the leases again, after the owner did not answer.
	Reroute(ctx context.Context, tenant string) (lease.Route, bool, error)
	// Collectors returns the metrics of the process's leases.
	Collectors() []prometheus.Collector
	// Lag counts, for each bucket held, the records of its tenants in the
	// log after the record folded.
	Lag(ctx context.Context, folded int64) (map[int]int64, error)
	// Buckets is the number of buckets.
	Buckets() int
	// Store is the store of the leases, which the process files its
	// changes in.
	Store() store.Buckets
	// Routes returns where each bucket's questions go, as the last round
	// read the leases, or with fresh as the database has them now.
	Routes(ctx context.Context, fresh bool) (map[int]lease.Route, error)
	// Lost gives up a bucket that a write found taken by another.
	Lost(bucket int, epoch int64)
}

// Own makes the process share the buckets of tenants with the others on
// its database: it tells the buckets it owns, on /healthz and in its
// metrics, and forwards the questions about a tenant of another's bucket
// to that process. It is called before the server serves.
func (s *Server) Own(o Ownership) {
	s.own, s.shared = o, o.Store()
	key, err := s.shared.Key(context.Background())
	if err != nil {
		// Without the key, no process asks this one for what only it
		// knows as the operator; the rest goes on.
		s.log.Error("the key of the processes could not be read", "error", err)
	}
	s.key = key
	s.registry.MustRegister(o.Collectors()...)
	s.registry.MustRegister(foldLag{s, prometheus.NewDesc("pal_bucket_fold_lag_records",
		"Records of each bucket this process holds that are in the log but not yet in its state: how far behind the log its answers about the bucket's tenants are.",
		[]string{"bucket"}, nil)})
	s.forwards = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pal_forward_seconds",
		Help:    "Questions about one tenant sent to the owner of its bucket, by outcome: answered by the owner, by the owner found on a second try after the leases were read again, or here when no owner answered.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"outcome"})
	s.registry.MustRegister(s.forwards)
	timeout := s.cfg.ForwardTimeout
	if timeout <= 0 {
		timeout = DefaultForwardTimeout
	}
	s.forwardTimeout = timeout
	// The owner has timeout to be reached, and again to begin its answer;
	// the answer itself may take as long as the caller waits. Questions go
	// straight to the owner, never through a proxy of the environment:
	// they carry the callers' tokens.
	t := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	s.forwarder = &http.Client{Transport: t,
		// The owner's redirects, if any, are the caller's to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// What an owner must fold records for before it answers is waited for
	// as long as the caller waits, once the owner is reached.
	patient := t.Clone()
	patient.ResponseHeaderTimeout = 0
	s.patient = &http.Client{Transport: patient, CheckRedirect: s.forwarder.CheckRedirect}
}

// foldLag measures, when scraped, each held bucket's records not yet folded.
type foldLag struct {
	s    *Server
	desc *prometheus.Desc
}

func (l foldLag) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

func (l foldLag) Collect(ch chan<- prometheus.Metric) {
	if !l.s.isLoaded() {
		return
	}
	var folded int64
	l.s.views.read(func(st *fold.State) error {
		folded = st.Seq()
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lag, err := l.s.own.Lag(ctx, folded)
	if err != nil {
		l.s.log.Warn("the fold lag of the buckets could not be measured", "error", err)
		return
	}
	for b, n := range lag {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, float64(n), strconv.Itoa(b))
	}
}

// Follow folds what the other processes sharing the database commit,
// every period, until ctx ends: the questions asked of this process then
// wait for little to be folded first, and its fold lag stays within a
// period of the others' writes.
func (s *Server) Follow(ctx context.Context, every time.Duration) {
	if s.Wait(ctx) != nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.share(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrFenced) {
			s.m.storeErrors.Inc()
			s.log.Warn("folding the other processes' writes failed", "error", err)
		}
	}
}

// silentFor is how many forward timeouts an owner that did not answer is
// not asked again: a stopped owner would otherwise hold every question of
// its buckets for a timeout until its leases expire.
const silentFor = 5

// statusCallerLeft is the status counted for a question whose caller left
// before it was answered, as proxies count it.
const statusCallerLeft = 499

// hopByHop are the headers of one connection, which an answer passed on
// from the owner does not carry over (RFC 9110, section 7.6.1).
var hopByHop = map[string]bool{"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true}

// askedOf returns the one tenant a GET request asks of, when its answer is
// of that tenant's fold alone: its bucket's owner answers it. It returns ""
// when the request asks of several tenants, of none, or is malformed (the
// handler then says why).
func askedOf(rt route, r *http.Request, p Principal) string {
	if rt.method != http.MethodGet {
		// An account's link is changed where its tenant is folded.
		if rt.path == api.LinkPath+"/{partnerId}" {
			return p.Tenant
		}
		return ""
	}
	switch rt.path {
	case "/v1/explain", "/v1/timeline":
		if tenant, _, err := resourceParams(r, p); err == nil {
			return tenant
		}
	case "/v1/me/credit", api.LinkPath, api.LinkPath + "/{partnerId}":
		return p.Tenant
	case "/v1/attribution", "/v1/refusals", "/v1/reports/monthly", "/v1/reports/azure":
		tenant, _ := p.tenantScope()
		return tenant
	case "/v1/links":
		if tenant, org, err := linksScope(r, p); err == nil && org == "" {
			return tenant
		}
	case "/v1/tables/{table}":
		if sc, err := scopeOf(r.URL.Query(), p); err == nil && sc.org == "" {
			return sc.tenant
		}
	}
	return ""
}

// forward answers a question about tenant from its bucket's owner, and
// reports false when this process is to answer it: it owns the bucket, or
// the question was forwarded to it. When no owner answered, the second try
// made after reading the leases again, the question waits for the bucket
// to have one (Unavailable), unless this process folds the tenant.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, tenant string) (bool, error) {
	if s.own == nil || tenant == "" {
		return false, nil
	}
	if r.Header.Get(forwardedBy) != "" {
		return false, s.answersFor(r.Context(), tenant)
	}
	start := time.Now()
	to, ok := s.own.Route(tenant)
	if !ok {
		// The last round's leases are behind: read them again.
		var err error
		if to, ok, err = s.own.Reroute(r.Context(), tenant); err != nil {
			return true, err
		}
	}
	if ok && to.Self {
		return false, s.answersFor(r.Context(), tenant)
	}
	// A question that writes carries its body to the owner, and keeps it
	// to be answered here.
	var body []byte
	if r.Body != nil && r.Method != http.MethodGet {
		var err error
		if body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBatchBytes)); err != nil {
			return true, errorf(codeBadRequest, "read the request: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	here := func() (bool, error) {
		s.forwards.WithLabelValues("here").Observe(time.Since(start).Seconds())
		return false, s.answersFor(r.Context(), tenant)
	}
	if !ok {
		return here()
	}
	// An owner that did not answer a moment ago is not waited for again:
	// the questions of its buckets are answered here meanwhile (as
	// Unavailable, unless this process folds the tenant).
	if until, failed := s.silent.Load(to.Owner); failed && start.Before(until.(time.Time)) {
		return here()
	}
	outcome := "owner"
	res, err := s.ask(r, to, body)
	if err != nil && r.Context().Err() == nil {
		s.silent.Store(to.Owner, time.Now().Add(silentFor*s.forwardTimeout))
		s.log.Warn("the owner of a tenant's bucket did not answer; reading the leases again", "tenant", tenant, "bucket", to.Bucket, "owner", to.Owner, "addr", to.Addr, "error", err)
		again, ok, rerr := s.own.Reroute(r.Context(), tenant)
		switch {
		case rerr != nil:
			err = rerr
		case !ok || again.Self || again == to:
			// No one else holds it, or this process now does.
			err = fmt.Errorf("no other owner: %w", err)
		default:
			outcome = "rerouted"
			if res, err = s.ask(r, again, body); err != nil && r.Context().Err() == nil {
				s.silent.Store(again.Owner, time.Now().Add(silentFor*s.forwardTimeout))
			}
		}
	}
	if err != nil && r.Context().Err() != nil {
		// The caller left: nobody is to be answered.
		w.WriteHeader(statusCallerLeft)
		return true, nil
	}
	if err != nil {
		return here()
	}
	defer res.Body.Close()
	h := w.Header()
	for k, vs := range res.Header {
		if !hopByHop[k] {
			h[k] = vs
		}
	}
	w.WriteHeader(res.StatusCode)
	if _, err := io.Copy(w, res.Body); err != nil {
		s.log.Warn("a forwarded answer was cut", "tenant", tenant, "owner", to.Owner, "error", err)
	}
	s.forwards.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return true, nil
}

// answersFor makes sure this process folds a tenant before it answers a
// question about it: the state is told the buckets held now, and a tenant
// of a bucket it does not hold is Unavailable until one process does.
func (s *Server) answersFor(ctx context.Context, tenant string) error {
	if !s.isLoaded() {
		return nil
	}
	bucket := store.Bucket(tenant, s.own.Buckets())
	if _, ok := s.own.Held()[bucket]; ok {
		if err := s.reownNow(ctx); err != nil {
			return err
		}
	}
	if owning := s.owning.Load(); owning != nil {
		if _, ok := (*owning)[bucket]; ok {
			return nil
		}
	}
	return &apiError{Code: codeUnavailable, Message: fmt.Sprintf("no process holds the bucket of tenant %s for the moment: ask again in a few seconds", tenant), RetryAfter: 2}
}

// reownNow tells the state the buckets held now, when they changed.
func (s *Server) reownNow(ctx context.Context) error {
	held, owning := s.own.Held(), s.owning.Load()
	if owning != nil && maps.Equal(*owning, held) {
		return nil
	}
	s.committing.Lock()
	defer s.committing.Unlock()
	if err := s.read(ctx, func(*fold.State) error { return nil }); err != nil {
		return err
	}
	return s.reown(ctx, s.store)
}

// ownerRequest is r, as one process asks it of the owner named by to: its
// method, path and query, its body, the caller's headers that the answer
// depends on, and forwardedBy, so that the owner answers it itself.
func (s *Server) ownerRequest(ctx context.Context, to lease.Route, r *http.Request, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, to.Addr+r.URL.RequestURI(), rd)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"Authorization", "Accept", "Accept-Language", "Content-Type", "If-Match", keyHeader} {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	req.Header.Set(forwardedBy, s.own.ID())
	return req, nil
}

// ask sends r to the owner named by to, with the caller's headers, and
// returns its answer. An owner still loading its state (503) did not
// answer.
func (s *Server) ask(r *http.Request, to lease.Route, body []byte) (*http.Response, error) {
	req, err := s.ownerRequest(r.Context(), to, r, body)
	if err != nil {
		return nil, err
	}
	// A write is waited for as long as its caller waits, once the owner
	// is reached: one that timed out here might be stored there.
	client := s.forwarder
	if r.Method != http.MethodGet {
		client = s.patient
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode == http.StatusServiceUnavailable {
		res.Body.Close()
		return nil, errors.New("the owner answered 503: it is not ready")
	}
	return res, nil
}
