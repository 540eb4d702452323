package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/palproject/pal/internal/demo"
	"github.com/palproject/pal/internal/metrics"
	"github.com/palproject/pal/internal/server"
	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/storetest"
	"github.com/palproject/pal/internal/testskip"
)

// chromium finds the browser: $PAL_TEST_CHROMIUM (CI sets it; the test
// fails when it is set and missing), else chromium on the PATH, else the
// test is skipped, saying why.
func chromium(t *testing.T) string {
	if p := os.Getenv("PAL_TEST_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("PAL_TEST_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testskip.Skip(t, "no Chromium: install Debian's chromium, or set PAL_TEST_CHROMIUM (bash .ci/run does)")
	return ""
}

type site struct {
	t      *testing.T
	url    string
	st     store.Store
	ctx    context.Context
	shots  string
	tokens map[string]string
	// handler is the service's, to load logs through.
	handler http.Handler
}

// push loads a log into the service, as the operator, in one batch.
func (s *site) push(log string) {
	s.t.Helper()
	req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(log))
	req.Header.Set("Authorization", "Bearer "+s.tokens["operator"])
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	if rec.Code != 200 || strings.Contains(rec.Body.String(), `"code"`) {
		s.t.Fatalf("load a log: %d %s", rec.Code, rec.Body)
	}
}

func newSite(t *testing.T) *site {
	var log bytes.Buffer
	demo.Write(&log, 1)
	// Bob removes his link at the end of the demo's last month: Fabrikam
	// gains the credit of expenses back.
	return newSiteOf(t, log.String(), `{"type":"pal.removed","time":"2026-03-31T22:00:00Z","tenant":"contoso","account":"bob@northwind.example"}`)
}

// wallClock is the time of the links the pages make: after the demo.
var wallClock = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// newSiteOf serves the UI on a real store loaded with logs, one batch
// each, and opens a browser.
func newSiteOf(t *testing.T, logs ...string) *site {
	return newSiteWith(t, server.Config{}, logs...)
}

// newSiteWith is newSiteOf, the service configured by cfg.
func newSiteWith(t *testing.T, cfg server.Config, logs ...string) *site {
	exe := chromium(t)
	st := storetest.Backends()[0].Fresh(t)(t)
	cfg.Store, cfg.Clock = st, func() time.Time { return wallClock }
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	s := &site{t: t, url: hs.URL, st: st, tokens: map[string]string{}}
	for name, tok := range map[string]store.Token{
		"operator": {Role: store.RoleOperator}, "fabrikam": {Role: store.RolePartnerReader, Org: "1000001"},
		"northwind": {Role: store.RolePartnerReader, Org: "2000001"}, "tailspin": {Role: store.RolePartnerReader, Org: "3000001"},
		"proseware": {Role: store.RolePartnerReader, Org: "4000001"}, "adatum": {Role: store.RoleTenantAdmin, Tenant: "adatum"},
		"alice": {Role: store.RoleAccount, Tenant: "contoso", Account: "alice@fabrikam.example"},
	} {
		if s.tokens[name], _, err = server.IssueToken(context.Background(), st, tok); err != nil {
			t.Fatal(err)
		}
	}
	s.handler = srv.Handler()
	for _, log := range logs {
		s.push(log)
	}

	s.shots = os.Getenv("PAL_TEST_OUTPUT")
	if s.shots == "" {
		s.shots = "testoutput"
	}
	if err := os.MkdirAll(s.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	profile := browserProfile(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(profile), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 1000))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	// Cleanups run last first: the browser is gone before its profile is
	// removed.
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	s.ctx = ctx
	// A script error, or anything the page's policy blocks, fails the
	// test: the pages must run as they are served.
	var mu sync.Mutex
	var problems []string
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, ev.ExceptionDetails.Error())
		case *cdplog.EventEntryAdded:
			if strings.Contains(ev.Entry.Text, "Content Security Policy") {
				problems = append(problems, ev.Entry.Text)
			}
		}
	})
	s.run(runtime.Enable(), cdplog.Enable())
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("the page failed: %s", p)
		}
	})
	return s
}

// press focuses the element sel and presses keys on it, as a keyboard
// would.
func (s *site) press(sel string, keys ...string) {
	s.t.Helper()
	s.run(chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Focus(sel, chromedp.ByQuery))
	for _, k := range keys {
		s.run(chromedp.KeyEvent(k))
	}
}

// tap touches the element sel with a finger at a fraction of its width
// and height.
func (s *site) tap(sel string, x, y float64) {
	s.t.Helper()
	s.touch(sel, x, y)()
}

