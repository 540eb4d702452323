package web_test

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// axeSource is axe-core (npm axe-core 4.14.1, MPL-2.0), which the tests
// load into the pages to check them; the binary does not carry it.
//
//go:embed testdata/axe.min.js
var axeSource string

// aPage is a page one role opens, and what it does there before the page
// is checked: open an explanation, a verdict, a dialog, an error.
type aPage struct {
	name, who, path string
	then            func(s *site)
}

// everyPage lists every page of every role, in the states that show more
// than the page alone.
func everyPage() []aPage {
	return []aPage{
		{"login", "", "/", nil},
		{"partner dashboard", "fabrikam", "/#/partner", nil},
		{"partner dashboard in October 2025", "fabrikam", "/#/partner/1000001/2025-10", nil},
		{"resource timeline", "fabrikam", "/#/resource/adatum/onboarding", func(s *site) {
			s.chart("#timeline")
			s.press("#timeline", kb.End, kb.Enter)
			s.waitText("#verdict", "Credited")
		}},
		{"Azure resource", "fabrikam", "/#/resource/fourthcoffee/" + strings.ReplaceAll("/subscriptions/7d1c2a4e-0000-4000-8000-000000000001/resourcegroups/data/providers/microsoft.sql/servers/sql-main", "/", "%2F"), func(s *site) {
			s.chart("#timeline")
			s.press("#timeline", kb.End, kb.Enter)
			s.waitText("#verdict", "Credited")
		}},
		{"tenant", "adatum", "/#/tenant", nil},
		{"what-if, refused by the form", "adatum", "/#/whatif", func(s *site) {
			s.run(chromedp.Click("#run-whatif", chromedp.ByID))
			s.waitText("#whatif-problems", "cannot be tried")
		}},
		{"what-if, with its verdict", "adatum", "/#/whatif", func(s *site) {
			s.pick("#wi-resource", "onboarding")
			s.pick("#wi-action", "owner")
			s.run(chromedp.SetValue("#wi-account", "hana@tailspin.example", chromedp.ByID), chromedp.Click("#run-whatif", chromedp.ByID))
			s.waitText("#verdict-headline", "would")
		}},
		{"programme", "operator", "/#/programme", nil},
		{"a partner's dashboard, for the operator", "operator", "/#/partner/2000001/2026-03", nil},
		{"every tenant", "operator", "/#/tenant", nil},
		{"link", "alice", "/#/link", func(s *site) {
			s.run(chromedp.SetValue("#partner-id", "12", chromedp.ByID), chromedp.Click("#link-change", chromedp.ByID))
			s.waitText("#link-error", "6 to 10")
		}},
		{"link, asked to confirm its removal", "alice", "/#/link", func(s *site) {
			s.run(chromedp.Click("#link-remove", chromedp.ByID), chromedp.WaitVisible("#confirm-remove", chromedp.ByID))
		}},
	}
}

