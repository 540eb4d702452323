package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/store/sqlite"
)

var palBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pal-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	palBin = filepath.Join(dir, "pal")
	if out, err := exec.Command("go", "build", "-o", palBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build pal: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serve starts the real binary and returns the process and its URL.
func serve(t *testing.T, db string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(palBin, "serve", "--db", db, "--addr", "127.0.0.1:0", "--snapshot-every", "200")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("pal serve printed nothing")
	}
	first := lines.Text()
	i := strings.Index(first, "http://")
	if i < 0 {
		t.Fatalf("pal serve's first line %q has no URL", first)
	}
	go io.Copy(io.Discard, stdout)
	return cmd, strings.Fields(first[i:])[0]
}

func token(t *testing.T, db string) string {
	out, err := exec.Command(palBin, "token", "issue", "--db", db, "--role", "operator").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// post pushes a batch and returns how many events the service accepted.
func post(url, token, body string) (int, error) {
	req, _ := http.NewRequest("POST", url+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var res struct {
		Accepted int `json:"accepted"`
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("POST /v1/events: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return 0, err
	}
	return res.Accepted, nil
}

const control = `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","environment":"prod","env_type":"production"}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"alice","kind":"guest"}
{"type":"resource.created","time":"2026-01-02T00:00:00Z","tenant":"contoso","environment":"prod","resource":"app1","kind":"canvas_app","owner":"alice"}`

// TestKillLosesNothingAcknowledged pushes events with ids from several
// clients, kills the server with SIGKILL mid-stream, restarts it, and finds
// every acknowledged event in the log exactly once.
func TestKillLosesNothingAcknowledged(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { killAndRestart(t, filepath.Join(t.TempDir(), "pal.db")) })
	t.Run("postgres", func(t *testing.T) { killAndRestart(t, pgtest.Database(t)) })
}

func killAndRestart(t *testing.T, db string) {
	tok := token(t, db)
	cmd, url := serve(t, db)
	if n, err := post(url, tok, control); err != nil || n != 4 {
		t.Fatalf("control events: %d accepted, %v", n, err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("use-%d-%d", g, i)
				ev := fmt.Sprintf(`{"type":"usage","time":"2026-01-%02dT10:00:00Z","id":%q,"tenant":"contoso","resource":"app1","user":"u%d"}`, 3+i%25, id, i)
				if n, err := post(url, tok, ev); err == nil && n == 1 {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	stop()
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d events were acknowledged before the kill", len(acked))
	}

	_, url = serve(t, db)
	req, _ := http.NewRequest("GET", url+"/v1/log", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	log, _ := io.ReadAll(resp.Body)
	count := map[string]int{}
	for _, line := range strings.Split(string(log), "\n") {
		if i := strings.Index(line, `"id":"`); i >= 0 {
			rest := line[i+6:]
			count[rest[:strings.IndexByte(rest, '"')]]++
		}
	}
	for id := range acked {
		if count[id] != 1 {
			t.Errorf("acknowledged event %s is in the log %d times", id, count[id])
		}
	}
	for id, n := range count {
		if n > 1 {
			t.Errorf("event %s is in the log %d times", id, n)
		}
	}
	t.Logf("%d events acknowledged before SIGKILL, %d in the log after the restart", len(acked), len(count))
}

// TestTerminateShutsDownGracefully sends SIGTERM: the server stops with
// exit code 0 and leaves a snapshot of everything it applied.
func TestTerminateShutsDownGracefully(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pal.db")
	tok := token(t, db)
	cmd, url := serve(t, db)
	if n, err := post(url, tok, control); err != nil || n != 4 {
		t.Fatalf("control events: %d accepted, %v", n, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pal serve after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pal serve did not stop within 30 s of SIGTERM")
	}
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seq, _, err := st.LoadSnapshot(context.Background())
	last, _ := st.LastSeq(context.Background())
	if err != nil || seq != last || last != 4 {
		t.Errorf("snapshot after SIGTERM at %d (%v), log at %d; want both at 4", seq, err, last)
	}
}
