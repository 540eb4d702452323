package cli

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store/backend"
)

// demoLog is the sample log, as pal demo writes it.
func demoLog(t *testing.T) string {
	t.Helper()
	code, out, stderr := run(t, "", "demo")
	if code != 0 {
		t.Fatalf("pal demo: %d %s", code, stderr)
	}
	return out
}

// TestTheCommandLineSaysWhatItDoes: the usage lists every report; a month
// after the log's last event says so; links mark the disabled accounts;
// words agree with numbers.
func TestTheCommandLineSaysWhatItDoes(t *testing.T) {
	if _, out, _ := run(t, "", "help"); !strings.Contains(out, "report azure") || !strings.Contains(out, "report pcs") {
		t.Errorf("pal help lacks a report:\n%s", out)
	}
	log := demoLog(t)
	for _, args := range [][]string{
		{"report", "monthly", "--log", "-", "--month", "2026-05"},
		{"report", "pcs", "--log", "-", "--month", "2026-05", "--org", "1000001"},
		{"report", "azure", "--log", "-", "--month", "2026-05"},
	} {
		code, _, stderr := run(t, log, args...)
		want := "pal " + args[0] + " " + args[1] + ": 2026-05 is after the log's last event (2026-03-31T23:00:00Z): it says nothing of that month yet, so the report is empty"
		if code != 0 || !strings.Contains(stderr, want) {
			t.Errorf("pal %s: %d %q, want %q", strings.Join(args, " "), code, stderr, want)
		}
		args[5] = "2026-03"
		if _, _, stderr := run(t, log, args...); strings.Contains(stderr, "after the log's last event") {
			t.Errorf("pal %s: %q", strings.Join(args, " "), stderr)
		}
	}
	// gina left Fabrikam in February 2026: her account is disabled.
	code, out, _ := run(t, log, "links", "--log", "-", "--org", "1000001")
	if code != 0 || !strings.Contains(out, "7 accounts, 1 disabled (a disabled account's link does not count)") ||
		!strings.Contains(out, "gina@fabrikam.example (disabled)") || strings.Contains(out, "alice@fabrikam.example (disabled)") {
		t.Errorf("pal links:\n%s", out)
	}
	if _, out, _ := run(t, log, "links", "--log", "-", "--org", "1000001", "--tenant", "adatum"); !strings.Contains(out, ": 1 account\n") {
		t.Errorf("pal links of one account:\n%s", out)
	}
	if _, out, _ := run(t, log, "links", "--log", "-", "--org", "1000001", "--format", "json"); !strings.Contains(out, `"disabled": true`) {
		t.Errorf("pal links --format json does not mark gina's account:\n%s", out)
	}
}

// TestTokenIssueWarnsOfUnknownNames: a token that names an organisation,
// a tenant or an account the service's log does not know is issued with a
// warning; one that names known ones, without.
func TestTokenIssueWarnsOfUnknownNames(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "pal.db")
	st, err := backend.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(ctx, server.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	var events []*event.Event
	rd := event.NewReader(strings.NewReader(demoLog(t)))
	for {
		ev, _, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if _, _, _, err := srv.Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	st.Close()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--role", "partner-reader", "--org", "1000001"}, ""},
		{[]string{"--role", "partner-reader", "--org", "7777777"}, "warning: organisation 7777777 is not registered in the service's log"},
		{[]string{"--role", "partner-reader", "--org", "1000011"}, "warning: 1000011 is a location ID of organisation 1000001: a partner reader's --org is the organisation's global ID, 1000001"},
		{[]string{"--role", "account", "--tenant", "contoso", "--account", "alice@fabrikam.example"}, ""},
		{[]string{"--role", "account", "--tenant", "contoso", "--account", "alise@fabrikam.example"}, "warning: account alise@fabrikam.example does not exist in tenant contoso"},
		{[]string{"--role", "tenant-admin", "--tenant", "contoso"}, ""},
		{[]string{"--role", "tenant-admin", "--tenant", "contosso"}, "warning: tenant contosso has no event in the service's log"},
		{[]string{"--role", "operator"}, ""},
	}
	for _, tt := range tests {
		code, token, stderr := run(t, "", append([]string{"token", "issue", "--db", db}, tt.args...)...)
		if code != 0 || !strings.HasPrefix(token, "pal_") {
			t.Errorf("token issue %v: %d %q", tt.args, code, stderr)
		}
		if tt.want == "" && strings.Contains(stderr, "warning") || !strings.Contains(stderr, tt.want) {
			t.Errorf("token issue %v: %q, want %q", tt.args, stderr, tt.want)
		}
	}
}

// TestServeSaysHowToMakeAToken: pal serve without --demo says how to make
// a token to log in with; its currency is a code.
func TestServeSaysHowToMakeAToken(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pal.db")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		Run(ctx, &Env{Stdin: strings.NewReader(""), Stdout: pw, Stderr: io.Discard}, []string{"serve", "--db", db, "--addr", "127.0.0.1:0"})
		pw.Close()
		close(done)
	}()
	found := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(pr)
		for lines.Scan() {
			if strings.Contains(lines.Text(), "token") {
				found <- lines.Text()
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case line := <-found:
		if !strings.Contains(line, "pal token issue --db "+db+" --role operator") {
			t.Errorf("pal serve's word on tokens: %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Error("pal serve says nothing of tokens")
	}
	cancel()
	<-done
	if code, _, stderr := run(t, "", "serve", "--db", db, "--currency", "euro"); code != 2 || !strings.Contains(stderr, `--currency "euro" is not a currency code`) {
		t.Errorf("pal serve --currency euro: %d %q", code, stderr)
	}
}
