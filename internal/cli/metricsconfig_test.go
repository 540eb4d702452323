package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMetricsConfig: the rates and thresholds of SPEC.md sections 5 and 6
// come from --metrics-config, over the published ones.
func TestMetricsConfig(t *testing.T) {
	_, log, _ := run(t, "", "demo")
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	type org struct {
		Org string  `json:"org"`
		MCV float64 `json:"mcv"`
	}
	monthly := func(extra ...string) map[string]float64 {
		t.Helper()
		code, stdout, stderr := run(t, log, append([]string{"report", "monthly", "--log", "-", "--month", "2026-03", "--format", "json"}, extra...)...)
		var m struct{ Orgs []org }
		if err := json.Unmarshal([]byte(stdout), &m); err != nil || code != 0 {
			t.Fatalf("report monthly %v: exit %d, %v, %s", extra, code, err, stderr)
		}
		out := map[string]float64{}
		for _, o := range m.Orgs {
			out[o.Org] = o.MCV
		}
		return out
	}
	published := monthly()
	halved := monthly("--metrics-config", file("half.json", `{"rates": {"power_apps": 100, "power_automate": 100, "power_bi": 100, "power_pages": 50, "customer_insights": 0.1}}`))
	if len(published) == 0 {
		t.Fatal("the demo's March report has no organisation")
	}
	for o, mcv := range published {
		if got := halved[o]; got < mcv/2-0.01 || got > mcv/2+0.01 || mcv == 0 {
			t.Errorf("%s: MCV %v at half the rates, want half of %v", o, got, mcv)
		}
	}

	score := func(extra ...string) (total float64, qualified bool) {
		t.Helper()
		code, stdout, stderr := run(t, log, append([]string{"report", "pcs", "--log", "-", "--month", "2026-03", "--org", "1000001", "--format", "json"}, extra...)...)
		var s struct {
			Total     float64 `json:"total"`
			Qualified bool    `json:"qualified"`
		}
		if err := json.Unmarshal([]byte(stdout), &s); err != nil || code != 0 {
			t.Fatalf("report pcs %v: exit %d, %v, %s", extra, code, err, stderr)
		}
		return s.Total, s.Qualified
	}
	total, qualified := score()
	if !qualified {
		t.Fatalf("Fabrikam does not qualify in the demo (total %v)", total)
	}
	strict := file("strict.json", `{"qualifying_total": 99.5, "max": {"usage_growth": 40}}`)
	if again, q := score("--metrics-config", strict); again < total || again > 100 || q {
		t.Errorf("with a qualifying total of 99.5 and 40 points of growth at most: total %v, qualified %v; want at least %v and not qualified", again, q, total)
	}
	// The table says the configured total and maxima.
	_, table, _ := run(t, log, "report", "pcs", "--log", "-", "--month", "2026-03", "--org", "1000001", "--metrics-config", strict)
	if !strings.Contains(table, "a total of at least 99.5") || !regexp.MustCompile(`total\s+\S+\s+110\n`).MatchString(table) {
		t.Errorf("the score's table with a total of 99.5 to qualify and 40 points of growth at most:\n%s", table)
	}

	for body, want := range map[string]string{
		`{"rates": {"powerapps": 1}}`: `--metrics-config ` + filepath.Join(dir, "bad.json") + `: rates: unknown "powerapps"`,
		`{"qualifying_total": -1}`:    "qualifying_total is -1",
	} {
		p := file("bad.json", body)
		code, stdout, stderr := run(t, log, "report", "monthly", "--log", "-", "--month", "2026-03", "--metrics-config", p)
		if code != ExitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
			t.Errorf("a bad file %s: exit %d, stderr %q; want one line saying %q", body, code, stderr, want)
		}
	}
	if code, _, stderr := run(t, "", "report", "pcs", "--month", "2026-03", "--org", "1000001", "--metrics-config", "x.json", "--server", "http://127.0.0.1:1", "--token", "x"); code != ExitUsage || !strings.Contains(stderr, "--metrics-config") {
		t.Errorf("--metrics-config with --server: exit %d %q, want it refused", code, stderr)
	}
	if code, _, stderr := run(t, "", "serve", "--db", os.DevNull, "--metrics-config", "/no/such.json"); code != ExitUsage || !strings.Contains(stderr, "--metrics-config: open /no/such.json") {
		t.Errorf("serve with a missing --metrics-config: exit %d %q", code, stderr)
	}
}
