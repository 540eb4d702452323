package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/metrics"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitRefused = 1 // --strict and something was refused
	ExitUsage   = 2 // bad flag, unreadable file
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

func (env *Env) open(name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(env.Stdin), nil
	}
	return os.Open(name)
}

// usageError is a mistake in the command line: exit 2, one line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errRefused makes a --strict run exit 1 after its output is printed.
var errRefused = errors.New("events were refused")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

func commands() []command {
	return []command{
		{"check", "validate a log and list every refused event", runCheck},
		{"attribution", "who is credited for every resource at an instant", runAttribution},
		{"explain", "why a resource is credited, or not, at an instant", runExplain},
		{"timeline", "the history of each resource's credit as intervals", runTimeline},
		{"links", "where an organisation's links are: its linked accounts in every tenant", runLinks},
		{"diagnose", "where an organisation's credit is missing, why, and what would fix it", runDiagnose},
		{"audit", "a tenant's credit changes, those gained by a role alone marked", runAudit},
		{"import", "turn exports (Azure CLI, Cost Management, admin cmdlets, audit logs) into events: only what changed since the log", runImport},
		{"collect", "read Azure, Microsoft Graph and the partner link from the APIs, once or on a schedule, into the log: only what changed", runCollect},
		{"gate", "for pipelines: exit 0 when the deploying account's link would credit its import, 1 with the reason", runGate},
		{"report", "monthly metrics (report monthly), the capability score (report pcs) and Azure recognition (report azure)", runReport},
		{"demo", "write a sample log to standard output", runDemo},
		{"gen", "write a data set at platform scale: control.ndjson and usage.parquet", runGen},
		{"serve", "run the service on an SQLite file or PostgreSQL", runServe},
		{"token", "issue, list and revoke the tokens of the service (token issue|list|revoke)", runToken},
		{"link", "create, show, update or delete your own partner link on a service", runLink},
		{"events", "push a file of events to a service (events push)", runEvents},
	}
}

// Run runs pal with the arguments after the program name and returns the
// exit code.
func Run(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printHelp(env.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		name := c.name
		// Commands with verbs (report monthly, token issue, …) say both.
		if slices.Contains([]string{"report", "token", "link", "events", "import"}, c.name) && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
			name += " " + args[1]
		}
		var ue *usageError
		switch {
		case err == nil:
			return ExitOK
		case errors.Is(err, flag.ErrHelp):
			return ExitOK
		case errors.Is(err, errRefused):
			return ExitRefused
		case errors.As(err, &ue):
			fmt.Fprintf(env.Stderr, "pal %s: %s\n", name, ue.msg)
			return ExitUsage
		default:
			fmt.Fprintf(env.Stderr, "pal %s: %v\n", name, err)
			return ExitUsage
		}
	}
	fmt.Fprintf(env.Stderr, "pal: unknown command %q; run pal help for the list\n", args[0])
	return ExitUsage
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "pal: partner attribution for partner admin links")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: pal COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run pal COMMAND -h for a command's flags.")
}

// flagSet is a subcommand's flags. Its help goes to standard output when
// asked for with -h, and nowhere on a mistake, which is one line on standard
// error instead.
type flagSet struct {
	*flag.FlagSet
	env  *Env
	help bytes.Buffer
	// args are the arguments that are not flags, wherever they stood.
	args []string
}

