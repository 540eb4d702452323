package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/palproject/pal/internal/gen"
)

func runGen(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "gen", "gen --seed S --tenants N --usage-events M --months K --out DIR")
	var cfg gen.Config
	fs.Uint64Var(&cfg.Seed, "seed", 1, "the seed: the same flags always give the same files")
	fs.IntVar(&cfg.Tenants, "tenants", 100, "customer tenants")
	fs.Int64Var(&cfg.UsageEvents, "usage-events", 1000000, "usage events in all")
	fs.IntVar(&cfg.Months, "months", 1, "months of usage, from 2026-01")
	out := fs.String("out", "", "the folder to write control.ndjson and usage.parquet into")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required: the folder for control.ndjson and usage.parquet")
	}
	if cfg.Tenants < 1 || cfg.Months < 1 || cfg.UsageEvents < 0 {
		return usagef("--tenants and --months must be at least 1, --usage-events at least 0")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	last := start
	cfg.Progress = func(n int64) {
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			fmt.Fprintf(env.Stderr, "pal gen: %d of %d usage events written (%.0f s)\n", n, cfg.UsageEvents, time.Since(start).Seconds())
		}
	}
	// Both files are written beside their names and renamed at the end, so
	// that a failure leaves nothing half-written.
	control, err := os.CreateTemp(*out, ".control-*.ndjson")
	if err != nil {
		return err
	}
	defer os.Remove(control.Name())
	use, err := os.CreateTemp(*out, ".usage-*.parquet")
	if err != nil {
		return err
	}
	defer os.Remove(use.Name())
	cw, uw := bufio.NewWriterSize(control, 1<<20), bufio.NewWriterSize(use, 1<<20)
	if err := gen.Write(cfg, cw, uw); err != nil {
		return err
	}
	for _, f := range []struct {
		w    *bufio.Writer
		file *os.File
		name string
	}{{cw, control, "control.ndjson"}, {uw, use, "usage.parquet"}} {
		if err := f.w.Flush(); err != nil {
			return err
		}
		if err := f.file.Chmod(0o644); err != nil {
			return err
		}
		if err := f.file.Close(); err != nil {
			return err
		}
		if err := os.Rename(f.file.Name(), filepath.Join(*out, f.name)); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stdout, "wrote %s and %s: %d tenants, %d usage events, %d months (%.1f s)\n",
		filepath.Join(*out, "control.ndjson"), filepath.Join(*out, "usage.parquet"), cfg.Tenants, cfg.UsageEvents, cfg.Months, time.Since(start).Seconds())
	return nil
}