// touch puts a finger on the element sel, at the fractions x and y of its
// box, and returns what lifts it.
func (s *site) touch(sel string, x, y float64) (lift func()) {
	s.t.Helper()
	var box []float64
	s.run(chromedp.Evaluate(fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`, sel), &box))
	at := []*input.TouchPoint{{X: box[0] + x*box[2], Y: box[1] + y*box[3]}}
	s.run(input.DispatchTouchEvent(input.TouchStart, at))
	return func() { s.run(input.DispatchTouchEvent(input.TouchEnd, []*input.TouchPoint{})) }
}

// waitTip waits until the tooltip of the chart id holds want, and returns
// its text.
func (s *site) waitTip(id, want string) string {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.tip(id)
		if strings.Contains(got, want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chart waits until the chart sel is drawn.
func (s *site) chart(sel string) {
	s.t.Helper()
	s.run(chromedp.WaitVisible(sel+" canvas", chromedp.ByQuery))
}

// tip returns the text of the tooltip of the chart id, "" when it is
// hidden.
func (s *site) tip(id string) string {
	s.t.Helper()
	var out string
	s.run(chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.getElementById(%q); return e && !e.hidden ? e.innerText : ""; })()`, id+"-tip"), &out))
	return out
}

func (s *site) run(actions ...chromedp.Action) {
	s.t.Helper()
	if err := chromedp.Run(s.ctx, actions...); err != nil {
		s.t.Fatal(err)
	}
}

// login logs in through the form, as a person would.
func (s *site) login(who string) {
	s.t.Helper()
	s.run(chromedp.Navigate(s.url+"/#/login"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", s.tokens[who], chromedp.ByID),
		chromedp.Click("#login-button", chromedp.ByID),
		chromedp.WaitVisible("#title", chromedp.ByID))
}

// text waits for the element sel and returns its text.
func (s *site) text(sel string) string {
	s.t.Helper()
	s.run(chromedp.WaitVisible(sel, chromedp.ByQuery))
	return s.read(sel)
}

// read returns the text of the element sel as the page holds it now, ""
// when there is none. It asks the page afresh, by script: a page that
// renders again replaces its elements, which a node held from before
// would not follow.
func (s *site) read(sel string) string {
	s.t.Helper()
	var out string
	s.run(chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : ""; })()`, sel), &out))
	return out
}

func (s *site) screenshot(name string) {
	s.t.Helper()
	// A page shows words, never the names of script objects.
	body := s.text("body")
	lines := "\n" + body + "\n"
	if strings.Contains(body, "[object") || strings.Contains(body, "undefined") || strings.Contains(lines, "\nnull\n") {
		s.t.Errorf("%s shows script values:\n%s", name, body)
	}
	var png []byte
	s.run(chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(s.shots, name), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// pickMonth picks a month in the page's month picker, as a person would.
func (s *site) pickMonth(month string) {
	s.t.Helper()
	s.pick("#month", month)
}

// pick chooses an option of the select sel, as a person would.
func (s *site) pick(sel, value string) {
	s.t.Helper()
	s.run(chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.SetValue(sel, value, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).dispatchEvent(new Event("change"))`, sel), nil))
}