// visit opens a page as its role, waits until its tables and charts are
// drawn, and does what the page asks.
func (s *site) visit(p aPage, who *string) {
	s.t.Helper()
	if p.who != *who {
		if p.who == "" {
			s.run(chromedp.Navigate(s.url+"/#/login"), chromedp.Evaluate(`localStorage.removeItem("pal.token")`, nil), chromedp.Navigate("about:blank"))
		} else {
			s.login(p.who)
		}
		*who = p.who
	}
	s.open(p.path)
	s.settled()
	var drawn bool
	s.run(chromedp.Evaluate(`new Promise((done) => { const drawn = () => [...document.querySelectorAll(".plot")].every((p) => p.querySelector("canvas"));
		const until = Date.now() + 10000, wait = () => drawn() || Date.now() > until ? done(drawn()) : setTimeout(wait, 50); wait(); })`, &drawn, awaitPromise))
	if !drawn {
		s.t.Errorf("%s: a chart is not drawn", p.name)
	}
	if p.then != nil {
		p.then(s)
	}
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// violation is what axe-core reports of a rule a page breaks.
type violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		HTML    string `json:"html"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// axe runs axe-core on the page as it is, and returns the serious and
// critical violations of WCAG 2.2 A and AA and of axe's best practices.
func (s *site) axe() []violation {
	s.t.Helper()
	var loaded bool
	s.run(chromedp.Evaluate(`typeof axe === "object"`, &loaded))
	if !loaded {
		s.run(chromedp.Evaluate(axeSource, nil))
	}
	var raw string
	s.run(chromedp.Evaluate(`axe.run(document, { resultTypes: ["violations"] }).then((r) => JSON.stringify(r.violations))`, &raw, awaitPromise))
	var all, out []violation
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		s.t.Fatalf("axe: %v", err)
	}
	for _, v := range all {
		if v.Impact == "serious" || v.Impact == "critical" {
			out = append(out, v)
		}
	}
	return out
}

func (v violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n\t%v %s\n\t\t%s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n\t\t"))
	}
	return b.String()
}

// TestEveryPageAccessible opens every page of every role, at 1400×900 and
// at 390×844 (a phone, touch on): axe-core finds no serious or critical
// violation on any, and on the phone no page is wider than the screen —
// its tables scroll inside themselves.
func TestEveryPageAccessible(t *testing.T) {
	s := newSite(t)
	who := "none"
	for _, size := range []struct {
		w, h  int64
		phone bool
	}{{1400, 900, false}, {390, 844, true}} {
		if size.phone {
			s.run(chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateMobile, chromedp.EmulateTouch))
		} else {
			s.run(chromedp.EmulateViewport(size.w, size.h))
		}
		for _, p := range everyPage() {
			s.visit(p, &who)
			for _, v := range s.axe() {
				t.Errorf("%s at %d px: %s", p.name, size.w, v)
			}
			if !size.phone {
				continue
			}
			var width struct{ Viewport, Document, Widest float64 }
			s.run(chromedp.Evaluate(`({ viewport: window.innerWidth, document: document.documentElement.scrollWidth,
				widest: Math.max(...[...document.querySelectorAll("main *")].filter((e) => !e.closest(".scroll, dialog:not([open])")).map((e) => e.getBoundingClientRect().right)) })`, &width))
			if width.Viewport != float64(size.w) || width.Document > float64(size.w) || width.Widest > float64(size.w) {
				var wide []string
				s.run(chromedp.Evaluate(fmt.Sprintf(`[...document.querySelectorAll("body *")].filter((e) => {
					if (e.getBoundingClientRect().right <= %d) return false;
					for (let a = e.parentElement; a; a = a.parentElement) if (getComputedStyle(a).overflowX !== "visible" && a !== document.body && a !== document.documentElement) return false;
					return true; }).slice(0, 8).map((e) => e.outerHTML.slice(0, 100) + " " + e.getBoundingClientRect().right)`, size.w), &wide))
				t.Errorf("%s at %d px: the window is %v px wide, the page %v px, its widest element ends at %v px: %q", p.name, size.w, width.Viewport, width.Document, width.Widest, wide)
			}
		}
	}
}

// TestScreenshots saves each role's main page at 1400×900 and at 390×844
// into $PAL_SCREENSHOTS (docs/screenshots in the repository):
//
//	PAL_SCREENSHOTS=docs/screenshots PAL_TEST_CHROMIUM=$(command -v chromium) go test ./internal/web/ -run Screenshots
//
// A relative directory is read from the repository's root.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("PAL_SCREENSHOTS")
	if dir == "" {
		t.Skip("PAL_SCREENSHOTS is not set: no screenshots asked for (PAL_SCREENSHOTS=docs/screenshots regenerates the documentation's)")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir) // the test runs in internal/web
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSite(t)
	who := "none"
	pages := []aPage{{"partner", "fabrikam", "/#/partner", nil}, {"tenant-admin", "adatum", "/#/tenant", nil},
		{"operator", "operator", "/#/programme", nil}, {"account", "alice", "/#/link", nil}}
	for _, size := range []struct{ w, h int64 }{{1400, 900}, {390, 844}} {
		if size.w < 600 {
			s.run(chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateMobile, chromedp.EmulateTouch))
		} else {
			s.run(chromedp.EmulateViewport(size.w, size.h))
		}
		for _, p := range pages {
			s.visit(p, &who)
			var shot []byte
			s.run(chromedp.CaptureScreenshot(&shot))
			name := filepath.Join(dir, fmt.Sprintf("%s-%d.png", p.name, size.w))
			if err := os.WriteFile(name, smaller(t, shot), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// smaller encodes a screenshot again, with the 256 colours it uses most
// (a page is mostly flat colour; the rest, edges of text, take the
// nearest), at the best compression: a few tens of kilobytes a page.
func smaller(t *testing.T, shot []byte) []byte {
	img, _, err := image.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	count := map[color.RGBA]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			count[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	colours := slices.Collect(maps.Keys(count))
	slices.SortFunc(colours, func(a, b color.RGBA) int {
		return cmp.Or(count[b]-count[a], cmp.Compare(a.R, b.R), cmp.Compare(a.G, b.G), cmp.Compare(a.B, b.B))
	})
	pal := make(color.Palette, 0, 256)
	for _, c := range colours[:min(256, len(colours))] {
		pal = append(pal, c)
	}
	out := image.NewPaletted(b, pal)
	draw.Draw(out, b, img, b.Min, draw.Src)
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, out); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
