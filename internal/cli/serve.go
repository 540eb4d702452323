package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/demo"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/lease"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/backend"
	"github.com/palproject/pal/internal/store/postgres"
)

func runServe(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "serve", "serve [--db pal.db|postgres://…] [--addr 127.0.0.1:8080] [--demo] [--policy latest|first|split] [--azure-policy all|latest|split]")
	db := fs.String("db", "pal.db", "the store: an SQLite file, or a postgres:// URL")
	addr := fs.String("addr", "127.0.0.1:8080", "the address to listen on")
	loadDemo := fs.Bool("demo", false, "load the demo log into an empty store, and print an operator token")
	policy := fs.String("policy", string(attribution.Latest), "attribution policy: latest, first or split")
	azurePolicy := fs.String("azure-policy", string(azure.All), "Azure policy: all, latest or split")
	azureRoles := fs.String("azure-roles", "", `the Azure roles that earn recognition, a JSON file {"names": [...], "suffixes": [...]} (default: SPEC section 9.3)`)
	pecRate := fs.String("pec-rate", "0.15", "the partner earned credit rate")
	metricsConfig := fs.String("metrics-config", "", metricsConfigUsage)
	currency := fs.String("currency", azure.DefaultCurrency, "the currency of the log's Azure costs (ISO 4217), which the pages show beside every amount")
	activityWindow := fs.Duration("activity-window", attribution.DefaultActivityWindow, "how far back a credit change looks for the gaining account's activity (activity_before)")
	issuer := fs.String("oidc-issuer", "", "accept JWTs of this OpenID Connect issuer (its tid and oid claims); with {tenantid}, of every tenant's issuer, as Entra ID: https://login.microsoftonline.com/{tenantid}/v2.0")
	audience := fs.String("oidc-audience", "", "the audience the issuer's tokens must carry: pal's application ID URI, or https://management.azure.com/ for Azure's own clients")
	homeTenant := fs.String("oidc-home-tenant", "", "the tenant whose tokens may carry pal.operator and pal.partner_reader (needed with {tenantid})")
	tenantsFile := fs.String("oidc-tenants", "", "a file of the tenant IDs whose tokens are accepted, one a line (default: every tenant)")
	snapshotEvery := fs.Int("snapshot-every", 10000, "save a snapshot of the state every N events")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	tlsKey := fs.String("tls-key", "", "the private key of --tls-cert (PEM)")
	writeRate := fs.Float64("write-rate", 2000, "events a second each caller but the operator may write (0: no limit)")
	writeBurst := fs.Int("write-burst", 50000, "events each caller but the operator may write at once")
	allowHTTP := fs.Bool("webhook-allow-http", false, "let webhooks post over plain http:// (https:// only by default)")
	allowPrivate := fs.Bool("webhook-allow-private", false, "let webhooks post to loopback, private, link-local and multicast addresses (refused by default)")
	buckets := fs.Int("buckets", lease.DefaultBuckets, "the buckets the tenants are split into on PostgreSQL, a power of two, fixed when the database is first served (SPEC section 10)")
	leaseFor := fs.Duration("lease", 10*time.Second, "on PostgreSQL, how long this process holds a bucket's lease without renewing it, renewed every third of it")
	forwardTimeout := fs.Duration("forward-timeout", server.DefaultForwardTimeout, "on PostgreSQL, how long this process waits for the owner of a tenant's bucket to be reached, and again to begin its answer, for a question it forwards there, before it reads the leases again")
	advertise := fs.String("advertise", "", "on PostgreSQL, the URL at which the other pal serve processes reach this one (default: the address it listens on)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *buckets < 1 || *buckets > lease.MaxBuckets || *buckets&(*buckets-1) != 0 {
		return usagef("--buckets %d is not a power of two from 1 to %d", *buckets, lease.MaxBuckets)
	}
	if *advertise != "" {
		if err := checkAdvertise(*advertise); err != nil {
			return err
		}
	}
	if *forwardTimeout <= 0 {
		return usagef("--forward-timeout %s: give a positive duration, such as 2s", *forwardTimeout)
	}
	if *leaseFor < 300*time.Millisecond {
		return usagef("--lease %s is too short to be renewed in time: give 300ms or more, such as 10s", *leaseFor)
	}
	opts := attribution.DefaultOptions()
	p, err := attribution.ParsePolicy(*policy)
	if err != nil {
		return &usageError{err.Error()}
	}
	opts.Policy = p
	if opts.Azure, err = azureOptions(*azurePolicy, *azureRoles, *pecRate); err != nil {
		return err
	}
	rates, err := readMetricsConfig(*metricsConfig)
	if err != nil {
		return err
	}
	if len(*currency) != 3 || strings.ToUpper(*currency) != *currency || strings.ContainsFunc(*currency, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		return usagef("--currency %q is not a currency code: write three capital letters, such as USD or EUR", *currency)
	}
	opts.Azure.Currency = *currency
	if *activityWindow <= 0 {
		return usagef("--activity-window must be positive, such as 2160h")
	}
	opts.ActivityWindow = *activityWindow
	if (*issuer == "") != (*audience == "") {
		return usagef("--oidc-issuer and --oidc-audience go together")
	}
	if *issuer == "" && (*homeTenant != "" || *tenantsFile != "") {
		return usagef("--oidc-home-tenant and --oidc-tenants go with --oidc-issuer")
	}
	var tenants []string
	if *tenantsFile != "" {
		if tenants, err = readTenants(*tenantsFile); err != nil {
			return err
		}
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	var tlsConfig *tls.Config
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return usagef("--tls-cert and --tls-key: %v", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	id := processID()
	st, err := backend.Open(ctx, sessionsNamed(*db, id))
	if err != nil {
		return err
	}
	defer st.Close()
	nBuckets, err := setBuckets(ctx, st, *buckets, fs.isSet("buckets"))
	if err != nil {
		return err
	}
	if nBuckets == 0 && (fs.isSet("lease") || fs.isSet("advertise") || fs.isSet("forward-timeout")) {
		return usagef("--lease, --advertise and --forward-timeout: an SQLite store is served by one process, which holds no lease; they share buckets between pal serve processes on PostgreSQL")
	}
	cfg := server.Config{Store: st, Options: opts, Metrics: rates, SnapshotEvery: *snapshotEvery,
		WebhookAllowHTTP: *allowHTTP, WebhookAllowPrivate: *allowPrivate,
		WriteRate: *writeRate, WriteBurst: *writeBurst, LoadInBackground: true, ForwardTimeout: *forwardTimeout,
		Logger: slog.New(slog.NewTextHandler(env.Stderr, nil))}
	if *issuer != "" {
		cfg.OIDC = &server.OIDC{Issuer: *issuer, Audience: *audience, HomeTenant: *homeTenant, Tenants: tenants}
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	if *loadDemo {
		if err := srv.Wait(ctx); err != nil {
			return err
		}
		if err := loadDemoLog(ctx, st, srv); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsConfig)
	} else if !isLoopback(hostOf(ln.Addr().String())) {
		fmt.Fprintln(env.Stderr, "pal serve: serving plain HTTP beyond this machine: bearer tokens cross the network in clear; use --tls-cert and --tls-key in production")
	}
	fmt.Fprintf(env.Stdout, "pal serve: listening on %s://%s (store %s)\n", scheme, ln.Addr(), *db)
	if *loadDemo {
		token, _, err := server.IssueToken(ctx, st, store.Token{Role: store.RoleOperator})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "operator token: %s\n", token)
		fmt.Fprintf(env.Stdout, "try: curl -H 'Authorization: Bearer %s' '%s://%s/v1/reports/monthly?month=2026-03'\n", token, scheme, ln.Addr())
	} else {
		fmt.Fprintf(env.Stdout, "to log in, make a token: pal token issue --db %s --role operator (or --role partner-reader --org ORG, tenant-admin --tenant T, account --tenant T --account A)\n", *db)
	}
	// On PostgreSQL the process takes its share of the buckets, and gives
	// them back when it stops: however serve ends, before the store
	// closes.
	if nBuckets > 0 {
		url := strings.TrimSuffix(*advertise, "/")
		if url == "" {
			url = scheme + "://" + reachable(ln.Addr().String())
		}
		m := lease.New(st.(store.Buckets), nBuckets, lease.Options{ID: id, Addr: url, Lease: *leaseFor})
		srv.Own(m)
		// Its share is taken before it serves: a write asks the owners
		// of its tenants' buckets what became of its lines.
		if err := m.Tick(ctx); err != nil {
			cfg.Logger.Warn("leases of buckets", "error", err)
		}
		defer m.Start(func(err error) { cfg.Logger.Warn("leases of buckets", "error", err) })()
	}
	dispatching, stopDispatch := context.WithCancel(context.Background())
	defer stopDispatch()
	go srv.Dispatch(dispatching, time.Second)
	if nBuckets > 0 {
		go srv.Follow(dispatching, time.Second)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 2)
	go func() { served <- hs.Serve(ln) }()
	// The state loads while the service listens: /healthz says how far it
	// is; a log that cannot be folded stops the service.
	go func() {
		if err := srv.Wait(ctx); err != nil && ctx.Err() == nil {
			served <- err
		}
	}()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Finish the requests in flight, then keep a snapshot for the next start.
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopDispatch()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	// The snapshot is kept while the buckets are still held.
	if err := srv.Snapshot(shutdown); err != nil {
		return fmt.Errorf("snapshot at shutdown: %w", err)
	}
	fmt.Fprintln(env.Stdout, "pal serve: stopped")
	return nil
}

