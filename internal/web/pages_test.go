package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/palproject/pal/internal/attribution/attributiontest"
	"github.com/palproject/pal/internal/demo"
)

// open goes to a page of the site and waits until it has rendered: the
// page before is cleared first, so that its title is not taken for the
// new one's.
func (s *site) open(path string) {
	s.t.Helper()
	var here string
	s.run(chromedp.Location(&here), chromedp.Evaluate(`document.getElementById("main")?.replaceChildren()`, nil))
	if here == s.url+path {
		s.run(chromedp.Reload())
	} else {
		s.run(chromedp.Navigate(s.url + path))
	}
	s.run(chromedp.WaitVisible("#title, #error", chromedp.ByQuery))
	if got := s.read("#error"); got != "" {
		s.t.Errorf("%s: %s", path, got)
	}
}

// settled waits until every table of the page has loaded.
func (s *site) settled() {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var loading bool
		s.run(chromedp.Evaluate(`document.body.innerText.includes("Loading…")`, &loading))
		if !loading || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAMonthFarInThePast: picking October 2025 on Fabrikam's dashboard
// changes every section to October: each says so, the credit lost to
// Tailspin on the 1st shows among the changes and the missing credit,
// gina's account is not yet disabled, and the cards are October's.
func TestAMonthFarInThePast(t *testing.T) {
	s := newSite(t)
	s.login("fabrikam")
	s.waitText("#title", "2026-03")
	s.settled()
	march := map[string]string{}
	for _, id := range []string{"#card-mcv .value", "#card-resources .value", "#missing", "#changes", "#links", "#resources"} {
		march[id] = s.read(id)
	}
	s.pickMonth("2025-10")
	s.waitText("#title", "credit in 2025-10")
	s.settled()
	if got := s.text("#frame"); got != "Every section shows October 2025 as of the end of October 2025, 2025-10-31 23:59 UTC." {
		t.Errorf("the frame: %q", got)
	}
	for _, id := range []string{"#changes-total", "#missing-total", "#at-risk-total", "#links-total", "#resources-total"} {
		if got := s.text(id); !strings.HasSuffix(got, "as of the end of October 2025, 2025-10-31 23:59 UTC.") {
			t.Errorf("%s: %q", id, got)
		}
	}
	for id, was := range march {
		if got := s.read(id); got == was {
			t.Errorf("%s is the same in October as in March: %q", id, got)
		}
	}
	if got := s.text("#changes"); !strings.Contains(got, "2025-10-01 09:00 UTC") || !strings.Contains(got, "lost to 3000011 (Tailspin Support)") {
		t.Errorf("October's changes:\n%s", got)
	}
	if got := s.text("#missing"); !strings.Contains(got, "Onboarding") || !strings.Contains(got, "partner 3000011 (Tailspin Support) associated later, on 2025-10-01") ||
		!strings.Contains(got, "MCV 8,200") || strings.Contains(got, "disabled") {
		t.Errorf("October's missing credit:\n%s", got)
	}
	if got := s.text("#links"); strings.Contains(got, "disabled") {
		t.Errorf("October's links show a disabled account:\n%s", got)
	}
	if got := s.text("#resources"); strings.Contains(got, "Onboarding") {
		t.Errorf("October's credited resources list onboarding:\n%s", got)
	}
	s.screenshot("partner-dashboard-2025-10.png")

	// The picker offers every month of the log, and says which are empty;
	// after a link made at the wall clock, the dashboard still opens on
	// the latest month with data.
	var options []string
	s.run(chromedp.Evaluate(`[...document.querySelectorAll("#month option")].map((o) => o.textContent)`, &options))
	if len(options) != 15 || options[0] != "2026-03 (now)" || options[14] != "2025-01" {
		t.Errorf("the picker: %q", options)
	}
	s.login("alice")
	s.waitText("#link-status", "linked to")
	s.run(chromedp.SetValue("#partner-id", "1000012", chromedp.ByID), chromedp.Click("#link-change", chromedp.ByID))
	s.waitText("#link-status", "1000012")
	s.login("fabrikam")
	if got := s.waitText("#title", "2026-03"); got != "Fabrikam Consulting: credit in 2026-03" {
		t.Errorf("after a link at the wall clock, the dashboard opens on %q", got)
	}
	s.run(chromedp.Evaluate(`[...document.querySelectorAll("#month option")].map((o) => o.textContent)`, &options))
	if len(options) != 24 || options[0] != "2026-12 (now) (no data)" || !slices.Contains(options, "2026-03") || options[23] != "2025-01" {
		t.Errorf("the picker after the link: %q", options)
	}
	s.pickMonth("2026-07")
	if got := s.waitText("#empty-month", "empty"); !strings.Contains(got, "in July 2026: the month is empty") {
		t.Errorf("an empty month: %q", got)
	}
}

// TestEveryRowOnThePage: a partner with 1,740 credited resources sees the
// total, pages through them, sorts and filters them on the server.
func TestEveryRowOnThePage(t *testing.T) {
	s := newSiteOf(t, attributiontest.ManyApps(1740, 12))
	s.login("proseware")
	s.waitText("#title", "Proseware")
	if got := s.waitText("#resources-total", "1,740"); got != "1,740 resources, as of now, 2026-01-10 00:00 UTC (the latest event)." {
		t.Errorf("the total: %q", got)
	}
	if got := s.text("#download-resources"); got != "Download all 1,740 rows as CSV" {
		t.Errorf("the download: %q", got)
	}
	rows := func() int {
		var n int
		s.run(chromedp.Evaluate(`document.querySelectorAll("#resources tbody tr").length`, &n))
		return n
	}
	if got := s.text("#resources-rows"); got != "Rows 1–25 of 1,740" || rows() != 25 {
		t.Errorf("the first page: %q, %d rows", got, rows())
	}
	s.run(chromedp.Click("#resources-next", chromedp.ByID))
	if got := s.waitText("#resources-rows", "26"); got != "Rows 26–50 of 1,740" {
		t.Errorf("the second page: %q", got)
	}
	// Sorted by name on the server: the first page holds App 0001.
	s.run(chromedp.Click(`#resources th:nth-child(2) button`, chromedp.ByQuery))
	if got := s.waitText("#resources", "App 0001"); !strings.Contains(got, "App 0001") || !strings.Contains(s.text("#resources-rows"), "Rows 1–25") {
		t.Errorf("sorted by name:\n%s", got)
	}
	s.run(chromedp.Click(`#resources th:nth-child(2) button`, chromedp.ByQuery))
	if got := s.waitText("#resources", "App 1740"); !strings.Contains(got, "App 1740") {
		t.Errorf("sorted by name, descending:\n%s", got)
	}
	s.run(chromedp.SendKeys("#resources-filter", "app 17", chromedp.ByID))
	if got := s.waitText("#resources-total", "match"); got != "41 resources match “app 17” (of 1,740), as of now, 2026-01-10 00:00 UTC (the latest event)." {
		t.Errorf("filtered: %q", got)
	}
	s.screenshot("every-row.png")
}

// TestNoForeignNameOnThePages opens, as each partner's reader, its
// dashboard in several months, every resource page linked from them, and
// the explanation of every interval on those: no page names an account,
// group or role assignment of another partner or of the customer.
func TestNoForeignNameOnThePages(t *testing.T) {
	s := newSite(t)
	// Who may see each name: the organisations whose accounts hold it or
	// act through it.
	var log bytes.Buffer
	demo.Write(&log, 1)
	orgOf := map[string]string{"1000011": "1000001", "1000012": "1000001", "2000011": "2000001", "3000011": "3000001"}
	seenBy := map[string][]string{}
	names := map[string]string{}
	for line := range strings.Lines(log.String()) {
		var ev struct{ Type, Account, Name, Partner, Group, Assignment, Principal string }
		json.Unmarshal([]byte(line), &ev)
		switch ev.Type {
		case "account.created":
			names[ev.Account] = ev.Name
			seenBy[ev.Account] = nil
		case "group.created":
			names[ev.Group] = ev.Name
			seenBy[ev.Group] = nil
		case "pal.linked":
			seenBy[ev.Account] = append(seenBy[ev.Account], orgOf[ev.Partner])
		case "group.member_added":
			seenBy[ev.Group] = append(seenBy[ev.Group], seenBy[ev.Account]...)
		case "azure.role_assigned":
			seenBy[ev.Assignment] = seenBy[ev.Principal]
		}
	}
	pages := 0
	for who, org := range map[string]string{"fabrikam": "1000001", "northwind": "2000001", "tailspin": "3000001"} {
		var hidden []string
		for id, orgs := range seenBy {
			if !slices.Contains(orgs, org) {
				hidden = append(hidden, id)
				if names[id] != "" {
					hidden = append(hidden, names[id])
				}
			}
		}
		check := func(where string) {
			s.settled()
			body := s.read("body")
			pages++
			for _, name := range hidden {
				if strings.Contains(body, name) {
					t.Errorf("%s's %s names %q:\n%s", who, where, name, body)
				}
			}
		}
		s.login(who)
		links, seen := map[string]bool{}, map[string]bool{}
		for _, month := range []string{"2025-06", "2025-10", "2026-02", "2026-03"} {
			s.open("/#/partner/" + org + "/" + month)
			check("dashboard of " + month)
			var hrefs []string
			s.run(chromedp.Evaluate(`[...document.querySelectorAll('a[href^="#/resource/"]')].map((a) => a.getAttribute("href"))`, &hrefs))
			// A resource once, with the instant of the first page that
			// links it (a missing credit's link names its month's end).
			for _, h := range hrefs {
				parts := strings.Split(h, "/")
				key := strings.Join(parts[:min(len(parts), 4)], "/")
				if !seen[key] {
					seen[key], links[h] = true, true
				}
			}
		}
		if len(links) == 0 {
			t.Errorf("%s's dashboards link no resource", who)
		}
		for href := range links {
			s.open("/" + href)
			check("page " + href)
			var whys int
			s.run(chromedp.Evaluate(`document.querySelectorAll("button.why").length`, &whys))
			for i := 1; i <= whys; i++ {
				var clicked bool
				s.run(chromedp.Evaluate(fmt.Sprintf(`(() => { const b = document.querySelector("#intervals tbody tr:nth-child(%d) button.why"); if (b) b.click(); return !!b; })()`, i), &clicked))
				if !clicked {
					t.Errorf("%s's page %s lost its interval %d", who, href, i)
					continue
				}
				if got := s.waitText("#explanation", "Why, at"); !strings.Contains(got, "Why, at") {
					t.Errorf("%s's explanation %d of %s: %q", who, i, href, got)
				}
				check(fmt.Sprintf("explanation %d of %s", i, href))
			}
		}
	}
	t.Logf("%d pages read", pages)
}
