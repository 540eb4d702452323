package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/usage"
)

func run(t testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}, args)
	return code, out.String(), errOut.String()
}

func TestUsageErrorsAreOneLineAndExit2(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"check", "--log", "/no/such/file.ndjson"}, "no such file"},
		{[]string{"check"}, "--log is required"},
		{[]string{"check", "--log", "-", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"check", "--log", "-", "--format", "xml"}, `unknown format "xml"`},
		{[]string{"attribution", "--log", "-", "--at", "tomorrow"}, `--at "tomorrow" is not a time`},
		{[]string{"report", "monthly", "--log", "-", "--month", "2026-13"}, `--month "2026-13" is not a month`},
		{[]string{"report", "pcs", "--log", "-", "--month", "2026-01"}, "--org is required"},
		{[]string{"report"}, "say which report"},
		{[]string{"explain", "--log", "-"}, "--tenant and --resource are required"},
		{[]string{"launch"}, `unknown command "launch"`},
		{[]string{"check", "--log", "-", "extra"}, `unexpected argument "extra"`},
		{[]string{"serve", "--db", os.DevNull, "--oidc-home-tenant", "contoso"}, "--oidc-home-tenant and --oidc-tenants go with --oidc-issuer"},
		{[]string{"serve", "--db", os.DevNull, "--oidc-issuer", "https://login.microsoftonline.com/{tenantid}/v2.0", "--oidc-audience", "api://pal", "--oidc-tenants", os.DevNull}, "names no tenant, and would refuse every token"},
	}
	for _, tt := range tests {
		code, stdout, stderr := run(t, "", tt.args...)
		if code != ExitUsage {
			t.Errorf("pal %s: exit %d, want %d", strings.Join(tt.args, " "), code, ExitUsage)
		}
		if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("pal %s: stderr %q, want one line containing %q", strings.Join(tt.args, " "), stderr, tt.want)
		}
		if stdout != "" {
			t.Errorf("pal %s: stdout %q, want nothing", strings.Join(tt.args, " "), stdout)
		}
	}
}

func TestHelpExits0(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"check", "-h"}, {"report", "pcs", "--help"}} {
		code, stdout, _ := run(t, "", args...)
		if code != ExitOK || !strings.Contains(stdout, "Usage: pal") {
			t.Errorf("pal %s: exit %d, stdout %q", strings.Join(args, " "), code, stdout)
		}
	}
}

// TestDemo runs the demo through the other commands, as the README does.
func TestDemo(t *testing.T) {
	code, log, stderr := run(t, "", "demo")
	if code != 0 || stderr != "" {
		t.Fatalf("pal demo: exit %d, stderr %q", code, stderr)
	}
	if _, again, _ := run(t, "", "demo"); again != log {
		t.Fatal("pal demo gave two different logs for the same seed")
	}
	if _, other, _ := run(t, "", "demo", "--seed", "2"); other == log {
		t.Fatal("pal demo --seed 2 gave the log of seed 1")
	}

	code, stdout, stderr := run(t, log, "check", "--log", "-", "--format", "json", "--strict")
	var c tally
	if err := json.Unmarshal([]byte(stdout), &c); err != nil || code != 0 || stderr != "" {
		t.Fatalf("pal check on the demo: exit %d, stderr %q, %v", code, stderr, err)
	}
	if c.Events < 5000 || c.Applied != c.Events || len(c.Refused) != 0 {
		t.Errorf("pal check on the demo = %+v, want thousands of events, all applied", c)
	}

	// Replaying twice: ids make every event a duplicate the second time.
	code, stdout, _ = run(t, log+log, "check", "--log", "-", "--format", "json")
	if err := json.Unmarshal([]byte(stdout), &c); err != nil || code != 0 || c.Duplicates != c.Applied {
		t.Errorf("pal check on the demo twice = %+v, want as many duplicates as applied", c)
	}

	code, stdout, _ = run(t, log, "report", "pcs", "--log", "-", "--month", "2026-03", "--org", "1000001", "--format", "json")
	var score struct {
		Qualified   bool    `json:"qualified"`
		Total       float64 `json:"total"`
		UsageMCV    float64 `json:"usage_mcv"`
		BaselineMCV float64 `json:"baseline_mcv"`
	}
	if err := json.Unmarshal([]byte(stdout), &score); err != nil || code != 0 {
		t.Fatalf("pal report pcs on the demo: exit %d, %v", code, err)
	}
	if !score.Qualified || score.UsageMCV <= score.BaselineMCV || score.BaselineMCV < 25000 {
		t.Errorf("demo score = %+v, want Fabrikam qualified with growth over a baseline of at least 25,000", score)
	}

	code, stdout, _ = run(t, log, "explain", "--log", "-", "--tenant", "litware", "--resource", "timesheets")
	if code != 0 || !strings.Contains(stdout, "not eligible: the account is disabled") {
		t.Errorf("explain of the disabled owner's app:\n%s", stdout)
	}
}

