package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/store/sqlite"
	"github.com/palproject/pal/internal/testskip"
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
	code := testskip.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// serve starts the real binary and returns the process and its URL.
func serve(t *testing.T, db string, flags ...string) (*exec.Cmd, string) {
	t.Helper()
	// Webhooks post to receivers on loopback, over http://.
	args := append([]string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--snapshot-every", "200", "--webhook-allow-http", "--webhook-allow-private"}, flags...)
	cmd := exec.Command(palBin, args...)
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
	i := strings.Index(first, "http")
	if i < 0 {
		t.Fatalf("pal serve's first line %q has no URL", first)
	}
	go io.Copy(io.Discard, stdout)
	url := strings.Fields(first[i:])[0]
	// The service listens while it folds its log: it answers once
	// /healthz says ok, as a readiness probe would wait (on loopback; its
	// certificate is the TLS tests' to check).
	probe := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var health struct{ Status string }
		if resp, err := probe.Get(url + "/healthz"); err == nil {
			json.NewDecoder(resp.Body).Decode(&health)
			resp.Body.Close()
		}
		if health.Status == "ok" {
			return cmd, url
		}
		if time.Now().After(deadline) {
			t.Fatalf("pal serve at %s never said ok on /healthz", url)
		}
	}
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
	// A use of a resource that never comes: held, and refused after the
	// restart as before it.
	if _, err := post(url, tok, `{"type":"usage","time":"2026-01-05T00:00:00Z","tenant":"contoso","resource":"nope","user":"u0"}`); err != nil {
		t.Fatal(err)
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
	count := storedOnce(t, string(log), acked)
	t.Logf("%d events acknowledged before SIGKILL, %d in the log after the restart", len(acked), len(count))
	answersAsPalOnItsLog(t, url, tok)
}

// storedOnce checks that every line acknowledged is in the log once, and
// no line twice, and returns how many times each id is in it.
func storedOnce(t *testing.T, log string, acked map[string]bool) map[string]int {
	t.Helper()
	count := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
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
	return count
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

// palOutput runs the binary and returns its standard output.
func palOutput(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(palBin, args...).Output()
	if err != nil {
		t.Fatalf("pal %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// get reads a path of the service.
func get(t *testing.T, url, token, path string) []byte {
	t.Helper()
	body, _ := getAs(t, url, token, path)
	return body
}

// getAs is get, with the process that answered: a question the service
// cannot answer for the moment (503, Retry-After: a bucket changing hands)
// is asked again, as pal's client does, for half a minute at most.
func getAs(t *testing.T, url, token, path string) ([]byte, string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return body, resp.Header.Get("X-Pal-Process")
		case resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || time.Now().After(deadline):
			t.Fatalf("GET %s: %s %s", path, resp.Status, body)
		}
	}
}

// TestWebhookPostsAtLeastOnceAcrossAKill registers a webhook, makes twelve
// credit changes, and kills the service with SIGKILL while its receiver
// holds the fifth post unanswered. After a restart the receiver has every
// change, in feed order, and the fifth again under the same delivery id;
// the restarted service answers as pal does on its exported log.
func TestWebhookPostsAtLeastOnceAcrossAKill(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { webhookAcrossKill(t, filepath.Join(t.TempDir(), "pal.db")) })
	t.Run("postgres", func(t *testing.T) { webhookAcrossKill(t, pgtest.Database(t)) })
}

func webhookAcrossKill(t *testing.T, db string) {
	var mu sync.Mutex
	var deliveries []string
	held := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		deliveries = append(deliveries, r.Header.Get(server.DeliveryHeader))
		n := len(deliveries)
		mu.Unlock()
		if n == 5 {
			// The fifth post gets no answer: its sender dies first.
			close(held)
			<-r.Context().Done()
			return
		}
	}))
	defer receiver.Close()

	tok := token(t, db)
	cmd, url := serve(t, db)
	if n, err := post(url, tok, control); err != nil || n != 4 {
		t.Fatalf("control events: %d accepted, %v", n, err)
	}
	reader := strings.TrimSpace(palOutput(t, "token", "issue", "--db", db, "--role", "partner-reader", "--org", "100001"))
	req, _ := http.NewRequest("POST", url+"/v1/webhooks", strings.NewReader(fmt.Sprintf(`{"url":%q}`, receiver.URL)))
	req.Header.Set("Authorization", "Bearer "+reader)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /v1/webhooks: %v %v", resp, err)
	}
	resp.Body.Close()
	// alice links and unlinks in turn: Fabrikam gains and loses app1.
	var events []string
	for i := range 12 {
		typ := []string{"pal.linked", "pal.removed"}[i%2]
		events = append(events, fmt.Sprintf(`{"type":%q,"time":"2026-01-%02dT00:00:00Z","tenant":"contoso","account":"alice","partner":"100011"}`, typ, 3+i))
	}
	if n, err := post(url, tok, strings.Join(events, "\n")); err != nil || n != 12 {
		t.Fatalf("link events: %d accepted, %v", n, err)
	}
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the fifth post never came")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	_, url = serve(t, db)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(deliveries)
		mu.Unlock()
		if n >= 13 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	got := slices.Clone(deliveries)
	mu.Unlock()
	var firsts []string
	for i, id := range got {
		if !slices.Contains(got[:i], id) {
			firsts = append(firsts, id)
		}
	}
	if len(got) != 13 || len(firsts) != 12 || got[5] != got[4] {
		t.Fatalf("deliveries %v: want the 12 changes, the fifth posted again after the restart", got)
	}
	// A delivery id is webhook:seq:k: the changes came in feed order.
	seqOf := func(id string) int {
		var seq int
		fmt.Sscanf(id[strings.IndexByte(id, ':')+1:], "%d", &seq)
		return seq
	}
	if !slices.IsSortedFunc(firsts, func(a, b string) int { return seqOf(a) - seqOf(b) }) {
		t.Errorf("first deliveries %v are not in feed order", firsts)
	}
	feed := get(t, url, tok, "/v1/changes")
	var f struct {
		Changes []struct {
			Seq int64
		}
	}
	if err := json.Unmarshal(feed, &f); err != nil || len(f.Changes) != 12 {
		t.Fatalf("the feed: %s", feed)
	}

	answersAsPalOnItsLog(t, url, tok)
}