// processID names this process among those serving a database: its host,
// its process ID and a random part, as a restarted process is another.
func processID() string {
	host, _ := os.Hostname()
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), r)
}

// sessionsNamed names the sessions of a process to a PostgreSQL database
// after the process (application_name): should the process stop renewing
// its leases, the one that forgets it, a round after they expired, ends
// them, and the locks it may hold with them. Another kind of store is left
// as it is.
func sessionsNamed(db, id string) string {
	u, err := url.Parse(db)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return db
	}
	q := u.Query()
	q.Set("application_name", postgres.SessionName(id))
	u.RawQuery = q.Encode()
	return u.String()
}

// checkAdvertise checks the URL of --advertise: the scheme and the host
// the other processes reach this one at, and no path.
func checkAdvertise(advertise string) error {
	u, err := url.Parse(advertise)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return usagef("--advertise %q: give the URL the other processes reach this one at, a scheme and a host, such as https://pal-3.internal:8080", advertise)
	}
	return nil
}

// reachable returns the address the other processes reach a listener at:
// its own, or, for one on every interface (0.0.0.0, ::), this machine's
// name with its port.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsUnspecified() {
		return addr
	}
	name, err := os.Hostname()
	if err != nil {
		return addr
	}
	return net.JoinHostPort(name, port)
}