// TestUsageFromAFileOfItsOwn splits the demo into its control events and
// its usage, as NDJSON and as Parquet, and expects the reports of the whole
// log.
func TestUsageFromAFileOfItsOwn(t *testing.T) {
	_, log, _ := run(t, "", "demo")
	dir := t.TempDir()
	var control, uses strings.Builder
	var rows []*event.Event
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if strings.HasPrefix(line, `{"type":"usage"`) {
			uses.WriteString(line + "\n")
			ev, _ := event.Decode([]byte(line), 0)
			rows = append(rows, ev)
		} else {
			control.WriteString(line + "\n")
		}
	}
	// One use of a resource that does not exist is refused, with its row.
	uses.WriteString(`{"type":"usage","time":"2026-03-03T00:00:00Z","tenant":"contoso","resource":"gone","user":"u"}` + "\n")
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	logPath, controlPath, usagePath := write("all.ndjson", log), write("control.ndjson", control.String()), write("usage.ndjson", uses.String())
	var pq bytes.Buffer
	w := usage.NewWriter(&pq)
	for _, ev := range rows {
		w.Write(ev.Time, ev.Tenant, ev.Resource, ev.User)
	}
	w.Close()
	parquetPath := write("usage.parquet", pq.String())

	for _, cmd := range [][]string{
		{"report", "monthly", "--month", "2026-03", "--format", "json"},
		{"report", "monthly", "--month", "2025-06", "--format", "json"},
		{"report", "monthly", "--month", "2026-03", "--policy", "split", "--format", "json"},
		{"report", "monthly", "--month", "2026-03", "--policy", "first", "--format", "json"},
		{"report", "pcs", "--month", "2026-03", "--org", "1000001", "--format", "json"},
	} {
		_, want, _ := run(t, "", append(cmd, "--log", logPath)...)
		for _, u := range []string{usagePath, parquetPath} {
			code, got, errOut := run(t, "", append(cmd, "--log", controlPath, "--usage", u)...)
			if code != 0 || got != want {
				t.Errorf("pal %s --usage %s: exit %d %s\n%s\nwant\n%s", strings.Join(cmd, " "), filepath.Base(u), code, errOut, got, want)
			}
		}
	}
	code, out, _ := run(t, "", "check", "--log", controlPath, "--usage", usagePath, "--format", "json")
	var c tally
	json.Unmarshal([]byte(out), &c)
	lines := strings.Count(log, "\n")
	if code != 0 || c.Events != lines+1 || c.Applied != lines || len(c.Refused) != 1 || c.Refused[0].Line != len(rows)+1 ||
		!strings.Contains(c.Refused[0].Message, "usage.ndjson") {
		t.Errorf("pal check --usage: exit %d %+v", code, c)
	}
	code, _, errOut := run(t, "", "report", "monthly", "--month", "2026-03", "--log", controlPath, "--usage", controlPath+"x")
	if code != ExitUsage || !strings.Contains(errOut, "no such file") {
		t.Errorf("a missing usage file: exit %d %q", code, errOut)
	}
	code, _, errOut = run(t, "", "report", "monthly", "--month", "2026-03", "--log", controlPath, "--usage", write("bad.parquet", "PAR1 not really"))
	if code != ExitUsage || !strings.Contains(errOut, "not a readable Parquet file") {
		t.Errorf("a corrupt Parquet file: exit %d %q", code, errOut)
	}
}

