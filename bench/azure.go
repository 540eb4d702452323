package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

// runAzure measures pal report azure over a month of a pal gen --azure data
// set against DuckDB merely scanning that month of the consumption file and
// summing its costs by tenant and resource: the floor of any engine that
// reads the file, without the recognition pal computes.
func runAzure(ctx context.Context, pal, data string, tenants, resources int, month, threads string, runs int) error {
	control, consumption := filepath.Join(data, "control.ndjson"), filepath.Join(data, "consumption.parquet")
	if _, err := os.Stat(consumption); errors.Is(err, os.ErrNotExist) {
		gen := exec.Command(pal, "gen", "--azure", "--seed", "1", "--tenants", fmt.Sprint(tenants),
			"--resources", fmt.Sprint(resources), "--months", "2", "--out", data)
		gen.Stdout, gen.Stderr = os.Stderr, os.Stderr
		if err := gen.Run(); err != nil {
			return fmt.Errorf("pal gen --azure: %w", err)
		}
	}
	rows, err := countRows(consumption)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The report goes to a file, as a user's would: read through a pipe,
	// its hundred megabytes would time the reader as well.
	report := filepath.Join(filepath.Dir(pal), "azure-report.json")
	// The two run in turns, and each figure is the median of its runs: a
	// shared machine's slow minutes then fall on both.
	var pals, ducks []measure
	for range runs {
		out, err := os.Create(report)
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, pal, "report", "azure", "--log", control,
			"--consumption", consumption, "--month", month, "--format", "json")
		cmd.Stdout = out
		palRun, err := timed("pal report azure", cmd)
		out.Close()
		if err != nil {
			return err
		}
		duck, err := timed("DuckDB scan and sum", exec.CommandContext(ctx, self, "duckdb-azure", consumption, month, threads))
		if err != nil {
			return err
		}
		pals, ducks = append(pals, palRun), append(ducks, duck)
		fmt.Fprintf(os.Stderr, "run %d: pal %.2f s, DuckDB %.2f s (%.2f×)\n", len(pals), palRun.wall.Seconds(), duck.wall.Seconds(),
			palRun.wall.Seconds()/duck.wall.Seconds())
	}
	ratios := make([]float64, len(pals))
	for i := range pals {
		ratios[i] = pals[i].wall.Seconds() / ducks[i].wall.Seconds()
	}
	slices.Sort(ratios)
	palRun, duck := median(pals), median(ducks)
	fmt.Printf("\n%d consumption records (%s), month %s, %d CPUs, median of %d runs in turns\n\n", rows, data, month, runtime.NumCPU(), runs)
	fmt.Printf("| run | wall | CPU | peak RSS | wall vs DuckDB, run by run |\n|---|---|---|---|---|\n")
	fmt.Printf("| %s | %.2f s | %.2f s | %.0f MiB | %.2f× (%.2f× to %.2f×) |\n", palRun.name, palRun.wall.Seconds(), palRun.cpu.Seconds(),
		palRun.rssMiB, ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	fmt.Printf("| %s | %.2f s | %.2f s | %.0f MiB | 1.00× |\n", duck.name, duck.wall.Seconds(), duck.cpu.Seconds(), duck.rssMiB)
	return nil
}

// median returns the run of median wall time, with the median CPU and
// peak memory of the runs.
func median(ms []measure) measure {
	mid := func(f func(measure) float64) float64 {
		vs := make([]float64, len(ms))
		for i, m := range ms {
			vs[i] = f(m)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	m := ms[0]
	m.wall = time.Duration(mid(func(m measure) float64 { return float64(m.wall) }))
	m.cpu = time.Duration(mid(func(m measure) float64 { return float64(m.cpu) }))
	m.rssMiB = mid(func(m measure) float64 { return m.rssMiB })
	return m
}

// duckAzure scans a month of a consumption file and sums its costs by
// tenant and resource.
func duckAzure(consumption, month, threads string) error {
	db, from, to, err := openDuckMonth(threads, month)
	if err != nil {
		return err
	}
	defer db.Close()
	var groups, records int64
	err = db.QueryRow(fmt.Sprintf(`
SELECT count(*), sum(n) FROM (
  SELECT tenant, resource, sum(cost) AS cost, count(*) AS n
  FROM read_parquet('%s')
  WHERE date >= '%s' AND date < '%s'
  GROUP BY 1, 2)`, quote(consumption), from, to)).Scan(&groups, &records)
	if err != nil {
		return err
	}
	fmt.Printf("%d resources, %d records\n", groups, records)
	return nil
}
