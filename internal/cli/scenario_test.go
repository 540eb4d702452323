package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output of the scenarios in testdata/scenarios")

// A scenario is a script under testdata/scenarios that a person can read:
//
//	# What the scenario shows, in comments.
//	log
//	{"type": "...", ...}        one event a line; line 1 is the line after "log"
//	# a comment in the log stands for a blank line, so numbers keep counting
//	$ pal attribution --at 2026-01-01T00:00:00Z
//	the expected standard output, then
//	! each line of standard error
//	[exit 1]                    when the exit code is not 0
//
// Each command runs the real pal command line with --log naming the log.
// go test ./internal/cli -run Scenarios -update rewrites the expectations.
type scenario struct {
	head     []string // comments before the log
	log      []string
	commands []scenarioCommand
}

type scenarioCommand struct {
	line string // the command line after "$ pal "
	want []string
}

func parseScenario(t *testing.T, data string) scenario {
	t.Helper()
	var s scenario
	lines := strings.Split(strings.TrimRight(data, "\n"), "\n")
	i := 0
	for ; i < len(lines) && lines[i] != "log"; i++ {
		s.head = append(s.head, lines[i])
	}
	if i == len(lines) {
		t.Fatal(`scenario has no "log" line`)
	}
	for i++; i < len(lines) && !strings.HasPrefix(lines[i], "$ "); i++ {
		s.log = append(s.log, lines[i])
	}
	for ; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "$ ") {
			cmd, ok := strings.CutPrefix(lines[i], "$ pal ")
			if !ok {
				t.Fatalf("command %q does not start with \"$ pal \"", lines[i])
			}
			s.commands = append(s.commands, scenarioCommand{line: cmd})
			continue
		}
		c := &s.commands[len(s.commands)-1]
		c.want = append(c.want, lines[i])
	}
	for i := range s.commands {
		s.commands[i].want = trimBlank(s.commands[i].want)
	}
	return s
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func (s scenario) String() string {
	var b strings.Builder
	for _, l := range s.head {
		b.WriteString(l + "\n")
	}
	b.WriteString("log\n")
	for _, l := range s.log {
		b.WriteString(l + "\n")
	}
	for i, c := range s.commands {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("$ pal " + c.line + "\n")
		for _, l := range c.want {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// runScenarioCommand runs one command of a scenario and returns its
// transcript.
func runScenarioCommand(t *testing.T, logPath, line string) []string {
	t.Helper()
	args := strings.Fields(line)
	if args[0] != "demo" {
		args = append(args, "--log", logPath)
	}
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}, args)
	var out []string
	if stdout.Len() > 0 {
		for _, l := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
			out = append(out, strings.TrimRight(l, " "))
		}
	}
	if stderr.Len() > 0 {
		for _, l := range strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n") {
			out = append(out, "! "+l)
		}
	}
	if code != 0 {
		out = append(out, fmt.Sprintf("[exit %d]", code))
	}
	return trimBlank(out)
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("../../testdata/scenarios/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios found in testdata/scenarios")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			s := parseScenario(t, string(data))
			logPath := filepath.Join(t.TempDir(), "log.ndjson")
			var log strings.Builder
			for _, l := range s.log {
				if strings.HasPrefix(l, "#") {
					l = ""
				}
				log.WriteString(l + "\n")
			}
			if err := os.WriteFile(logPath, []byte(log.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			for i, c := range s.commands {
				got := runScenarioCommand(t, logPath, c.line)
				if *update {
					s.commands[i].want = got
					continue
				}
				if g, w := strings.Join(got, "\n"), strings.Join(c.want, "\n"); g != w {
					t.Errorf("$ pal %s\ngot:\n%s\n\nwant:\n%s", c.line, g, w)
				}
			}
			if *update {
				if err := os.WriteFile(file, []byte(s.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
