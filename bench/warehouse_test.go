package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/marcboeker/go-duckdb"

	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/usage"
)

// TestWarehouseSQL runs the SQL of docs/warehouse.md in DuckDB, over the
// recognition intervals pal timeline writes and a consumption file, and
// expects pal report azure's numbers, every one of them: on data sets of
// pal gen --azure and of random Azure logs, under each Azure policy, for
// each month.
func TestWarehouseSQL(t *testing.T) {
	pal := buildPal(t)
	doc := warehouseSQL(t)
	var sets []dataSet
	for _, seed := range []uint64{1, 2} {
		dir := t.TempDir()
		cmd := exec.Command(pal, "gen", "--azure", "--seed", fmt.Sprint(seed), "--tenants", "12", "--resources", "300",
			"--months", "2", "--out", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pal gen --azure: %v\n%s", err, out)
		}
		sets = append(sets, dataSet{fmt.Sprintf("gen seed %d", seed), dir})
	}
	for seed := range uint64(6) {
		sets = append(sets, randomSet(t, seed))
	}
	// capped counts the organisations whose ACR is less than the sum of
	// their resource rows: the cap of SPEC.md section 9.4 at work.
	capped, shared, compared := 0, 0, 0
	for _, set := range sets {
		control, consumption := filepath.Join(set.dir, "control.ndjson"), filepath.Join(set.dir, "consumption.parquet")
		for _, policy := range []string{"all", "latest", "split"} {
			timeline := filepath.Join(set.dir, "timeline-"+policy+".parquet")
			runPal(t, pal, "timeline", "--log", control, "--consumption", consumption, "--azure-policy", policy,
				"--format", "parquet", "--out", timeline)
			for _, month := range []string{"2026-01", "2026-02"} {
				name := fmt.Sprintf("%s, --azure-policy %s, %s", set.name, policy, month)
				want := palReport(t, runPal(t, pal, "report", "azure", "--log", control, "--consumption", consumption,
					"--azure-policy", policy, "--month", month, "--format", "json"))
				got := duckReport(t, doc, timeline, consumption, month)
				if diff := want.diff(got); diff != "" {
					t.Errorf("%s: the SQL of docs/warehouse.md and pal report azure differ:\n%s", name, diff)
				}
				capped += want.capped()
				if policy != "all" {
					shared += sharedRows(t, timeline)
				}
				compared += len(want.rows)
			}
		}
	}
	t.Logf("%d rows compared; %d organisation totals below the sum of their resource rows; %d intervals with a share other than 1", compared, capped, shared)
	if capped == 0 || shared == 0 || compared < 1000 {
		t.Errorf("the data sets are too tame: %d rows, %d capped organisation totals, %d shared intervals", compared, capped, shared)
	}
}

type dataSet struct{ name, dir string }

var (
	palOnce sync.Once
	palPath string
	palErr  error
)

// buildPal builds the command once for all the tests.
func buildPal(t *testing.T) string {
	palOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pal-warehouse")
		if err != nil {
			palErr = err
			return
		}
		palPath = filepath.Join(dir, "pal")
		// In the main module, whose dependencies are its own.
		build := exec.Command("go", "build", "-o", palPath, "./cmd/pal")
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			palErr = fmt.Errorf("go build ./cmd/pal: %v\n%s", err, out)
		}
	})
	if palErr != nil {
		t.Fatal(palErr)
	}
	return palPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if palPath != "" {
		os.RemoveAll(filepath.Dir(palPath))
	}
	os.Exit(code)
}

