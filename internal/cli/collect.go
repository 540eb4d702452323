package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/collect"
	"github.com/palproject/pal/internal/event"
)

// runCollect reads what pal needs from Microsoft's APIs, once or on a
// schedule, and adds what changed to a log file or a service, with the
// credentials azidentity finds (environment, workload identity, managed
// identity, the az CLI's login).
func runCollect(ctx context.Context, env *Env, args []string) error {
	return collectCommand{azure: azureFromEnvironment}.run(ctx, env, args)
}

// collectCommand is pal collect, with where its credentials and clients
// come from: the environment, or a test's fake APIs.
type collectCommand struct {
	azure func() collect.Options
}

// azureFromEnvironment gives each tenant signed in to azidentity's
// DefaultAzureCredential, asking its tokens of that tenant (a partner's
// multi-tenant application reads several customers with one secret).
func azureFromEnvironment() collect.Options {
	return collect.Options{Credential: func(tenant string) (azcore.TokenCredential, error) {
		cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			TenantID: tenant, AdditionallyAllowedTenants: []string{"*"}})
		if err != nil {
			return nil, err
		}
		return tenantCredential{cred, tenant}, nil
	}}
}

// tenantCredential asks every token of one tenant.
type tenantCredential struct {
	azcore.TokenCredential
	tenant string
}

func (c tenantCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if o.TenantID == "" {
		o.TenantID = c.tenant
	}
	return c.TokenCredential.GetToken(ctx, o)
}

// minEvery is the shortest --every: the APIs change by the day, and
// throttle those who ask by the second.
const minEvery = time.Minute