func newFlagSet(env *Env, name, synopsis string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("pal "+name, flag.ContinueOnError), env: env}
	fs.SetOutput(&fs.help)
	fs.Usage = func() {
		fmt.Fprintf(&fs.help, "Usage: pal %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, turning a flag error into a usage error.
// isSet reports whether the command line gave the flag called name.
func (fs *flagSet) isSet(name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (fs *flagSet) parse(args []string) error {
	return fs.parseArgs(args, 0)
}

// parseArgs parses args, allowing up to n arguments that are not flags
// (n < 0: any number). Flags and arguments come in any order, as a user
// types them: pal import users --tenant T users.json and pal import users
// users.json --tenant T are the same; after "--" everything is an
// argument. "-" alone is an argument (standard input).
func (fs *flagSet) parseArgs(args []string, n int) error {
	fs.args = nil
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.env.Stdout.Write(fs.help.Bytes())
				return err
			}
			return usagef("%v (run %s -h for the flags)", err, fs.Name())
		}
		rest := fs.FlagSet.Args()
		// Parse stops at the first argument, or after "--".
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			fs.args = append(fs.args, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		fs.args = append(fs.args, rest[0])
		args = rest[1:]
	}
	if n >= 0 && len(fs.args) > n {
		return usagef("unexpected argument %q (run %s -h for the flags)", fs.args[n], fs.Name())
	}
	return nil
}

// Args returns the arguments that are not flags, in their order.
func (fs *flagSet) Args() []string { return fs.args }

// NArg is how many arguments are not flags.
func (fs *flagSet) NArg() int { return len(fs.args) }

// Arg returns the i-th argument that is not a flag, "" when there is none.
func (fs *flagSet) Arg(i int) string {
	if i < len(fs.args) {
		return fs.args[i]
	}
	return ""
}

// logFlags are the flags of every command that reads a log.
type logFlags struct {
	serverFlags
	// asksService is set for the commands that can ask a running service
	// (--server) instead of reading a log: only they take its flags.
	asksService bool
	log         string
	usage       string
	format      string
	policy      string
	azurePolicy string
	azureRoles  string
	pecRate     string
	consumption string
	// metricsConfig names the rates and thresholds file of the commands
	// that report metrics (registerMetricsConfig).
	metricsConfig string
	// consumptionMonth, when set (YYYY-MM), keeps of the consumption file
	// only that month's records: all a monthly report needs. The others
	// are read and checked, not held.
	consumptionMonth string
	strict           bool
	// formats are the --format values the command takes: table and json
	// when not set.
	formats []string
	// rows, for a report of several tables, says which one --format csv
	// writes (sections lists them, the first the default).
	rows     string
	sections []string
}

// withCSV is the --format values of the commands that answer with rows.
var withCSV = []string{"table", "json", "csv"}

// registerRows adds --rows to a report of several tables.
func (f *logFlags) registerRows(fs *flagSet, sections ...string) {
	f.sections = sections
	fs.StringVar(&f.rows, "rows", sections[0], "with --format csv, which rows to write: "+strings.Join(sections, ", "))
}

func (f *logFlags) register(fs *flagSet) {
	if f.asksService {
		f.serverFlags.register(fs.FlagSet)
	}
	fs.StringVar(&f.log, "log", "", "the event log, NDJSON format v1 (- for standard input)")
	fs.StringVar(&f.usage, "usage", "", "usage events in a file of their own, Parquet or NDJSON (read by check and the reports)")
	fs.StringVar(&f.format, "format", "table", "output format: table or json")
	fs.StringVar(&f.consumption, "consumption", "", "Azure consumption in a file of its own, Parquet or NDJSON (tenant, resource, date, cost, meter)")
	fs.StringVar(&f.policy, "policy", string(attribution.Latest), "attribution policy: latest, first or split")
	fs.StringVar(&f.azurePolicy, "azure-policy", string(azure.All), "Azure policy: all, latest or split")
	fs.StringVar(&f.azureRoles, "azure-roles", "", `the Azure roles that earn recognition, a JSON file {"names": [...], "suffixes": [...]} (default: SPEC section 9.3)`)
	fs.StringVar(&f.pecRate, "pec-rate", "0.15", "the partner earned credit rate")
	fs.BoolVar(&f.strict, "strict", false, "exit 1 when any event is refused")
}

// parse parses a command's arguments and checks the common flags,
// returning the engine options they choose.
func (f *logFlags) parse(fs *flagSet, args []string) (attribution.Options, error) {
	opts := attribution.DefaultOptions()
	if err := fs.parse(args); err != nil {
		return opts, err
	}
	switch {
	case f.log == "" && !f.asks() && f.asksService:
		return opts, usagef("--log is required: name a log file, or - for standard input (or ask a service with --server)")
	case f.log == "" && !f.asks():
		return opts, usagef("--log is required: name a log file, or - for standard input")
	case f.log != "" && f.asks():
		return opts, usagef("--log and --server do not go together: read a log, or ask a service")
	}
	if f.asks() {
		// These flags are about reading a log: a service has its own
		// usage, policy and refusals. Said, not ignored.
		var unused []string
		fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "usage", "consumption", "policy", "azure-policy", "azure-roles", "pec-rate", "metrics-config", "strict":
				unused = append(unused, "--"+fl.Name)
			}
		})
		if len(unused) > 0 {
			return opts, usagef("%s read a log, not a service: drop them with --server (the service uses its own usage, policies and refusals)", strings.Join(unused, " and "))
		}
	}
	formats := f.formats
	if formats == nil {
		formats = []string{"table", "json"}
	}
	if !slices.Contains(formats, f.format) {
		return opts, usagef("unknown format %q: use %s", f.format, strings.Join(formats, " or "))
	}
	if f.sections != nil && !slices.Contains(f.sections, f.rows) {
		return opts, usagef("unknown --rows %q: use %s", f.rows, strings.Join(f.sections, ", "))
	}
	if f.sections != nil && fs.isSet("rows") && f.format != "csv" {
		return opts, usagef("--rows goes with --format csv: the other formats write every table")
	}
	p, err := attribution.ParsePolicy(f.policy)
	if err != nil {
		return opts, &usageError{err.Error()}
	}
	opts.Policy = p
	if opts.Azure, err = azureOptions(f.azurePolicy, f.azureRoles, f.pecRate); err != nil {
		return opts, err
	}
	return opts, nil
}

