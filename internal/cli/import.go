package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/imports"
	"github.com/palproject/pal/internal/usage"
)

// runImport turns exports partners and customers have into log v1 events:
// NDJSON on standard output, or pushed to a service. Given the log so far
// (--log, or the service's), an inventory adds only what changed since.
func runImport(ctx context.Context, env *Env, args []string) error {
	usage := "import FORMAT FILE... [--tenant T] [--group G] [--observed-at TIME] [--log FILE] [--scope SCOPE]... [--pseudonymise-users KEYFILE] [--out FILE.parquet | --push --server URL --token T]"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usagef("say which export: pal %s; the formats are %s", usage, strings.Join(imports.Names(), ", "))
	}
	format := args[0]
	if _, ok := imports.Sources[format]; !ok {
		return usagef("unknown export %q: pal reads %s", format, strings.Join(imports.Names(), ", "))
	}
	fs := newFlagSet(env, "import "+format, usage)
	var sf serverFlags
	sf.register(fs.FlagSet)
	var o imports.Options
	var observedAt, log, out, keyFile string
	var push bool
	fs.StringVar(&o.Tenant, "tenant", "", "the tenant of an export that does not say it")
	fs.StringVar(&o.Group, "group", "", "with groups, the group whose members the export lists")
	fs.StringVar(&observedAt, "observed-at", "", "when the inventory was observed (default: the newest time in the file)")
	fs.StringVar(&log, "log", "", "the log so far: only what changed since is written (with --push, the service's log is, unless this is given)")
	fs.BoolVar(&push, "push", false, "push the events to the service (--server, --token) instead of writing them")
	fs.StringVar(&keyFile, "pseudonymise-users", "", "with audit, a file of at least 32 random bytes: each usage user becomes its HMAC-SHA256 under that key")
	fs.StringVar(&out, "out", "", "with azure-costs, write the daily consumption as a Parquet file (for --consumption) instead of events")
	var scopes []string
	fs.Func("scope", "with azure-roles, a scope the snapshot read whole, such as /subscriptions/ID or / for the whole tenant (repeat it): an assignment of the log there that the snapshot leaves out is removed (default: the subscriptions its rows are in)", func(s string) error {
		scopes = append(scopes, s)
		return nil
	})
	if err := fs.parseArgs(args[1:], -1); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		return usagef("name the export files to read")
	}
	if push != sf.asks() {
		return usagef("--push and --server go together: push to a service, or write NDJSON on standard output")
	}
	if out != "" && (format != "azure-costs" || push) {
		return usagef("--out writes the consumption of an azure-costs import as Parquet: it goes with azure-costs and without --push")
	}
	if len(scopes) > 0 {
		if format != "azure-roles" {
			return usagef("--scope says what a role assignment snapshot read: it goes with azure-roles")
		}
		covered, err := imports.ScopesCovered(scopes)
		if err != nil {
			return usagef("--scope: %v", err)
		}
		o.Covered = covered
	}
	if keyFile != "" {
		key, err := readUserKey(format, keyFile)
		if err != nil {
			return err
		}
		o.UserKey = key
	}
	if observedAt != "" {
		t, err := parseTime("observed-at", observedAt)
		if err != nil {
			return err
		}
		o.ObservedAt = t
	}
	var c *api.Client
	if push {
		var err error
		if c, err = sf.client(); err != nil {
			return err
		}
	}
	switch {
	case log != "":
		e, _, err := replay{}.run(ctx, env, logFlags{log: log}, attribution.DefaultOptions())
		if err != nil {
			return err
		}
		o.Known = imports.Known(e)
	case push:
		// The service's log, as far as the token may read it, is the log
		// so far.
		answer, err := c.Log(ctx)
		if err != nil {
			return fmt.Errorf("read the service's log, to import only what changed: %w", err)
		}
		defer answer.Close()
		e, _, err := replay{}.fold(ctx, env, sf.server+"/v1/log", answer, logFlags{}, attribution.DefaultOptions())
		if err != nil {
			return err
		}
		o.Known = imports.Known(e)
	}
	var in []imports.File
	for _, name := range files {
		f, err := env.open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = append(in, imports.File{Name: name, R: f})
	}
	if f, ok := env.Stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		o.Progress = env.Stderr
	}
	problems := func(probs []imports.Problem) {
		rows := 0
		for _, p := range probs {
			fmt.Fprintf(env.Stderr, "pal import %s: %s\n", format, p)
			if p.Row() {
				rows++
			}
		}
		if rows > 0 {
			fmt.Fprintf(env.Stderr, "pal import %s: %s not imported, each said above; the rest is imported\n", format, count(rows, "row"))
		}
	}
	if out != "" {
		res, err := imports.Run(format, in, o)
		if err != nil {
			return err
		}
		problems(res.Problems)
		if err := writeConsumptionParquet(out, res.Events); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "wrote %d daily costs to %s\n", len(res.Events), out)
		return nil
	}
	// The events are written as the import hands them on: to standard
	// output, or to the batch pushed to the service.
	var buf bytes.Buffer
	dest := io.Writer(env.Stdout)
	if push {
		dest = &buf
	}
	w := event.NewWriter(dest)
	n := 0
	probs, err := imports.RunTo(format, in, o, func(ev *event.Event) error {
		n++
		return w.Write(ev)
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return err
	}
	problems(probs)
	if !push {
		return nil
	}
	ans, err := c.Push(ctx, &buf)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "pushed %s: ", count(n, "event"))
	printIngest(env.Stdout, ans)
	return nil
}

// minUserKey is the shortest key --pseudonymise-users takes: as long as
// the hash it keys.
const minUserKey = 32

// readUserKey reads the key that pseudonymises usage users. Only an audit
// import makes usage, so the key goes with it alone.
func readUserKey(format, path string) ([]byte, error) {
	if format != "audit" {
		return nil, usagef("--pseudonymise-users acts on the usage an audit import makes; a %s import makes none", format)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--pseudonymise-users: %w", err)
	}
	if len(key) < minUserKey {
		return nil, usagef("the key file %s holds %d bytes, and a key needs at least %d random ones: make one with head -c %d /dev/urandom > %s, and keep it, since the same key gives the same pseudonyms month after month",
			path, len(key), minUserKey, minUserKey, path)
	}
	return key, nil
}

// writeConsumptionParquet writes consumption events as a consumption file,
// through a temporary file renamed at the end.
func writeConsumptionParquet(path string, events []*event.Event) error {
	return writeFileAtomically(path, func(out io.Writer) error {
		w := usage.NewConsumptionWriter(out)
		for _, ev := range events {
			cost, err := strconv.ParseFloat(ev.Cost, 64)
			if err != nil {
				return fmt.Errorf("cost %s: %w", ev.Cost, err)
			}
			if err := w.Write(usage.Consumption{Tenant: ev.Tenant, Resource: ev.Resource, Date: ev.Date, Cost: cost, Meter: ev.Meter}); err != nil {
				return err
			}
		}
		return w.Close()
	})
}