func (cc collectCommand) run(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "collect", "collect --config collect.json [--once | --every 24h] (--log FILE | --push --server URL --token T) [--dry-run] [--observed-at TIME] [--metrics ADDR] [--pseudonymise-users KEYFILE]")
	var sf serverFlags
	sf.register(fs.FlagSet)
	configFile := fs.String("config", "", "the configuration: the tenants, their subscriptions or management groups, and the sources to read (JSON, docs/collecting.md)")
	once := fs.Bool("once", false, "collect once and exit (the default)")
	every := fs.Duration("every", 0, "collect now and then every this long (24h), until stopped")
	logFile := fs.String("log", "", "the log to read and append to (created when absent)")
	push := fs.Bool("push", false, "push the events to the service (--server, --token), diffing against its log")
	dryRun := fs.Bool("dry-run", false, "print the events that would be written, as NDJSON, and write nothing")
	observedAt := fs.String("observed-at", "", "with --once, the instant the run observes (default: its start)")
	metricsAddr := fs.String("metrics", "", "with --every, serve Prometheus metrics at this address (:9464) on /metrics")
	keyFile := fs.String("pseudonymise-users", "", "with the audit source, a file of at least 32 random bytes: each usage user becomes its HMAC-SHA256 under that key")
	if err := fs.parse(args); err != nil {
		return err
	}
	switch {
	case *configFile == "":
		return usagef("--config is required: the tenants to read and their sources (docs/collecting.md)")
	case *once && *every != 0:
		return usagef("--once and --every do not go together: collect once, or on a schedule")
	case *every != 0 && *every < minEvery:
		return usagef("--every %s is more often than the APIs change: at least %s (24h is usual)", *every, minEvery)
	case *push != sf.asks():
		return usagef("--push and --server go together: push to a service, or append to --log")
	case *push && *logFile != "":
		return usagef("--log and --push do not go together: with --push the service's log is the log so far")
	case !*push && *logFile == "":
		return usagef("say where the events go: --log FILE, or --push --server URL --token T")
	case *observedAt != "" && *every != 0:
		return usagef("--observed-at goes with --once: each run of --every observes at its own start")
	case *metricsAddr != "" && *every == 0:
		return usagef("--metrics goes with --every: a single run has nothing to serve")
	}
	var at time.Time
	if *observedAt != "" {
		t, err := parseTime("observed-at", *observedAt)
		if err != nil {
			return err
		}
		at = t
	}
	f, err := os.Open(*configFile)
	if err != nil {
		return usagef("--config: %v", err)
	}
	cfg, err := collect.ReadConfig(f)
	f.Close()
	if err != nil {
		return usagef("--config %s: %v", *configFile, err)
	}
	var dest logDest
	if *push {
		c, err := sf.client()
		if err != nil {
			return err
		}
		dest = &serviceLog{c: c}
	} else {
		dest = &fileLog{path: *logFile}
	}
	opts := cc.azure()
	if *keyFile != "" {
		if !slices.ContainsFunc(cfg.Tenants, func(t collect.Tenant) bool { return slices.Contains(t.Sources, "audit") }) {
			return usagef("--pseudonymise-users acts on the usage the audit source makes, and no tenant of %s reads audit", *configFile)
		}
		if opts.UserKey, err = readUserKey("audit", *keyFile); err != nil {
			return err
		}
	}
	out := &collectOutput{env: env, tty: isTerminal(env.Stderr)}
	opts.Progress = out.progress
	var reg *prometheus.Registry
	if *metricsAddr != "" {
		reg = prometheus.NewRegistry()
		opts.Metrics = collect.NewMetrics(reg)
	}
	col, err := collect.New(cfg, opts)
	if err != nil {
		return err
	}
	runOnce := func(at time.Time) (*collect.Report, error) {
		if at.IsZero() {
			at = time.Now().UTC().Truncate(time.Second)
		}
		log, err := dest.read(ctx)
		if err != nil {
			return nil, err
		}
		var sink collect.Sink = dest
		if *dryRun {
			sink = &dryRunSink{w: env.Stdout}
		}
		rep, err := col.Run(ctx, at, log, sink)
		if rep != nil {
			out.summary(rep, *dryRun)
		}
		return rep, err
	}
	if *every == 0 {
		rep, err := runOnce(at)
		if err != nil {
			return err
		}
		read := slices.ContainsFunc(rep.Results, func(r collect.Result) bool { return r.Err == nil && r.Pages > 0 })
		switch n := len(rep.Failed()); {
		case n > 0 && !read:
			// Exit 2: nothing could be read, most often for want of a
			// credential; a scheduler must not take it for a run that
			// did part of its work.
			return fmt.Errorf("every source that asked an API failed (%d), nothing was read: see why above; without a credential, set the AZURE_* variables, give the machine a managed identity, or run az login", n)
		case n > 0 || len(rep.Partial()) > 0:
			// Exit 1: the run did part of its work, and said which.
			return errRefused
		}
		return nil
	}
	if reg != nil {
		stop, err := serveMetrics(ctx, env, *metricsAddr, reg)
		if err != nil {
			return err
		}
		defer stop()
	}
	for {
		start := time.Now()
		if _, err := runOnce(time.Time{}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The log could not be read or written: said, and tried
			// again at the next run.
			fmt.Fprintf(env.Stderr, "pal collect: the run stopped: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(start.Add(*every))):
		}
	}
}

// serveMetrics serves /metrics until the context ends.
func serveMetrics(ctx context.Context, env *Env, addr string, reg *prometheus.Registry) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usagef("--metrics %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(env.Stderr, "pal collect: metrics on http://%s/metrics\n", ln.Addr())
	return func() { srv.Close() }, nil
}

// logDest is where the log so far is read from and the events go.
type logDest interface {
	collect.Sink
	read(ctx context.Context) ([]*event.Event, error)
}

// fileLog is a log file: read whole at each run, appended to a source at
// a time, each append synced to disk before the next source is read.
type fileLog struct{ path string }

func (l *fileLog) read(ctx context.Context) ([]*event.Event, error) {
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // the first run makes it
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readEvents(l.path, f)
}

func (l *fileLog) Write(_ context.Context, events []*event.Event) (string, error) {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var buf bytes.Buffer
	// A last line without its newline (a log written by hand) keeps
	// its own line.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			buf.WriteByte('\n')
		}
	}
	w := event.NewWriter(&buf)
	for _, ev := range events {
		if err := w.Write(ev); err != nil {
			return "", err
		}
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return "", err
	}
	return "", f.Sync()
}

// serviceLog is a service's log: read through GET /v1/log (as far as the
// token may read it), pushed to in batches of POST /v1/events.
type serviceLog struct{ c *api.Client }