func runPal(t *testing.T, pal string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(pal, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pal %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// warehouseSQL returns the sql blocks of docs/warehouse.md, in order.
func warehouseSQL(t *testing.T) string {
	data, err := os.ReadFile("../docs/warehouse.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 5 {
		t.Fatalf("docs/warehouse.md has %d sql blocks", len(blocks))
	}
	return strings.Join(blocks, "\n")
}

// duckReport runs the SQL of the doc on the two files for a month and reads
// its three views.
func duckReport(t *testing.T, doc, timeline, consumption, month string) report {
	t.Helper()
	start, err := time.Parse("2006-01", month)
	if err != nil {
		t.Fatal(err)
	}
	script := doc
	for _, r := range [][2]string{
		{"read_parquet('timeline.parquet')", "read_parquet('" + quote(timeline) + "')"},
		{"read_parquet('consumption.parquet')", "read_parquet('" + quote(consumption) + "')"},
		{"DATE '2026-01-01' AS month_start", "DATE '" + start.Format(time.DateOnly) + "' AS month_start"},
	} {
		if strings.Count(script, r[0]) != 1 {
			t.Fatalf("docs/warehouse.md: %q should appear once", r[0])
		}
		script = strings.Replace(script, r[0], r[1], 1)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range regexp.MustCompile(`;\s*\n`).Split(script, -1) {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("docs/warehouse.md: %v\n%s", err, stmt)
		}
	}
	rep := report{rows: map[string]string{}}
	read := func(table string, keys int, q string) {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			var k, v []string
			for i, x := range vals {
				if i < keys {
					k = append(k, x.String)
				} else {
					v = append(v, cols[i]+"="+x.String)
				}
			}
			rep.add(t, table+" "+strings.Join(k, " "), strings.Join(v, " "))
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
	}
	read("resource", 5, `SELECT tenant, resource, subscription, org, partner,
		CAST(acr AS VARCHAR) AS acr, CAST(pec_eligible_cost AS VARCHAR) AS pec_eligible_cost,
		CAST(recognised_hours AS VARCHAR) AS recognised_hours FROM azure_resources`)
	read("subscription", 3, `SELECT tenant, subscription, org,
		CAST(acr AS VARCHAR) AS acr, CAST(pec_eligible_cost AS VARCHAR) AS pec_eligible_cost FROM azure_subscriptions`)
	read("org", 1, `SELECT org, CAST(acr AS VARCHAR) AS acr, CAST(pec_eligible_cost AS VARCHAR) AS pec_eligible_cost,
		CAST(pec_credit AS VARCHAR) AS pec_credit, CAST(customers AS VARCHAR) AS customers,
		CAST(subscriptions AS VARCHAR) AS subscriptions FROM azure_orgs`)
	return rep
}

// report is the three tables of an Azure report as rows of text, keyed by
// their table and key columns.
type report struct {
	rows map[string]string
	// orgACR and resourceACR sum the cents of each organisation's row and
	// of its resource rows, resourceRows counts the latter.
	orgACR, resourceACR, resourceRows map[string]int64
}

func (r *report) add(t *testing.T, key, values string) {
	t.Helper()
	if _, dup := r.rows[key]; dup {
		t.Fatalf("two rows %s", key)
	}
	r.rows[key] = values
}

// palReport reads pal report azure --format json, its numbers as written.
func palReport(t *testing.T, data []byte) report {
	t.Helper()
	var rep struct {
		Resources []struct {
			Tenant, Resource, Subscription, Org, Partner string
			ACR                                          json.Number `json:"acr"`
			PEC                                          json.Number `json:"pec_eligible_cost"`
			Hours                                        json.Number `json:"recognised_hours"`
		} `json:"resources"`
		Subscriptions []struct {
			Tenant, Subscription, Org string
			ACR                       json.Number `json:"acr"`
			PEC                       json.Number `json:"pec_eligible_cost"`
		} `json:"subscriptions"`
		Orgs []struct {
			Org                      string
			ACR                      json.Number `json:"acr"`
			PEC                      json.Number `json:"pec_eligible_cost"`
			Credit                   json.Number `json:"pec_credit"`
			Customers, Subscriptions int
		} `json:"orgs"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("pal report azure: %v\n%s", err, data)
	}
	out := report{rows: map[string]string{}, orgACR: map[string]int64{}, resourceACR: map[string]int64{}, resourceRows: map[string]int64{}}
	for _, r := range rep.Resources {
		out.add(t, strings.Join([]string{"resource", r.Tenant, r.Resource, r.Subscription, r.Org, r.Partner}, " "),
			fmt.Sprintf("acr=%s pec_eligible_cost=%s recognised_hours=%s", r.ACR, r.PEC, r.Hours))
		out.resourceACR[r.Org] += cents(t, r.ACR)
		out.resourceRows[r.Org]++
	}
	for _, s := range rep.Subscriptions {
		out.add(t, strings.Join([]string{"subscription", s.Tenant, s.Subscription, s.Org}, " "),
			fmt.Sprintf("acr=%s pec_eligible_cost=%s", s.ACR, s.PEC))
	}
	for _, o := range rep.Orgs {
		out.add(t, "org "+o.Org, fmt.Sprintf("acr=%s pec_eligible_cost=%s pec_credit=%s customers=%d subscriptions=%d",
			o.ACR, o.PEC, o.Credit, o.Customers, o.Subscriptions))
		out.orgACR[o.Org] = cents(t, o.ACR)
	}
	return out
}

func cents(t *testing.T, n json.Number) int64 {
	t.Helper()
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		t.Fatal(err)
	}
	return int64(f*100 + 0.5)
}

// capped counts the organisations whose ACR is at least a cent per
// resource row below the sum of their resource rows: rounding cannot
// explain it.
func (r report) capped() int {
	n := 0
	for org, acr := range r.orgACR {
		if acr+r.resourceRows[org] < r.resourceACR[org] {
			n++
		}
	}
	return n
}

// diff says how got differs from r, "" when it does not.
func (r report) diff(got report) string {
	var out []string
	for k, v := range r.rows {
		switch g, ok := got.rows[k]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s: pal %s, SQL no row", k, v))
		case g != v:
			out = append(out, fmt.Sprintf("%s: pal %s, SQL %s", k, v, g))
		}
	}
	for k, v := range got.rows {
		if _, ok := r.rows[k]; !ok {
			out = append(out, fmt.Sprintf("%s: pal no row, SQL %s", k, v))
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… %d differences in all (of %d rows)", len(out), len(r.rows)))
	}
	return strings.Join(out, "\n")
}

// sharedRows counts the Azure intervals of a timeline file whose share is
// not 1.
func sharedRows(t *testing.T, timeline string) int {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	q := fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s') WHERE workload = 'azure' AND share <> 1`, quote(timeline))
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// randomSet writes a random Azure log (attributiontest.RandomAzureLog,
// without its consumption events) and a consumption file of records of
// its resources and of others, with paths in any case, every meter, days
// around the two months, and a few records pal refuses.
func randomSet(t *testing.T, seed uint64) dataSet {
	t.Helper()
	dir := t.TempDir()
	var control bytes.Buffer
	w := event.NewWriter(&control)
	resources := map[string]bool{}
	for _, ev := range attributiontest.RandomAzureLog(seed, 400) {
		if ev.Type == event.AzureConsumption {
			resources[ev.Resource] = true
			continue
		}
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "control.ndjson"), control.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/subscriptions/s9/resourcegroups/rg/providers/microsoft.storage/storageaccounts/st"}
	for p := range resources {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	rng := rand.New(rand.NewPCG(seed, 7))
	f, err := os.Create(filepath.Join(dir, "consumption.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	cw := usage.NewConsumptionWriter(f)
	costs := []float64{0, 1, 2.5, 10, 0.333, 7.123456789, 0.000000001, 123456.75, 0.005, 0.015}
	first := time.Date(2025, 12, 28, 0, 0, 0, 0, time.UTC)
	for _, tenant := range []string{"t1", "t2", "t9"} {
		for _, p := range paths {
			for d := range 70 {
				date := first.AddDate(0, 0, d).Format(time.DateOnly)
				for _, m := range rng.Perm(len(event.Meters))[:rng.IntN(3)] {
					meter := event.Meters[m]
					if meter == event.MeterStandard && rng.IntN(2) == 0 {
						meter = "" // standard too
					}
					cost := costs[rng.IntN(len(costs))]
					if rng.IntN(200) == 0 {
						cost = -1 // refused
					}
					path := p
					if rng.IntN(3) == 0 {
						path = strings.ToUpper(path[:20]) + path[20:] + "/"
					}
					err := cw.Write(usage.Consumption{Tenant: tenant, Resource: path, Date: date, Cost: cost, Meter: meter})
					if err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if err := cw.Write(usage.Consumption{Tenant: "t1", Resource: paths[0], Date: "2026-01-05", Cost: 5, Meter: "nonsense"}); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dataSet{fmt.Sprintf("random Azure log %d", seed), dir}
}