// answersAsPalOnItsLog compares what the service says with what pal says
// on the service's /v1/log: the monthly report, the attribution, and the
// refusals.
func answersAsPalOnItsLog(t *testing.T, url, tok string) {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "log.ndjson")
	if err := os.WriteFile(logFile, get(t, url, tok, "/v1/log"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"report", "monthly", "--month", "2026-01"}, {"attribution"}} {
		local := palOutput(t, append(args, "--log", logFile)...)
		remote := palOutput(t, append(args, "--server", url, "--token", tok)...)
		if local != remote {
			t.Errorf("pal %s: the service says\n%s\npal on its log says\n%s", strings.Join(args, " "), remote, local)
		}
	}
	var check struct {
		Refused []struct{ Line int64 }
	}
	json.Unmarshal([]byte(palOutput(t, "check", "--log", logFile, "--format", "json")), &check)
	var refusals struct {
		Refused []struct{ Seq int64 }
	}
	json.Unmarshal(get(t, url, tok, "/v1/refusals?limit=10000"), &refusals)
	if fmt.Sprint(check.Refused) != fmt.Sprint(refusals.Refused) {
		t.Errorf("the service refuses records %v, pal check on its log lines %v", refusals.Refused, check.Refused)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// as PEM files, and returns their paths.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pal test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return cert, key
}

// TestTLS serves HTTPS with a self-signed certificate: the command line
// asks it with --ca, refuses it without, and the answers carry HSTS.
func TestTLS(t *testing.T) {
	cert, key := selfSigned(t)
	db := filepath.Join(t.TempDir(), "pal.db")
	tok := token(t, db)
	_, url := serve(t, db, "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("pal serve with TLS listens on %s", url)
	}
	push := exec.Command(palBin, "events", "push", "-", "--server", url, "--token", tok, "--ca", cert)
	push.Stdin = strings.NewReader(control)
	if out, err := push.CombinedOutput(); err != nil || !strings.Contains(string(out), "accepted 4") {
		t.Fatalf("pal events push over TLS: %v %s", err, out)
	}
	report := exec.Command(palBin, "attribution", "--server", url, "--token", tok, "--ca", cert)
	if out, err := report.CombinedOutput(); err != nil || !strings.Contains(string(out), "app1") {
		t.Errorf("pal attribution over TLS: %v %s", err, out)
	}
	untrusted := exec.Command(palBin, "attribution", "--server", url, "--token", tok)
	if out, err := untrusted.CombinedOutput(); err == nil || !strings.Contains(string(out), "certificate") {
		t.Errorf("pal attribution without --ca: %v %s, want a refusal of the certificate", err, out)
	}
	plain := exec.Command(palBin, "attribution", "--server", "http://192.0.2.1:8080", "--token", tok)
	if out, err := plain.CombinedOutput(); err == nil || !strings.Contains(string(out), "https://") {
		t.Errorf("a token over plain http to another machine: %v %s, want a refusal", err, out)
	}
	pool := x509.NewCertPool()
	data, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(data)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q over HTTPS", hsts)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(url + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
}