// waitText waits until the element sel holds want, and returns its text.
func (s *site) waitText(sel, want string) string {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := s.read(sel)
		if strings.Contains(got, want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestScoreOnTheConfiguredMaxima: the dashboard draws the capability score
// on the maxima the service scores with (--metrics-config), not on the
// published ones.
func TestScoreOnTheConfiguredMaxima(t *testing.T) {
	cfg := metrics.DefaultConfig()
	cfg.MaxUsageGrowth = 10
	var log bytes.Buffer
	demo.Write(&log, 1)
	s := newSiteWith(t, server.Config{Metrics: cfg}, log.String())
	s.login("fabrikam")
	s.waitText("#title", "Fabrikam Consulting")
	if got := s.text("#card-total .value"); !strings.HasSuffix(got, " / 80") {
		t.Errorf("capability score %q, want it out of 80, the configured maxima's sum", got)
	}
	var max string
	s.run(chromedp.AttributeValue(`#score [aria-labelledby="points-usage_growth"]`, "aria-valuemax", &max, nil, chromedp.ByQuery))
	if max != "10" {
		t.Errorf("the usage growth meter goes up to %q, want the configured 10", max)
	}
	if got := s.read("#score"); !strings.Contains(got, "/ 10") {
		t.Errorf("the points of usage growth are not said out of 10:\n%s", got)
	}
}

func TestPartnerDashboardAndTimeline(t *testing.T) {
	s := newSite(t)
	s.login("fabrikam")
	if got := s.waitText("#title", "Fabrikam Consulting"); !strings.Contains(got, "Fabrikam Consulting: credit in 2026-03") {
		t.Errorf("title %q", got)
	}
	if got := s.text("#card-customers .value"); got != "3" {
		t.Errorf("customers %q, want 3", got)
	}
	if got := s.text("#card-total .value"); got != "82 / 100" {
		t.Errorf("capability score %q, want 82 / 100", got)
	}
	resources := s.text("#resources")
	for _, want := range []string{"onboarding", "inventory", "contoso-ci"} {
		if !strings.Contains(resources, want) {
			t.Errorf("credited resources lack %s:\n%s", want, resources)
		}
	}
	// Nothing another partner is credited for.
	if strings.Contains(resources, "field-service") {
		t.Errorf("Fabrikam's dashboard lists field-service, credited to Northwind:\n%s", resources)
	}
	if got := s.text("#changes"); !strings.Contains(got, "expenses") || !strings.Contains(got, "gained from 2000011") || !strings.Contains(got, "link removed") {
		t.Errorf("changes of the last 30 days:\n%s", got)
	}
	// MAU and MCV each have a chart, split by workload, with its unit; the
	// arrow keys read them month by month, and their numbers add up to
	// the month's.
	s.chart("#chart-mcv")
	if got := s.text("#chart-mau-figure figcaption"); !strings.Contains(got, "Monthly active users by workload") || !strings.Contains(got, "(users a month, April 2025 to March 2026)") {
		t.Errorf("the MAU chart's title: %q", got)
	}
	if got := s.text("#chart-mau-key"); !strings.Contains(got, "Power Apps") || !strings.Contains(got, "Power BI") || strings.Contains(got, "Customer Insights") {
		t.Errorf("the MAU chart's key (profiles are not users): %q", got)
	}
	if got := s.text("#chart-mcv-key"); !strings.Contains(got, "Customer Insights") || !strings.Contains(got, "Power Automate") {
		t.Errorf("the MCV chart's key: %q", got)
	}
	s.press("#chart-mcv", kb.End)
	if got := s.tip("chart-mcv"); !strings.Contains(got, "March 2026") || !strings.Contains(got, "Customer Insights: MCV 6,600") || !strings.Contains(got, "In all: MCV 53,200") {
		t.Errorf("the MCV chart's tooltip in March, by keyboard: %q", got)
	}
	s.press("#chart-mcv", kb.ArrowLeft)
	if got := s.tip("chart-mcv"); !strings.Contains(got, "February 2026") || !strings.Contains(got, "In all: MCV 55,500") {
		t.Errorf("the MCV chart's tooltip in February, by keyboard: %q", got)
	}
	if got := s.read("#chart-mcv-live"); !strings.Contains(got, "February 2026") {
		t.Errorf("the keyboard's move is not read out: %q", got)
	}
	var lastRow string
	s.run(chromedp.Evaluate(`document.querySelector("#chart-mau-figure details tbody tr:last-child").textContent`, &lastRow))
	if !strings.Contains(lastRow, "March 2026") || !strings.Contains(lastRow, "233 users") {
		t.Errorf("the MAU chart's numbers in March: %q", lastRow)
	}
	// Fabrikam earns Azure consumed revenue: its chart is in dollars.
	s.chart("#chart-azure")
	if got := s.text("#chart-azure-figure figcaption"); !strings.Contains(got, "(USD a month)") {
		t.Errorf("the Azure chart's title: %q", got)
	}
	if got := s.text("#chart-azure-key"); !strings.Contains(got, "ACR") || !strings.Contains(got, "PEC-eligible cost") || !strings.Contains(got, "Partner earned credit") {
		t.Errorf("the Azure chart's key: %q", got)
	}
	// Every row is counted, and every row downloads.
	if got := s.text("#resources-total"); !strings.Contains(got, "resources, as of now, 2026-03-31 23:00 UTC") {
		t.Errorf("the credited resources' total: %q", got)
	}
	if got := s.text("#download-resources"); !strings.HasPrefix(got, "Download all ") || !strings.HasSuffix(got, " rows as CSV") {
		t.Errorf("the download of credited resources: %q", got)
	}
	// Where credit is missing, and why: gina left and her account is
	// disabled.
	if got := s.text("#missing"); !strings.Contains(got, "timesheets") || !strings.Contains(got, "gina@fabrikam.example is disabled") {
		t.Errorf("where credit is missing:\n%s", got)
	}
	// Credit at risk, by the account it hangs on: fabrikam-ops alone
	// carries four Azure resources Fabrikam manages through Lighthouse,
	// three of them named and the fourth a click away.
	if got := s.text("#at-risk"); !strings.Contains(got, "Onboarding") || !strings.Contains(got, "fabrikam-ops") || !strings.Contains(got, "and 1 more") {
		t.Errorf("credit at risk:\n%s", got)
	}
	// Where its links are, in every tenant, with what each carries.
	if got := s.text("#links"); !strings.Contains(got, "fabrikam-deployer") || !strings.Contains(got, "fabrikam-hq") || strings.Contains(got, "bob@northwind.example") {
		t.Errorf("Fabrikam's links:\n%s", got)
	}
	s.screenshot("partner-dashboard.png")

	// Another month: February's score and cards.
	s.pickMonth("2026-02")
	if got := s.waitText("#title", "2026-02"); !strings.Contains(got, "credit in 2026-02") {
		t.Errorf("after picking February: %q", got)
	}
	s.run(chromedp.Navigate(s.url + "/#/partner"))
	s.waitText("#title", "2026-03")

	// Azure: Fabrikam's consumed revenue at fourthcoffee, by subscription.
	if got := s.text("#azure"); !strings.Contains(got, "7d1c2a4e-0000-4000-8000-000000000001") || !strings.Contains(got, "7d1c2a4e-0000-4000-8000-000000000002") {
		t.Errorf("Azure by subscription:\n%s", got)
	}
	if got := s.text("#card-pec-credit .value"); !strings.HasPrefix(got, "USD ") || got == "USD 0.00" {
		t.Errorf("partner earned credit %q", got)
	}
	// The Azure resource page: a lane for Fabrikam, with the Lighthouse
	// assignment behind it, and one for Northwind's PIM hours (under policy
	// all, Fabrikam is credited beside it then, so it may see why).
	sql := "/subscriptions/7d1c2a4e-0000-4000-8000-000000000001/resourcegroups/data/providers/microsoft.sql/servers/sql-main"
	s.run(chromedp.Click(`#resources a[href="#/resource/fourthcoffee/`+url.PathEscape(sql)+`"]`, chromedp.ByQuery), chromedp.WaitVisible("#timeline", chromedp.ByID))
	intervals := s.text("#intervals")
	for _, want := range []string{"1000011", "Contributor on /providers/microsoft.management/managementgroups/fourthcoffee-platform (lighthouse-fabrikam, fabrikam-ops)",
		"2026-02-10 09:00\t2026-02-10 14:00\t2000011", "Owner on /subscriptions/7d1c2a4e-0000-4000-8000-000000000001 (an account of partner 2000011 (Northwind Partners))"} {
		if !strings.Contains(intervals, want) {
			t.Errorf("the Azure intervals lack %q:\n%s", want, intervals)
		}
	}
	// A lane per partner: Fabrikam's, then Northwind's, read by keyboard;
	// Enter at the end explains the last instant.
	s.chart("#timeline")
	s.press("#timeline", kb.Home, kb.ArrowDown)
	if got := s.tip("timeline"); !strings.Contains(got, "2000011 (Northwind Partners)") || !strings.Contains(got, "nothing") {
		t.Errorf("the Azure timeline's second lane at its start: %q", got)
	}
	for range 4 {
		if strings.Contains(s.tip("timeline"), "share") {
			break
		}
		s.press("#timeline", kb.ArrowRight)
	}
	if got := s.tip("timeline"); !strings.Contains(got, "2026-02-10") || !strings.Contains(got, "2000011 (Northwind Partners), share") {
		t.Errorf("Northwind's PIM hours on the Azure timeline: %q", got)
	}
	s.press("#timeline", kb.End, kb.Enter)
	// Northwind's eligible Owner shows by its partner ID, not by its
	// consultant nor its assignment's name.
	if got := s.waitText("#explanation", "lighthouse-fabrikam"); !strings.Contains(got, "an account of partner 2000011 (Northwind Partners)") ||
		!strings.Contains(got, "not activated") || strings.Contains(got, "ivan") {
		t.Errorf("the Azure explanation at the end: %q", got)
	}
	s.screenshot("azure-resource.png")
	s.run(chromedp.Navigate(s.url + "/#/partner"))

	// The resource page: a band per credited partner; a click explains.
	s.run(chromedp.Click(`#resources a[href="#/resource/adatum/onboarding"]`, chromedp.ByQuery), chromedp.WaitVisible("#timeline", chromedp.ByID))
	if got := s.text("#intervals"); !strings.Contains(got, "3000011") || !strings.Contains(got, "1000012") {
		t.Errorf("onboarding's intervals lack Tailspin and Fabrikam:\n%s", got)
	}
	// The timeline: its first change is Tailspin's credit on 2025-10-01,
	// read by keyboard, then Fabrikam's again.
	s.chart("#timeline")
	s.press("#timeline", kb.Home, kb.ArrowRight)
	if got := s.tip("timeline"); !strings.Contains(got, "2025-10-01") || !strings.Contains(got, "Credited: 3000011 (Tailspin Support), through an account of partner 3000011") {
		t.Errorf("the timeline's first change, by keyboard: %q", got)
	}
	s.press("#timeline", kb.ArrowRight)
	if got := s.tip("timeline"); !strings.Contains(got, "Credited: 1000012 (Fabrikam Consulting), through frank@fabrikam.example") {
		t.Errorf("the timeline's second change, by keyboard: %q", got)
	}
	s.press("#timeline", kb.ArrowDown)
	if got := s.tip("timeline"); !strings.Contains(got, "Environment") || !strings.Contains(got, "production") {
		t.Errorf("the timeline's environment lane, by keyboard: %q", got)
	}
	// Fabrikam sees every interval, Tailspin's consultant as an account
	// of partner 3000011 only, and the customer's accounts not at all.
	if got := s.text("#intervals"); !strings.Contains(got, "an account of partner 3000011 (Tailspin Support) (co-owner, 3000011)") ||
		!strings.Contains(got, "production") || strings.Contains(got, "hana") || strings.Contains(got, "not yours to see") {
		t.Errorf("the intervals:\n%s", got)
	}
	// The interval Fabrikam lost is explained: who won, and when.
	s.run(chromedp.Click("#intervals tbody tr:nth-child(2) button.why", chromedp.ByQuery))
	if got := s.waitText("#verdict", "3000011"); !strings.Contains(got, "Credited to partner 3000011 (Tailspin Support): its account, a co-owner, associated on 2025-10-01") ||
		!strings.Contains(got, "Your account frank@fabrikam.example (the owner) associated on 2025-04-01, earlier") || strings.Contains(got, "hana") {
		t.Errorf("the explanation of the interval Fabrikam lost: %q", got)
	}
	// Enter at the end: after frank's edit, Fabrikam is credited.
	s.press("#timeline", kb.End, kb.Enter)
	if got := s.waitText("#verdict", "your partner ID"); !strings.Contains(got, "Credited to your partner ID 1000012, through frank@fabrikam.example") {
		t.Errorf("the explanation at the end of the timeline: %q", got)
	}
	// A finger on the timeline shows its tooltip, and explains the instant
	// it taps: early on, Fabrikam is credited.
	// A finger on the plot, once it is drawn (the top lane, early on),
	// shows the tooltip while it rests there; lifted, it has tapped.
	s.chart("#timeline")
	lift := s.touch("#timeline .u-over", 0.1, 0.15)
	if got := s.waitTip("timeline", "Credited"); !strings.Contains(got, "Credited: 1000012 (Fabrikam Consulting)") {
		t.Errorf("the tooltip under a finger: %q", got)
	}
	lift()
	if got := s.waitText("#explanation", "2025-0"); !strings.Contains(got, "Why, at 2025-0") {
		t.Errorf("the explanation of a tap early on: %q", got)
	}
	s.screenshot("resource-timeline.png")

	// Another partner's reader is refused the page, by the server.
	s.login("northwind")
	// Northwind's own dashboard shows nothing of Fabrikam's: not its
	// resources, not its missing credit, not its Azure revenue.
	s.waitText("#title", "Northwind Partners")
	body := s.text("main")
	for _, theirs := range []string{"onboarding", "inventory", "timesheets", "gina@fabrikam.example", "7d1c2a4e-0000-4000-8000-000000000002"} {
		if strings.Contains(body, theirs) {
			t.Errorf("Northwind's dashboard shows Fabrikam's %s", theirs)
		}
	}
	// A page of a partner's operator view is the operator's: a reader's
	// #/partner/ORG is its own dashboard, whatever ORG says.
	s.run(chromedp.Navigate(s.url+"/#/partner/1000001/2026-03"), chromedp.Reload())
	if got := s.waitText("#title", "Northwind"); !strings.Contains(got, "Northwind Partners") {
		t.Errorf("Northwind asking for Fabrikam's dashboard sees %q", got)
	}
	s.run(chromedp.Navigate(s.url+"/#/resource/adatum/onboarding"), chromedp.Reload())
	if got := s.waitText("#error", "partner reader"); !strings.Contains(got, "is or was credited for") {
		t.Errorf("Northwind on Fabrikam's resource: %q", got)
	}
}

func TestTenantPageAndWhatIf(t *testing.T) {
	s := newSite(t)
	s.login("adatum")
	if got := s.waitText("#title", "adatum"); got != "Tenant adatum" {
		t.Errorf("title %q", got)
	}
	resources := s.text("#resources")
	if !strings.Contains(resources, "onboarding") || !strings.Contains(resources, "approvals") || strings.Contains(resources, "expenses") {
		t.Errorf("adatum's resources:\n%s", resources)
	}
	links := s.text("#links")
	if !strings.Contains(links, "frank@fabrikam.example") || !strings.Contains(links, "hana@tailspin.example") || strings.Contains(links, "alice") {
		t.Errorf("adatum's links:\n%s", links)
	}
	s.screenshot("tenant.png")
	// October 2025: Tailspin's hana was made co-owner of onboarding
	// without ever editing it, and took the credit: every section shows
	// October, and the credit change is flagged, and names her.
	s.pickMonth("2025-10")
	if got := s.waitText("#frame", "October 2025"); !strings.Contains(got, "as of the end of October 2025, 2025-10-31 23:59 UTC") {
		t.Errorf("the tenant page's frame: %q", got)
	}
	if got := s.waitText("#credit-changes", "onboarding"); !strings.Contains(got, "gained by a role alone: no edit or publish before") ||
		!strings.Contains(got, "co-owner added") || !strings.Contains(got, "3000011 (Tailspin Support) through hana@tailspin.example") {
		t.Errorf("adatum's credit changes in October 2025:\n%s", got)
	}
	if got := s.waitText("#resources", "3000011"); !strings.Contains(got, "3000011 (Tailspin Support)") {
		t.Errorf("adatum's resources at the end of October 2025:\n%s", got)
	}

	// The what-if offers, for each resource, only the changes that count
	// for its kind: a flow's co-owners are never credited.
	s.run(chromedp.Click("#whatif-link", chromedp.ByID), chromedp.WaitVisible("#wi-resource", chromedp.ByID))
	offered := func(resource string) []string {
		s.pick("#wi-resource", resource)
		var got []string
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.run(chromedp.Evaluate(`[...document.querySelectorAll("#wi-action option")].map((o) => o.value)`, &got))
			if (strings.Contains(resource, "approvals") == !slices.Contains(got, "add-coowner")) || time.Now().After(deadline) {
				return got
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := offered("approvals"); slices.Contains(got, "add-coowner") || slices.Contains(got, "remove-coowner") || !slices.Contains(got, "owner") {
		t.Errorf("the changes offered for a flow: %q", got)
	}
	if got := offered("onboarding"); !slices.Contains(got, "add-coowner") || !slices.Contains(got, "remove-coowner") || !slices.Contains(got, "link") {
		t.Errorf("the changes offered for a canvas app: %q", got)
	}
	// The form checks its fields before it sends anything: a partner ID
	// of two digits, and a link for an account that could not be credited.
	s.pick("#wi-action", "link")
	s.run(chromedp.SendKeys("#wi-account", "nobody@adatum.example", chromedp.ByID), chromedp.SendKeys("#wi-partner", "12", chromedp.ByID),
		chromedp.Click("#run-whatif", chromedp.ByID))
	if got := s.waitText("#whatif-problems", "cannot be tried"); !strings.Contains(got, "nobody@adatum.example is not one of the accounts that could be credited of Onboarding") ||
		!strings.Contains(got, "A partner ID is 6 to 10 digits.") {
		t.Errorf("the form's checks: %q", got)
	}
	var invalid int
	s.run(chromedp.Evaluate(`document.querySelectorAll("#whatif-form [aria-invalid=true]").length`, &invalid))
	if invalid != 2 || s.read("#whatif-result") != "" {
		t.Errorf("%d fields marked, and a result %q, after a change that does not fit", invalid, s.read("#whatif-result"))
	}
	// One verdict: hana made owner of onboarding takes its credit, and its
	// users and MCV, to Tailspin.
	s.pick("#wi-action", "owner")
	s.run(chromedp.SetValue("#wi-account", "hana@tailspin.example", chromedp.ByID), chromedp.Click("#run-whatif", chromedp.ByID))
	if got := s.waitText("#verdict-headline", "would"); got != "Onboarding would move from partner 1000012 (Fabrikam Consulting) to partner 3000011 (Tailspin Support)." {
		t.Errorf("the what-if's verdict: %q", got)
	}
	if got := s.text("#verdict-reason"); !strings.Contains(got, "through hana@tailspin.example: its account, the owner") {
		t.Errorf("the verdict's reason: %q", got)
	}
	if got := s.text("#verdict-moves"); !strings.HasPrefix(got, "MAU ") || !strings.Contains(got, " and MCV ") || !strings.Contains(got, "a month move with it: what Onboarding carried in March 2026") {
		t.Errorf("what moves: %q", got)
	}
	// Experts still write events by hand; a refused line says why in
	// words, its code after them.
	event := `{"type":"resource.activity","time":"2026-04-02T00:00:00Z","tenant":"adatum","resource":"onboarding","account":"hana@tailspin.example","action":"edit"}
{"type":"resource.coowner_added","time":"2026-04-03T00:00:00Z","tenant":"adatum","resource":"nothing-here","account":"hana@tailspin.example"}`
	s.run(chromedp.Click("details.expert summary", chromedp.ByQuery), chromedp.SetValue("#events", event, chromedp.ByID), chromedp.Click("#run-events", chromedp.ByID))
	if got := s.waitText("#whatif-result", "3000011"); !strings.Contains(got, "Onboarding would move from partner 1000012 (Fabrikam Consulting) to partner 3000011 (Tailspin Support).") ||
		!strings.Contains(got, "Line 2: ") || !strings.Contains(got, "(unknown_tenant_object)") {
		t.Errorf("what-if of hand-written events:\n%s", got)
	}
	s.screenshot("what-if.png")
	// Nothing was written: the tenant page still credits Fabrikam.
	s.run(chromedp.Navigate(s.url+"/#/tenant"), chromedp.Reload())
	if got := s.waitText("#resources", "onboarding"); !strings.Contains(got, "onboarding") || strings.Contains(got, "3000011") {
		t.Errorf("after the what-if the tenant page shows:\n%s", got)
	}
}

// TestOperatorAndAccount logs in as the two other roles: the operator sees
// every tenant's resources, an account its own link.
func TestOperatorAndAccount(t *testing.T) {
	s := newSite(t)
	// The operator's programme view: every organisation month by month,
	// its score, what comes in; a partner's dashboard a click away.
	s.login("operator")
	if got := s.waitText("#title", "programme"); got != "The programme" {
		t.Errorf("operator's title %q", got)
	}
	programme := s.text("#programme")
	for _, want := range []string{"Fabrikam Consulting (1000001)", "Northwind Partners (2000001)", "82 / 100"} {
		if !strings.Contains(programme, want) {
			t.Errorf("the programme lacks %q:\n%s", want, programme)
		}
	}
	// Who fell most from February: Fabrikam's MCV, and Tailspin's, to
	// nothing; no one's ACR.
	if got := s.text("#fell-mcv"); !strings.Contains(got, "Fabrikam Consulting (1000001): MCV 55,500 → 53,200, down 2,300 (4%)") ||
		!strings.Contains(got, "Tailspin Support (3000001): MCV 2,000 → 0, down 2,000 (100%)") || strings.Contains(got, "Northwind") {
		t.Errorf("whose MCV fell most:\n%s", got)
	}
	if got := s.text("#fell-acr"); got != "No organisation's ACR fell from February 2026 to March 2026." {
		t.Errorf("whose ACR fell most: %q", got)
	}
	// What comes in: a bar a day, the last day's read by keyboard.
	s.chart("#intake")
	s.press("#intake", kb.End)
	if got := s.tip("intake"); !strings.Contains(got, "2026-03-31") || !strings.Contains(got, "Events: ") {
		t.Errorf("what comes in, on its last day: %q", got)
	}
	s.screenshot("programme.png")
	s.run(chromedp.Click(`#programme a[href="#/partner/2000001/2026-03"]`, chromedp.ByQuery))
	if got := s.waitText("#title", "Northwind"); got != "Northwind Partners: credit in 2026-03" {
		t.Errorf("the operator on Northwind's dashboard: %q", got)
	}
	if got := s.text("#resources"); !strings.Contains(got, "field-service") || strings.Contains(got, "onboarding") {
		t.Errorf("Northwind's credited resources, seen by the operator:\n%s", got)
	}
	s.run(chromedp.Navigate(s.url + "/#/tenant"))
	s.waitText("#title", "All tenants")
	resources := s.text("#resources")
	for _, want := range []string{"adatum", "contoso", "litware", "woodgrove"} {
		if !strings.Contains(resources, want) {
			t.Errorf("the operator's resources lack %s", want)
		}
	}
	s.screenshot("operator.png")
	// An account links, changes and removes its own link; a global ID is
	// refused with the location IDs to use.
	s.login("alice")
	if got := s.waitText("#link-status", "linked to"); !strings.Contains(got, "linked to partner ID 1000011 (Fabrikam Consulting)") {
		t.Errorf("the account's link: %q", got)
	}
	if got := s.text("#my-credit"); !strings.Contains(got, "expenses") || !strings.Contains(got, "contoso-ci") {
		t.Errorf("the resources alice's link carries:\n%s", got)
	}
	s.screenshot("account.png")
	// Northwind's bob links again: as co-owner of expenses, his link is
	// later than alice's, and outranks hers. She reads where, by partner
	// ID and organisation, never his name.
	s.push(`{"type":"pal.linked","time":"2026-03-31T23:00:00Z","tenant":"contoso","account":"bob@northwind.example","partner":"2000011"}`)
	s.run(chromedp.Reload())
	if got := s.waitText("#outranked", "Expenses"); !strings.Contains(got, "Expenses (expenses)") || !strings.Contains(got, "2000011 (Northwind Partners)") ||
		!strings.Contains(got, "later than yours (the owner, on 2025-01-06)") || strings.Contains(got, "bob") {
		t.Errorf("where another partner outranks alice:\n%s", got)
	}
	change := func(id string) {
		s.run(chromedp.SetValue("#partner-id", id, chromedp.ByID), chromedp.Click("#link-change", chromedp.ByID))
	}
	// A partner ID is checked before it is sent; the service's refusal of
	// a global ID says why in words, its code after them.
	change("12")
	if got := s.waitText("#link-error", "not one"); got != "The partner ID is not one: write 6 to 10 digits (invalid_partner_id)" {
		t.Errorf("a partner ID of two digits: %q", got)
	}
	if got := s.text("#partner-id-error"); !strings.Contains(got, "6 to 10 digits") {
		t.Errorf("the field's error: %q", got)
	}
	change("1000001")
	if got := s.waitText("#link-error", "global ID"); got != "1000001 is the global ID of organisation Fabrikam Consulting (1000001); link one of its location IDs instead: 1000011, 1000012 (global_partner_id)" {
		t.Errorf("a global ID: %q", got)
	}
	change("1000012")
	if got := s.waitText("#link-status", "1000012"); !strings.Contains(got, "linked to partner ID 1000012") {
		t.Errorf("after the change: %q", got)
	}
	// A link made now is later than bob's: nothing outranks it.
	if got := s.text("#outranked"); !strings.Contains(got, "Nowhere today") {
		t.Errorf("after alice's change, she is outranked:\n%s", got)
	}
	// Removing the link asks first; keeping it changes nothing.
	s.run(chromedp.Click("#link-remove", chromedp.ByID))
	if got := s.waitText("#confirm-remove[open]", "Remove your link"); !strings.Contains(got, "Remove your link to partner ID 1000012?") {
		t.Errorf("the confirmation: %q", got)
	}
	if t.Failed() {
		return
	}
	s.run(chromedp.Click("#confirm-remove-no", chromedp.ByID), chromedp.WaitNotVisible("#confirm-remove", chromedp.ByID))
	if got := s.text("#link-status"); !strings.Contains(got, "linked to partner ID 1000012") {
		t.Errorf("after keeping the link: %q", got)
	}
	s.run(chromedp.Click("#link-remove", chromedp.ByID), chromedp.WaitVisible("#confirm-remove-yes", chromedp.ByID), chromedp.Click("#confirm-remove-yes", chromedp.ByID))
	if got := s.waitText("#link-status", "no partner link"); !strings.Contains(got, "holds no partner link") {
		t.Errorf("after the removal: %q", got)
	}
	if got := s.text("#my-credit"); !strings.Contains(got, "None today") {
		t.Errorf("the credit without a link: %q", got)
	}
	s.run(chromedp.SetValue("#partner-id", "1000011", chromedp.ByID), chromedp.Click("#link-create", chromedp.ByID))
	if got := s.waitText("#link-status", "1000011"); !strings.Contains(got, "linked to partner ID 1000011") {
		t.Errorf("after linking again: %q", got)
	}
	s.screenshot("account-linked.png")
}

// browserProfile makes a directory for the browser's profile, removed at
// the end of the test. Chromium's helper processes outlive the browser by
// a moment and may still write to it then, so its removal is tried again
// for a few seconds before the test fails for it.
func browserProfile(t *testing.T) string {
	dir, err := os.MkdirTemp("", "pal-web-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("remove the browser's profile: %v", err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	return dir
}