// registerMetricsConfig adds --metrics-config to a command that reports
// MCV or the capability score.
func (f *logFlags) registerMetricsConfig(fs *flagSet) {
	fs.StringVar(&f.metricsConfig, "metrics-config", "", metricsConfigUsage)
}

const metricsConfigUsage = `the MCV rates and capability-score thresholds, a JSON file such as {"rates": {"power_pages": 120}, "deployment_mcv": {"smb": 4000}} (default: SPEC sections 5 and 6)`

// readMetricsConfig reads --metrics-config: the rates and thresholds of
// SPEC.md sections 5 and 6 when it is not given.
func readMetricsConfig(file string) (metrics.Config, error) {
	if file == "" {
		return metrics.DefaultConfig(), nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return metrics.Config{}, usagef("--metrics-config: %v", err)
	}
	cfg, err := metrics.ReadConfig(data)
	if err != nil {
		return cfg, usagef("--metrics-config %s: %v", file, err)
	}
	return cfg, nil
}

// azureOptions reads the flags that configure Azure recognition.
func azureOptions(policy, rolesFile, pecRate string) (azure.Options, error) {
	var o azure.Options
	var err error
	if o.Policy, err = azure.ParsePolicy(policy); err != nil {
		return o, &usageError{err.Error()}
	}
	if o.PECRate, err = azure.ParsePECRate(pecRate); err != nil {
		return o, usagef("--pec-rate: %v", err)
	}
	if rolesFile != "" {
		data, err := os.ReadFile(rolesFile)
		if err != nil {
			return o, usagef("--azure-roles: %v", err)
		}
		roles, err := azure.ReadRoleTable(data)
		if err != nil {
			return o, usagef("--azure-roles %s: %v", rolesFile, err)
		}
		o.Roles = &roles
	}
	return o, nil
}

// parseTime reads an instant given on the command line: RFC 3339, or a date
// meaning its first instant in UTC.
func parseTime(flagName, s string) (time.Time, error) {
	if t, ok := event.ParseInstant(s); ok {
		return t, nil
	}
	return time.Time{}, usagef("--%s %q is not a time: write 2026-03-01T12:00:00Z (RFC 3339) or 2026-03-01", flagName, s)
}

func parseMonth(s string) (time.Time, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return time.Time{}, usagef("--month %q is not a month: write it as YYYY-MM, such as 2026-03", s)
	}
	return t, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
