package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/palproject/pal/internal/gen"
)

// genMemoryLimit is the soft memory limit of pal gen --azure.
const genMemoryLimit = 192 << 20

func runGen(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "gen", "gen --seed S --tenants N --usage-events M --months K --out DIR, or gen --azure --seed S --tenants N --resources R --months K --out DIR")
	var cfg gen.Config
	var azure bool
	var resources int
	fs.Uint64Var(&cfg.Seed, "seed", 1, "the seed: the same flags always give the same files")
	fs.IntVar(&cfg.Tenants, "tenants", 100, "customer tenants")
	fs.Int64Var(&cfg.UsageEvents, "usage-events", 1000000, "usage events in all")
	fs.IntVar(&cfg.Months, "months", 1, "months of usage (or consumption), from 2026-01")
	fs.BoolVar(&azure, "azure", false, "an Azure data set: control.ndjson and consumption.parquet (daily costs)")
	fs.IntVar(&resources, "resources", 100000, "with --azure, Azure resources in all")
	out := fs.String("out", "", "the folder to write control.ndjson and usage.parquet (or consumption.parquet) into")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required: the folder for the files")
	}
	if cfg.Tenants < 1 || cfg.Months < 1 || cfg.UsageEvents < 0 {
		return usagef("--tenants and --months must be at least 1, --usage-events at least 0")
	}
	if azure && resources < cfg.Tenants {
		return usagef("--resources must be at least --tenants: every tenant has a resource")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	last := start
	progress := func(what string, total int64) func(int64) {
		return func(n int64) {
			if time.Since(last) > 5*time.Second {
				last = time.Now()
				fmt.Fprintf(env.Stderr, "pal gen: %d of %d %s written (%.0f s)\n", n, total, what, time.Since(start).Seconds())
			}
		}
	}
	if azure {
		// The writer holds about 110 MB at once whatever the size (a row
		// group, its dictionaries, zstd's windows). A soft limit keeps the
		// collector from letting the garbage of the row groups already
		// written double that, unless the user chose a limit of their own.
		if os.Getenv("GOMEMLIMIT") == "" {
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(genMemoryLimit))
		}
		acfg := gen.AzureConfig{Seed: cfg.Seed, Tenants: cfg.Tenants, Resources: resources, Months: cfg.Months}
		days := int64(gen.DefaultStart.AddDate(0, cfg.Months, 0).Sub(gen.DefaultStart).Hours() / 24)
		acfg.Progress = progress("consumption rows", int64(resources)*days)
		err := writePair(*out, "control.ndjson", "consumption.parquet", func(control, consumption io.Writer) error {
			return gen.WriteAzure(acfg, control, consumption)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "wrote %s and %s: %s, about %s, %s (%.1f s)\n",
			filepath.Join(*out, "control.ndjson"), filepath.Join(*out, "consumption.parquet"), count(cfg.Tenants, "tenant"), count(resources, "resource"), count(cfg.Months, "month"), time.Since(start).Seconds())
		return nil
	}
	cfg.Progress = progress("usage events", cfg.UsageEvents)
	err := writePair(*out, "control.ndjson", "usage.parquet", func(control, use io.Writer) error {
		return gen.Write(cfg, control, use)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s and %s: %s, %s, %s (%.1f s)\n",
		filepath.Join(*out, "control.ndjson"), filepath.Join(*out, "usage.parquet"), count(cfg.Tenants, "tenant"), count(int(cfg.UsageEvents), "usage event"), count(cfg.Months, "month"), time.Since(start).Seconds())
	return nil
}

// writePair writes two files of a folder through fn, each renamed at the
// end, so that a failure leaves nothing half-written.
func writePair(dir, first, second string, fn func(a, b io.Writer) error) error {
	return writeFilesAtomically([]string{filepath.Join(dir, first), filepath.Join(dir, second)},
		func(ws []io.Writer) error { return fn(ws[0], ws[1]) })
}
