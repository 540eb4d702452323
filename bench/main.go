// Command bench measures pal's monthly report against the same computation
// in DuckDB, over one data set made by pal gen, and checks that both give
// the same numbers row for row. It lives in a module of its own so that the
// main module keeps no cgo dependency.
//
//	go run . --events 10000000            # make the data set, then measure
//	go run . --data /tmp/pal-bench-10M    # measure an existing data set
//	go run . --azure --resources 1000000  # pal report azure against DuckDB's scan of the month
//
// Each engine runs as a child process, so that its wall time, CPU time and
// peak RSS are its own.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	_ "github.com/marcboeker/go-duckdb"
	"github.com/parquet-go/parquet-go"

	"github.com/palproject/pal/internal/usage"
)

func main() {
	// The bench runs itself as a child for DuckDB and for the read floor.
	if len(os.Args) > 1 && (os.Args[1] == "duckdb" || os.Args[1] == "floor" || os.Args[1] == "duckdb-azure") {
		if err := child(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type measure struct {
	name   string
	wall   time.Duration
	cpu    time.Duration
	rssMiB float64
	out    []byte
}

// timed runs a command and measures it, keeping what it prints unless its
// output goes elsewhere already.
func timed(name string, cmd *exec.Cmd) (measure, error) {
	var stdout bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return measure{}, fmt.Errorf("%s: %w", name, err)
	}
	m := measure{name: name, wall: time.Since(start), out: stdout.Bytes()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		m.rssMiB = float64(ru.Maxrss) / 1024
	}
	return m, nil
}

func run() error {
	data := flag.String("data", "", "the data set folder (control.ndjson, usage.parquet); made with pal gen when missing")
	events := flag.Int64("events", 10_000_000, "usage events of a data set to make")
	tenants := flag.Int("tenants", 2000, "tenants of a data set to make")
	month := flag.String("month", "2026-01", "the month to report")
	threads := flag.Int("threads", runtime.NumCPU(), "threads for DuckDB")
	azure := flag.Bool("azure", false, "measure pal report azure against DuckDB scanning and summing the month's consumption")
	resources := flag.Int("resources", 1_000_000, "Azure resources of a data set to make (with --azure)")
	runs := flag.Int("runs", 3, "runs of each, in turns, whose medians are reported (with --azure)")
	flag.Parse()
	ctx := context.Background()

	work, err := os.MkdirTemp("", "pal-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	pal := filepath.Join(work, "pal")
	build := exec.Command("go", "build", "-o", pal, "./cmd/pal")
	build.Dir = ".."
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build pal: %w", err)
	}
	if *data == "" {
		*data = filepath.Join(work, "data")
	}
	if *azure {
		return runAzure(ctx, pal, *data, *tenants, *resources, *month, fmt.Sprint(*threads), max(*runs, 1))
	}
	control, use := filepath.Join(*data, "control.ndjson"), filepath.Join(*data, "usage.parquet")
	if _, err := os.Stat(use); errors.Is(err, os.ErrNotExist) {
		gen := exec.Command(pal, "gen", "--seed", "1", "--tenants", fmt.Sprint(*tenants), "--usage-events", fmt.Sprint(*events), "--months", "1", "--out", *data)
		gen.Stdout, gen.Stderr = os.Stderr, os.Stderr
		if err := gen.Run(); err != nil {
			return fmt.Errorf("pal gen: %w", err)
		}
	}
	rows, err := countRows(use)
	if err != nil {
		return err
	}
	timeline := filepath.Join(work, "timeline.parquet")
	tl, err := timed("pal timeline", exec.CommandContext(ctx, pal, "timeline", "--log", control, "--format", "parquet", "--out", timeline))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	palRun, err := timed("pal", exec.CommandContext(ctx, pal, "report", "monthly", "--log", control, "--usage", use, "--month", *month, "--format", "json"))
	if err != nil {
		return err
	}
	duck, err := timed("DuckDB", exec.CommandContext(ctx, self, "duckdb", use, timeline, *month, fmt.Sprint(*threads)))
	if err != nil {
		return err
	}
	floor, err := timed("read once", exec.CommandContext(ctx, self, "floor", use))
	if err != nil {
		return err
	}

	same, detail, err := compare(palRun.out, duck.out)
	if err != nil {
		return err
	}
	fmt.Printf("\n%d usage events (%s), month %s, %d CPUs; timeline written by pal in %.2f s\n\n", rows, *data, *month, runtime.NumCPU(), tl.wall.Seconds())
	fmt.Printf("| run | wall | CPU | peak RSS | events/s | wall vs DuckDB |\n|---|---|---|---|---|---|\n")
	for _, m := range []measure{palRun, duck, floor} {
		fmt.Printf("| %s | %.2f s | %.2f s | %.0f MiB | %.1f M | %.2f× |\n", m.name, m.wall.Seconds(), m.cpu.Seconds(), m.rssMiB,
			float64(rows)/m.wall.Seconds()/1e6, m.wall.Seconds()/duck.wall.Seconds())
	}
	fmt.Printf("\npal is %.2f× as fast as DuckDB and within %.2f× of reading the file once.\n", duck.wall.Seconds()/palRun.wall.Seconds(), palRun.wall.Seconds()/floor.wall.Seconds())
	if !same {
		return fmt.Errorf("pal and DuckDB disagree: %s", detail)
	}
	fmt.Printf("pal and DuckDB agree on all %s.\n", detail)
	return nil
}

// openSized opens a file and returns its size.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// countRows reads the number of rows from the file's footer.
func countRows(path string) (int64, error) {
	f, size, err := openSized(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	pf, err := parquet.OpenFile(f, size)
	if err != nil {
		return 0, err
	}
	return pf.NumRows(), nil
}

// key is a row of the comparison: an organisation's MAU of a workload in
// a tenant.
type key struct{ tenant, org, workload string }

func compare(palOut, duckOut []byte) (bool, string, error) {
	var report struct {
		Workloads []struct {
			Tenant, Org, Workload string
			MAU                   float64
		} `json:"workloads"`
	}
	if err := json.Unmarshal(palOut, &report); err != nil {
		return false, "", fmt.Errorf("read pal's report: %w", err)
	}
	want := map[key]int64{}
	for _, w := range report.Workloads {
		if w.MAU > 0 {
			want[key{w.Tenant, w.Org, w.Workload}] = int64(w.MAU)
		}
	}
	var rows [][4]string
	if err := json.Unmarshal(duckOut, &rows); err != nil {
		return false, "", fmt.Errorf("read DuckDB's rows: %w", err)
	}
	got := map[key]int64{}
	for _, r := range rows {
		var n int64
		fmt.Sscan(r[3], &n)
		got[key{r[0], r[1], r[2]}] = n
	}
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%v: pal %d, DuckDB %d", k, v, got[k]))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%v: pal none, DuckDB %d", k, v))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		return false, fmt.Sprintf("%d rows differ, first: %s", len(diffs), diffs[0]), nil
	}
	return true, fmt.Sprintf("%d (tenant, organisation, workload) rows", len(want)), nil
}