func (l *serviceLog) read(ctx context.Context) ([]*event.Event, error) {
	body, err := l.c.Log(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the service's log, to collect only what changed: %w", err)
	}
	defer body.Close()
	return readEvents(l.c.Base()+"/v1/log", body)
}

// maxPush is the most a batch carries: the service takes 64 MiB.
const maxPush = 32 << 20

func (l *serviceLog) Write(ctx context.Context, events []*event.Event) (string, error) {
	var total api.IngestResult
	var buf bytes.Buffer
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		res, err := l.c.Push(ctx, &buf)
		if err != nil {
			return err
		}
		buf.Reset()
		total.Accepted += res.Accepted
		total.Duplicates += res.Duplicates
		total.Held = append(total.Held, res.Held...)
		total.Refused = append(total.Refused, res.Refused...)
		return nil
	}
	for _, ev := range events {
		buf.Write(ev.AppendJSON(nil))
		buf.WriteByte('\n')
		if buf.Len() >= maxPush {
			if err := flush(); err != nil {
				return "", err
			}
		}
	}
	if err := flush(); err != nil {
		return "", err
	}
	note := fmt.Sprintf("the service accepted %d, held %d, duplicates %d, refused %d", total.Accepted, len(total.Held), total.Duplicates, len(total.Refused))
	for _, rf := range total.Refused[:min(len(total.Refused), maxRefusalsShown)] {
		note += "; refused: " + rf.Error()
	}
	return note, nil
}

// dryRunSink prints the events that would be written.
type dryRunSink struct{ w io.Writer }

func (s *dryRunSink) Write(_ context.Context, events []*event.Event) (string, error) {
	w := event.NewWriter(s.w)
	for _, ev := range events {
		if err := w.Write(ev); err != nil {
			return "", err
		}
	}
	return "not written (--dry-run)", w.Flush()
}

// readEvents reads a log's events; lines the line checks refuse are left
// out, as they use up no id.
func readEvents(name string, in io.Reader) ([]*event.Event, error) {
	var out []*event.Event
	rd := event.NewReader(in)
	for {
		ev, rf, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if rf == nil {
			out = append(out, ev)
		}
	}
}

// collectOutput tells the operator how the run goes, on standard error:
// a line a source, its unread records, and a last line; on a terminal,
// the pages as they come.
type collectOutput struct {
	env *Env
	tty bool
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

func (o *collectOutput) progress(p collect.Progress) {
	w := o.env.Stderr
	if p.Done == nil {
		if o.tty {
			fmt.Fprintf(w, "\r\033[Kpal collect: %s %s: %d pages, %d records", p.Tenant, p.Source, p.Pages, p.Records)
		}
		return
	}
	if o.tty {
		fmt.Fprint(w, "\r\033[K")
	}
	fmt.Fprintf(w, "pal collect: %s\n", p.Done)
	for _, pr := range p.Done.Problems {
		fmt.Fprintf(w, "pal collect: %s %s: %s\n", p.Tenant, p.Source, pr)
	}
}

// summary is the run's last line.
func (o *collectOutput) summary(r *collect.Report, dryRun bool) {
	verb := "wrote"
	if dryRun {
		verb = "would write"
	}
	failed := r.Failed()
	line := fmt.Sprintf("pal collect: observed at %s, %s %d new events from %d sources in %s",
		r.ObservedAt.Format(time.RFC3339), verb, r.Events(), len(r.Results), r.Took.Round(time.Millisecond))
	if len(failed) > 0 {
		var names []string
		for _, f := range failed {
			names = append(names, f.Tenant+" "+f.Source)
		}
		line += fmt.Sprintf("; %d failed, nothing of them written (%s)", len(failed), strings.Join(names, ", "))
	}
	if partial := r.Partial(); len(partial) > 0 {
		var names []string
		for _, p := range partial {
			names = append(names, fmt.Sprintf("%s %s without %d", p.Tenant, p.Source, len(p.Missed)))
		}
		line += fmt.Sprintf("; %d written without the scopes they could not read (%s)", len(partial), strings.Join(names, ", "))
	}
	fmt.Fprintln(o.env.Stderr, line)
}