// hostOf returns the host of an address host:port.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// loadDemoLog pushes the demo log into an empty store, through the
// service, so that its feed of changes is filed as for any batch.
func loadDemoLog(ctx context.Context, st store.Store, srv *server.Server) error {
	last, err := st.LastSeq(ctx)
	if err != nil || last > 0 {
		return err
	}
	var buf bytes.Buffer
	if err := demo.Write(&buf, 1); err != nil {
		return err
	}
	var events []*event.Event
	rd := event.NewReader(&buf)
	for {
		ev, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		events = append(events, ev)
	}
	_, _, _, err = srv.Ingest(ctx, events)
	return err
}

// readTenants reads the tenants whose tokens are accepted: one ID a line,
// blank lines and # comments passed over.
func readTenants(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--oidc-tenants: %w", err)
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--oidc-tenants: %s names no tenant, and would refuse every token: list one tenant ID a line", path)
	}
	return out, nil
}

// setBuckets fixes the number of buckets of a PostgreSQL database when it
// has none, refuses another than the one fixed, and returns the number
// fixed: the one the database has when none is given. SQLite keeps one
// process, which a number given refuses, and has no buckets (0).
func setBuckets(ctx context.Context, st store.Store, n int, given bool) (int, error) {
	b, ok := st.(store.Buckets)
	if !ok {
		if given {
			return 0, usagef("--buckets: an SQLite store is served by one process, which folds every tenant; buckets split the tenants between several pal serve processes on PostgreSQL")
		}
		return 0, nil
	}
	stored, err := b.SetBuckets(ctx, n)
	if err != nil {
		return 0, err
	}
	if given && stored != n {
		return 0, usagef("--buckets %d: the database was first served with %d buckets, which cannot change; serve it with --buckets %d", n, stored, stored)
	}
	return stored, nil
}