// child runs one measured engine: DuckDB's query, or the read floor.
func child(what string, args []string) error {
	switch what {
	case "floor":
		_, err := countRowsAll(args[0])
		return err
	case "duckdb":
		use, timeline, month, threads := args[0], args[1], args[2], args[3]
		db, from, to, err := openDuckMonth(threads, month)
		if err != nil {
			return err
		}
		defer db.Close()
		q := fmt.Sprintf(`
SELECT t.tenant, t.org, t.workload, count(DISTINCT u."user") AS mau
FROM read_parquet('%s') u
JOIN read_parquet('%s') t
  ON u.tenant = t.tenant AND u.resource = t.resource
 AND u."time" >= t."start" AND (t."end" IS NULL OR u."time" < t."end")
WHERE t.org <> '' AND u."time" >= TIMESTAMP '%s' AND u."time" < TIMESTAMP '%s'
GROUP BY 1, 2, 3`, quote(use), quote(timeline), from, to)
		rows, err := db.Query(q)
		if err != nil {
			return err
		}
		defer rows.Close()
		var out [][4]string
		for rows.Next() {
			var r [4]string
			var n int64
			if err := rows.Scan(&r[0], &r[1], &r[2], &n); err != nil {
				return err
			}
			r[3] = fmt.Sprint(n)
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(out)
	case "duckdb-azure":
		return duckAzure(args[0], args[1], args[2])
	}
	return fmt.Errorf("unknown child %q", what)
}

// countRowsAll reads every column of the usage file once, on every core:
// the floor no engine can beat.
func countRowsAll(path string) (int64, error) {
	f, size, err := openSized(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total [64]int64
	err = usage.ReadParquet(context.Background(), f, size, runtime.NumCPU(), func(w int, b *usage.Batch) error {
		total[w%64] += int64(b.Len())
		return nil
	})
	var n int64
	for _, t := range total {
		n += t
	}
	return n, err
}

// openDuck opens an in-memory DuckDB on a number of threads.
func openDuck(threads string) (*sql.DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec("SET threads = " + threads); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openDuckMonth is openDuck for a query of a month (YYYY-MM): its first day
// and the next month's, as dates.
func openDuckMonth(threads, month string) (db *sql.DB, from, to string, err error) {
	start, err := time.Parse("2006-01", month)
	if err != nil {
		return nil, "", "", err
	}
	db, err = openDuck(threads)
	return db, start.Format(time.DateOnly), start.AddDate(0, 1, 0).Format(time.DateOnly), err
}

func quote(path string) string { return strings.ReplaceAll(path, "'", "''") }
