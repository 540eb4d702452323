package cli

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPipelineSteps runs the pal gate steps of docs/pipelines.md, as
// written there, against a real service: they fail while the deploying
// service principal holds no link, and pass once it does.
func TestPipelineSteps(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pipelines.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := regexp.MustCompile(`(?m)^\s+(pal gate .*)$`).FindAllStringSubmatch(string(doc), -1)
	solution := regexp.MustCompile("(?s)```json\n(.*?)```").FindStringSubmatch(string(doc))
	if len(steps) != 2 || solution == nil {
		t.Fatalf("docs/pipelines.md: %d pal gate steps and solution %v, want the two steps and a solution", len(steps), solution != nil)
	}

	_, srv, issue := newService(t)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	operator := issue("--role", "operator")
	_, log, _ := run(t, "", "demo")
	log += `{"type":"account.created","time":"2026-04-01T00:00:00Z","tenant":"contoso","account":"deploy-sp","kind":"service_principal"}` + "\n"
	if code, _, errOut := run(t, log, "events", "push", "-", "--server", hs.URL, "--token", operator); code != 0 {
		t.Fatalf("push the demo: %s", errOut)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "solution.json"), []byte(solution[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"PAL_SERVER": hs.URL, "PAL_TOKEN": issue("--role", "tenant-admin", "--tenant", "contoso")}
	gate := func(step string) (int, string, string) {
		args := strings.Fields(os.Expand(strings.ReplaceAll(step, `"`, ""), func(k string) string { return vars[k] }))
		if args[0] != "pal" {
			t.Fatalf("step %q does not run pal", step)
		}
		for i, a := range args {
			if a == "solution.json" {
				args[i] = filepath.Join(dir, a)
			}
		}
		return run(t, "", args[1:]...)
	}
	for _, s := range steps {
		code, _, errOut := gate(s[1])
		if code != 1 || !strings.Contains(errOut, "service principal deploy-sp") && !strings.Contains(errOut, "account deploy-sp holds no partner link in tenant contoso: link it with pal link create --partner-id 1000011") {
			t.Errorf("before the link, %q: exit %d %q", s[1], code, errOut)
		}
	}
	// The principal links itself, through the link API.
	sp := issue("--role", "account", "--tenant", "contoso", "--account", "deploy-sp")
	if code, _, errOut := run(t, "", "link", "create", "--partner-id", "1000011", "--server", hs.URL, "--token", sp); code != 0 {
		t.Fatalf("pal link create: %s", errOut)
	}
	for _, s := range steps {
		code, out, errOut := gate(s[1])
		if code != 0 || !strings.Contains(out, "would credit it for all 2 resources") {
			t.Errorf("after the link, %q: exit %d %q %q", s[1], code, out, errOut)
		}
	}
}