// TestGenAndTimeline makes a small data set twice, expects the same bytes,
// checks it refuses nothing, and reads its timeline back from Parquet.
func TestGenAndTimeline(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		code, out, errOut := run(t, "", "gen", "--seed", "7", "--tenants", "40", "--usage-events", "20000", "--months", "2", "--out", dir)
		if code != 0 || !strings.Contains(out, "20000 usage events") {
			t.Fatalf("pal gen: exit %d %q %q", code, out, errOut)
		}
	}
	for _, name := range []string{"control.ndjson", "usage.parquet"} {
		a, _ := os.ReadFile(filepath.Join(dirs[0], name))
		b, _ := os.ReadFile(filepath.Join(dirs[1], name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	control, use := filepath.Join(dirs[0], "control.ndjson"), filepath.Join(dirs[0], "usage.parquet")
	code, out, _ := run(t, "", "check", "--log", control, "--usage", use, "--format", "json", "--strict")
	var c tally
	if err := json.Unmarshal([]byte(out), &c); err != nil || code != 0 || len(c.Refused) != 0 || c.Events < 20000 {
		t.Fatalf("pal check on the generated set: exit %d %+v", code, c)
	}
	code, out, _ = run(t, "", "report", "monthly", "--log", control, "--usage", use, "--month", "2026-02", "--format", "json")
	var m struct {
		Orgs []struct{ Deployments int } `json:"orgs"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || code != 0 || len(m.Orgs) < 2 {
		t.Fatalf("monthly report of the generated set: exit %d, %d organisations", code, len(m.Orgs))
	}

	path := filepath.Join(dirs[0], "timeline.parquet")
	if code, _, errOut := run(t, "", "timeline", "--log", control, "--format", "parquet", "--out", path); code != 0 {
		t.Fatalf("pal timeline --format parquet: exit %d %s", code, errOut)
	}
	_, out, _ = run(t, "", "timeline", "--log", control, "--format", "json")
	var want struct {
		Intervals []interval `json:"intervals"`
	}
	json.Unmarshal([]byte(out), &want)
	data, _ := os.ReadFile(path)
	rows, err := parquet.Read[usage.Interval](bytes.NewReader(data), int64(len(data)))
	if err != nil || len(rows) != len(want.Intervals) || len(rows) == 0 {
		t.Fatalf("timeline.parquet: %d rows (%v), want %d", len(rows), err, len(want.Intervals))
	}
	for i, r := range rows {
		w := want.Intervals[i]
		if r.Tenant != w.Tenant || r.Resource != w.Resource || r.Partner != w.Partner || r.Start != w.Start.UnixMicro() || (r.End == nil) != (w.End == nil) {
			t.Fatalf("row %d: %+v, want %+v", i, r, w)
		}
	}
	if code, _, errOut := run(t, "", "timeline", "--log", control, "--format", "parquet"); code != ExitUsage || !strings.Contains(errOut, "--out") {
		t.Errorf("--format parquet without --out: exit %d %q", code, errOut)
	}
}

// TestFlagsThatAreHonoured: a command takes only the flags it honours. The
// commands that read a log only refuse --server; with --server, the flags
// about reading a log are refused, not ignored.
func TestFlagsThatAreHonoured(t *testing.T) {
	for _, args := range [][]string{
		{"check", "--server", "http://127.0.0.1:1", "--token", "x"},
		{"timeline", "--server", "http://127.0.0.1:1", "--token", "x"},
	} {
		if code, _, stderr := run(t, "", args...); code != ExitUsage || !strings.Contains(stderr, "-server") {
			t.Errorf("pal %s: exit %d %q, want a refusal of --server", strings.Join(args, " "), code, stderr)
		}
	}
	for flag, args := range map[string][]string{
		"--policy": {"attribution", "--policy", "first"},
		"--usage":  {"report", "monthly", "--month", "2026-01", "--usage", "usage.parquet"},
		"--strict": {"explain", "--tenant", "t", "--resource", "r", "--strict"},
	} {
		args = append(args, "--server", "http://127.0.0.1:1", "--token", "x")
		if code, _, stderr := run(t, "", args...); code != ExitUsage || !strings.Contains(stderr, flag) || !strings.Contains(stderr, "drop") {
			t.Errorf("pal %s: exit %d %q, want %s refused", strings.Join(args, " "), code, stderr, flag)
		}
	}
	if code, _, stderr := run(t, "", "check"); code != ExitUsage || strings.Contains(stderr, "--server") {
		t.Errorf("pal check without --log: exit %d %q, want no word of --server", code, stderr)
	}
}

// TestParquetFromStandardInput: a Parquet file is read by row groups, from
// a file: given on standard input it is a usage error that says so, for
// each flag that takes one.
func TestParquetFromStandardInput(t *testing.T) {
	dir := t.TempDir()
	_, log, _ := run(t, "", "demo")
	logFile := filepath.Join(dir, "log.ndjson")
	if err := os.WriteFile(logFile, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{
		{"report", "monthly", "--month", "2026-03", "--log", logFile, "--usage", "-"},
		{"report", "azure", "--month", "2026-03", "--log", logFile, "--consumption", "-"},
	} {
		code, _, errOut := run(t, "PAR1 and the rest of a Parquet file", c...)
		if code != ExitUsage || !strings.Contains(errOut, "a Parquet file is read from a file, not from standard input") {
			t.Errorf("pal %s with Parquet on standard input: exit %d %q", strings.Join(c, " "), code, errOut)
		}
	}
}
