package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/palproject/pal/internal/api"
	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/cli"
	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/fold"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/storetest"
	"github.com/palproject/pal/internal/usage"
)

// TestConsumptionFilePushed: random Azure logs whose costs come as Parquet
// files to POST /v1/consumption, in two pushes of which the second revises
// some of the first's records, the rest as events, give the Azure reports
// and the attribution rows the same log gives pal with those costs in it,
// on both stores; and the service's /v1/log, costs included, gives pal
// the same reports again.
func TestConsumptionFilePushed(t *testing.T) {
	for _, b := range storetest.Backends() {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/%d", b.Name, seed), func(t *testing.T) {
				pushCostsAndCompare(t, b.Fresh(t)(t), seed)
			})
		}
	}
}

func pushCostsAndCompare(t *testing.T, st store.Store, seed uint64) {
	log, _ := fold.Order(attributiontest.RandomAzureLog(seed, 400))
	var control, costs []*event.Event
	last := map[[3]string]int{}
	for _, ev := range log {
		if ev.Type != event.AzureConsumption {
			control = append(control, ev)
			continue
		}
		// A file's cost is a double: the record as it reads back.
		c, err := strconv.ParseFloat(ev.Cost, 64)
		if err != nil {
			continue
		}
		rec := *ev
		rec.Cost = strconv.FormatFloat(c, 'f', -1, 64)
		k := [3]string{ev.Tenant + "\x00" + ev.Resource, ev.Date, ev.Meter}
		if i, ok := last[k]; ok {
			costs[i] = &rec
			continue
		}
		last[k] = len(costs)
		costs = append(costs, &rec)
	}
	// The first file holds every cost, a third of them a tenth too high;
	// the second, pushed later, holds those thirds as they are.
	parquetOf := func(evs []*event.Event, scale func(i int) float64) string {
		rows := make([]usage.Consumption, len(evs))
		for i, ev := range evs {
			c, _ := strconv.ParseFloat(ev.Cost, 64)
			rows[i] = usage.Consumption{Tenant: ev.Tenant, Resource: ev.Resource, Date: ev.Date, Cost: c * scale(i), Meter: ev.Meter}
		}
		return consumptionFile(t, rows...)
	}
	first := parquetOf(costs, func(i int) float64 {
		if i%3 == 0 {
			return 1.1
		}
		return 1
	})
	var revised []*event.Event
	for i, ev := range costs {
		if i%3 == 0 {
			revised = append(revised, ev)
		}
	}
	second := parquetOf(revised, func(int) float64 { return 1 })
	var lines bytes.Buffer
	for _, ev := range control {
		lines.Write(ev.AppendJSON(nil))
		lines.WriteByte('\n')
	}

	s := start(t, st, server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	// Every other role event and membership change is held back, and
	// pushed after the costs: late, it folds its tenant again, whose
	// resources with costs must stay listed, and the report must follow.
	var early, late bytes.Buffer
	for i, ev := range control {
		to := &early
		if i%2 == 1 && (strings.HasPrefix(ev.Type, "azure.role") || strings.HasPrefix(ev.Type, "group.member")) {
			to = &late
		}
		to.Write(ev.AppendJSON(nil))
		to.WriteByte('\n')
	}
	s.push(operator, early.String())
	defer func() {
		if !t.Failed() && late.Len() == 0 {
			t.Error("no role event came late")
		}
	}()
	for _, file := range []string{first, second} {
		var res struct {
			Accepted int
			Refused  []struct{ Line int }
		}
		if status := s.json("POST", "/v1/consumption", operator, file, &res); status != 200 || res.Accepted == 0 || len(res.Refused) != 0 {
			_, body := s.call("POST", "/v1/consumption", operator, file)
			t.Fatalf("POST /v1/consumption: %d %s", status, body)
		}
	}
	s.push(operator, late.String())
	want := fold.Events(attribution.DefaultOptions(), append(control, costs...))
	exported := fold.Events(attribution.DefaultOptions(), s.exportedLog(operator))
	// The command line reads the two files as one, the revisions after.
	dir := t.TempDir()
	logFile, costFile := filepath.Join(dir, "control.ndjson"), filepath.Join(dir, "costs.parquet")
	if err := os.WriteFile(logFile, lines.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(costFile, []byte(parquetOf(append(slices.Clone(costs), revised...), func(i int) float64 {
		if i < len(costs) && i%3 == 0 {
			return 1.1
		}
		return 1
	})), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, month := range []string{"2026-01", "2026-02"} {
		wantJSON := sameAzureReport(t, s, operator, want, month)
		fromLog, err := exported.Azure().Report(month)
		if err != nil {
			t.Fatal(err)
		}
		fromLogJSON, _ := json.Marshal(fromLog)
		if diff := jsonDiff(wantJSON, fromLogJSON); diff != "" {
			t.Errorf("%s: pal on the service's /v1/log differs from pal (-pal +exported):\n%s", month, diff)
		}
		var stdout, stderr bytes.Buffer
		if code := cli.Run(context.Background(), &cli.Env{Stdout: &stdout, Stderr: &stderr},
			[]string{"report", "azure", "--log", logFile, "--consumption", costFile, "--month", month, "--format", "json"}); code != 0 {
			t.Fatalf("pal report azure: exit %d: %s", code, stderr.String())
		}
		if diff := jsonDiff(wantJSON, stdout.Bytes()); diff != "" {
			t.Errorf("%s: pal report azure --consumption differs from pal on the log (-log +file):\n%s", month, diff)
		}
	}
	var page api.AttributionPage
	if status := s.json("GET", "/v1/attribution?limit=10000", operator, "", &page); status != 200 || page.Next != nil {
		t.Fatalf("GET /v1/attribution: %d, next %v", status, page.Next)
	}
	var wantRows []attribution.Row
	for _, r := range want.Attribution() {
		if r.Kind == azure.Kind {
			wantRows = append(wantRows, r)
		}
	}
	var gotRows []attribution.Row
	for _, r := range page.Resources {
		if r.Kind == azure.Kind {
			gotRows = append(gotRows, r)
		}
	}
	if len(wantRows) == 0 {
		t.Fatal("the log has no Azure resource with consumption")
	}
	if diff := gocmp.Diff(wantRows, gotRows); diff != "" {
		t.Errorf("the Azure rows of /v1/attribution differ from pal's (-pal +service):\n%s", diff)
	}
}

// sameAzureReport checks that the service's Azure report of a month is
// pal's on the engine want, and returns pal's as JSON.
func sameAzureReport(t *testing.T, s *service, token string, want *attribution.Engine, month string) []byte {
	t.Helper()
	rep, err := want.Azure().Report(month)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(rep)
	_, got := s.call("GET", "/v1/reports/azure?month="+month, token, "")
	if diff := jsonDiff(wantJSON, got); diff != "" {
		t.Errorf("%s: the service differs from pal (-pal +service):\n%s", month, diff)
	}
	return wantJSON
}

// jsonDiff compares two JSON documents as values.
func jsonDiff(a, b []byte) string {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return "the first is no JSON: " + err.Error()
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return "the second is no JSON: " + err.Error()
	}
	return gocmp.Diff(x, y)
}

// TestConsumptionFileRefused: a tenant administrator pushes its own
// tenant's costs only; a body that is not Parquet is refused in words.
func TestConsumptionFileRefused(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	admin := s.token(store.RoleTenantAdmin, "contoso", "", "")
	if status, body := s.call("POST", "/v1/consumption", admin, "tenant,resource\n"); status != 400 || !bytes.Contains(body, []byte("no consumption file")) {
		t.Errorf("a CSV body: %d %s", status, body)
	}
	file := consumptionFile(t, usage.Consumption{Tenant: "fabrikam", Resource: assignedVM, Date: "2026-01-01", Cost: 1})
	var res struct {
		Refused []struct{ Code string }
	}
	if status := s.json("POST", "/v1/consumption", admin, file, &res); status != 200 || len(res.Refused) != 1 || res.Refused[0].Code != "forbidden" {
		t.Errorf("another tenant's costs: %d %+v", status, res)
	}
}

// TestPushedCostsInPastFrames: a resource whose costs came as a file, in
// February, is on the organisation's February tables read in March, past
// frames being folded from the log alone, as it is when its costs come as
// events.
func TestPushedCostsInPastFrames(t *testing.T) {
	march := `{"type":"account.created","time":"2026-03-02T00:00:00Z","tenant":"contoso","account":"cid","kind":"guest"}` + "\n"
	var rows []usage.Consumption
	for d := 1; d <= 10; d++ {
		rows = append(rows, usage.Consumption{Tenant: "contoso", Resource: assignedVM, Date: fmt.Sprintf("2026-02-%02d", d), Cost: 2.5})
	}
	file := consumptionFile(t, rows...)
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	fab := s.token(store.RolePartnerReader, "", "", "100001")
	s.push(operator, oneAssignment)
	if status, body := s.call("POST", "/v1/consumption", operator, file); status != 200 {
		t.Fatalf("POST /v1/consumption: %d %s", status, body)
	}
	s.push(operator, march)
	feb := s.table(fab, "/v1/tables/credited?month=2026-02")
	if feb.Current {
		t.Fatal("February is read as the present")
	}
	found := feb.find("resource", strings.ToLower(assignedVM))
	if len(found) != 1 || found[0]["acr"] != 25.0 {
		t.Errorf("February's credited table, read in March: %+v, want the resource with 25.00 of ACR", feb.Rows)
	}
	// The operator sees the file come in, on the day it was reported.
	var intake struct {
		Days []struct {
			Day                 string
			Events, Consumption int
		}
	}
	s.json("GET", "/v1/intake", operator, "", &intake)
	pushed := 0
	for _, d := range intake.Days {
		if d.Consumption != 0 && (d.Day != "2026-02-20" || d.Consumption != 10) {
			t.Errorf("intake: %+v", d)
		}
		pushed += d.Consumption
	}
	if pushed != 10 {
		t.Errorf("intake counts %d consumption records, want the file's 10", pushed)
	}
}

// TestManySmallPushes: costs pushed in many small files give the report
// that one file gives, and a month keeps no more segments than a push
// compacts down from.
func TestManySmallPushes(t *testing.T) {
	log, _ := fold.Order(attributiontest.RandomAzureLog(4, 400))
	var control, costs []*event.Event
	var lines bytes.Buffer
	last := map[[3]string]int{}
	for _, ev := range log {
		if ev.Type == event.AzureConsumption {
			// Each resource, day and meter once: the files come in no
			// order of their own.
			if _, err := strconv.ParseFloat(ev.Cost, 64); err == nil {
				k := [3]string{ev.Tenant + "\x00" + ev.Resource, ev.Date, ev.Meter}
				if i, ok := last[k]; ok {
					costs[i] = ev
					continue
				}
				last[k] = len(costs)
				costs = append(costs, ev)
			}
			continue
		}
		control = append(control, ev)
		lines.Write(ev.AppendJSON(nil))
		lines.WriteByte('\n')
	}
	st := sqliteStore(t)
	s := start(t, st, server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	s.push(operator, lines.String())
	const pushes = 40
	var pushed []*event.Event
	for k := range pushes {
		var rows []usage.Consumption
		for i := k; i < len(costs); i += pushes {
			c, _ := strconv.ParseFloat(costs[i].Cost, 64)
			rec := *costs[i]
			rec.Cost = strconv.FormatFloat(c, 'f', -1, 64)
			pushed = append(pushed, &rec)
			rows = append(rows, usage.Consumption{Tenant: rec.Tenant, Resource: rec.Resource, Date: rec.Date, Cost: c, Meter: rec.Meter})
		}
		if status, body := s.call("POST", "/v1/consumption", operator, consumptionFile(t, rows...)); status != 200 {
			t.Fatalf("push %d: %d %s", k, status, body)
		}
	}
	want := fold.Events(attribution.DefaultOptions(), append(control, pushed...))
	for _, month := range []string{"2026-01", "2026-02"} {
		if n, err := st.SegmentCount(context.Background(), month); err != nil || n > 16 {
			t.Errorf("%s: %d segments after %d pushes (%v)", month, n, pushes, err)
		}
		sameAzureReport(t, s, operator, want, month)
	}
}

// TestPushedFileAndEventAtOneInstant: a pushed file's record and a record
// of the log reported at the same instant, for the same resource, day and
// meter: the later in the log's order replaces the other, whichever came
// first, in the report and in pal on the service's /v1/log.
func TestPushedFileAndEventAtOneInstant(t *testing.T) {
	// Reported at the state's instant, as the file is.
	cost := func(c string) string {
		return `{"type":"azure.consumption","time":"2026-02-20T00:00:00Z","tenant":"contoso","resource":"` + assignedVM + `","date":"2026-02-05","cost":` + c + "}\n"
	}
	file := consumptionFile(t, usage.Consumption{Tenant: "contoso", Resource: assignedVM, Date: "2026-02-05", Cost: 1})
	for _, c := range []struct {
		name      string
		fileFirst bool
		acr       string
	}{{"the file, then the event", true, "2.00"}, {"the event, then the file", false, "1.00"}} {
		t.Run(c.name, func(t *testing.T) {
			s := start(t, sqliteStore(t), server.Config{})
			operator := s.token(store.RoleOperator, "", "", "")
			s.push(operator, oneAssignment)
			pushFile := func() {
				if status, body := s.call("POST", "/v1/consumption", operator, file); status != 200 {
					t.Fatalf("POST /v1/consumption: %d %s", status, body)
				}
			}
			if c.fileFirst {
				pushFile()
				s.push(operator, cost("2"))
			} else {
				s.push(operator, cost("2"))
				pushFile()
			}
			var rep struct {
				Resources []struct{ ACR json.Number }
			}
			_, body := s.call("GET", "/v1/reports/azure?month=2026-02", operator, "")
			if err := json.Unmarshal(body, &rep); err != nil || len(rep.Resources) != 1 || rep.Resources[0].ACR.String() != c.acr {
				t.Errorf("the report: %s, want an ACR of %s", body, c.acr)
			}
			exported := fold.Events(attribution.DefaultOptions(), s.exportedLog(operator))
			fromLog, err := exported.Azure().Report("2026-02")
			if err != nil {
				t.Fatal(err)
			}
			fromLogJSON, _ := json.Marshal(fromLog)
			if diff := jsonDiff(body, fromLogJSON); diff != "" {
				t.Errorf("pal on /v1/log differs from the service (-service +pal):\n%s", diff)
			}
		})
	}
}

// assignedVM is a resource on which oneAssignment recognises Fabrikam.
const assignedVM = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"

// oneAssignment is a log in which ann, linked to Fabrikam, is Contributor
// on subscription s1 of contoso from January on; its last record is of
// February 20th.
const oneAssignment = `{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}
{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"ann","kind":"guest"}
{"type":"pal.linked","time":"2026-01-01T00:00:00Z","tenant":"contoso","account":"ann","partner":"100011"}
{"type":"azure.role_assigned","time":"2026-01-01T00:00:00Z","tenant":"contoso","assignment":"a1","principal":"ann","principal_tenant":"contoso","role":"Contributor","scope":"/subscriptions/s1"}
{"type":"account.created","time":"2026-02-20T00:00:00Z","tenant":"contoso","account":"bob","kind":"guest"}
`

// consumptionFile writes rows as a Parquet consumption file.
func consumptionFile(t *testing.T, rows ...usage.Consumption) string {
	t.Helper()
	var file bytes.Buffer
	w := usage.NewConsumptionWriter(&file)
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return file.String()
}

// stallingWriter is a client that stops reading an answer once a line of
// the kind at came, until release is closed.
type stallingWriter struct {
	header  http.Header
	at      string
	stalled chan struct{}
	release chan struct{}
	once    bool
}

func (w *stallingWriter) Header() http.Header { return w.header }
func (w *stallingWriter) WriteHeader(int)     {}
func (w *stallingWriter) Write(b []byte) (int, error) {
	if !w.once && bytes.Contains(b, []byte(w.at)) {
		w.once = true
		close(w.stalled)
		<-w.release
	}
	return len(b), nil
}

// TestAnExportReadSlowlyHoldsNoWrite: a client that reads the consumption
// of /v1/log slowly holds up no write: the state is read for what it
// keeps of each month, and let go before the rows are written.
func TestAnExportReadSlowlyHoldsNoWrite(t *testing.T) {
	s := start(t, sqliteStore(t), server.Config{})
	operator := s.token(store.RoleOperator, "", "", "")
	var rows []usage.Consumption
	for i := range 5000 {
		rows = append(rows, usage.Consumption{Tenant: "t1", Resource: fmt.Sprintf("/subscriptions/7d1c2a4e-0000-4000-8000-000000000002/resourceGroups/app/providers/Microsoft.Compute/virtualMachines/vm%d", i),
			Date: "2026-01-05", Cost: 1.5, Meter: "standard"})
	}
	if status, body := s.call("POST", "/v1/consumption", operator, consumptionFile(t, rows...)); status != http.StatusOK {
		t.Fatalf("push: %d %s", status, body)
	}
	w := &stallingWriter{header: http.Header{}, at: event.AzureConsumption, stalled: make(chan struct{}), release: make(chan struct{})}
	req := httptest.NewRequest("GET", "/v1/log", nil)
	req.Header.Set("Authorization", "Bearer "+operator)
	exported := make(chan struct{})
	go func() {
		s.srv.Handler().ServeHTTP(w, req)
		close(exported)
	}()
	defer func() {
		close(w.release)
		<-exported
	}()
	select {
	case <-w.stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("the export never wrote the pushed consumption")
	}
	// Each write publishes one copy of the state and waits for the
	// readers of the other: two writes meet the export's copy.
	wrote := make(chan error, 1)
	go func() {
		for i := range 2 {
			line := fmt.Sprintf(`{"type":"account.created","time":"2026-01-01T00:00:00Z","tenant":"t1","account":"a%d","kind":"user"}`, i)
			ev, rf, err := event.NewReader(strings.NewReader(line)).Next()
			if err != nil || rf != nil {
				wrote <- fmt.Errorf("line %d: %v %v", i, err, rf)
				return
			}
			if accepted, _, _, err := s.srv.Ingest(context.Background(), []*event.Event{ev}); err != nil || accepted != 1 {
				wrote <- fmt.Errorf("write %d: %d accepted, %v", i, accepted, err)
				return
			}
		}
		wrote <- nil
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writes waited 10 s for an export read slowly")
	}
}
