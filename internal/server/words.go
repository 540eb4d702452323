package server

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/attribution"
	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/credit"
	"github.com/palproject/pal/internal/event"
)

// The words the pages show for codes, and the explanation of a verdict in
// one sentence, as the caller may read it (shownAccount).

// kindWords says a resource kind in words.
var kindWords = map[string]string{
	"canvas_app":       "canvas app",
	"model_driven_app": "model-driven app",
	"flow":             "flow",
	"powerbi_dataset":  "Power BI dataset",
	"bot":              "Copilot Studio bot",
	"pages_site":       "Power Pages site",
	"ci_instance":      "Customer Insights instance",
	azure.Kind:         "Azure resource",
}

// kindInWords returns a kind in words, the code itself when it has none.
func kindInWords(kind string) string {
	if w, ok := kindWords[kind]; ok {
		return w
	}
	return kind
}

// workloadWords says a workload of the monthly report in words.
var workloadWords = map[string]string{
	event.PowerApps:        "Power Apps",
	event.PowerAutomate:    "Power Automate",
	event.PowerBI:          "Power BI",
	event.CopilotStudio:    "Copilot Studio",
	event.PowerPages:       "Power Pages",
	event.CustomerInsights: "Customer Insights",
}

// workloadInWords returns a workload in words, the code itself when it has
// none.
func workloadInWords(workload string) string {
	if w, ok := workloadWords[workload]; ok {
		return w
	}
	return workload
}

// causeWords says the event type that caused a credit change in words.
var causeWords = map[string]string{
	"resource.coowner_added":   "co-owner added",
	"resource.coowner_removed": "co-owner removed",
	"resource.owner_changed":   "owner changed",
	"resource.created":         "resource created",
	"resource.deleted":         "resource deleted",
	"resource.activity":        "activity",
	"solution.imported":        "solution imported",
	"pal.linked":               "link set",
	"pal.removed":              "link removed",
	"account.enabled":          "account enabled",
	"account.disabled":         "account disabled",
	"account.deleted":          "account deleted",
	"environment.changed":      "environment changed",
	"environment.deleted":      "environment deleted",
	"partner.registered":       "organisation registered or changed",
}

func causeInWords(cause string) string {
	if w, ok := causeWords[cause]; ok {
		return w
	}
	return cause
}

// roleWords says a candidate's role on a resource.
var roleWords = map[string]string{
	attribution.RoleOwner:       "the owner",
	attribution.RoleCoowner:     "a co-owner",
	attribution.RoleContributor: "a contributor",
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// explanationWords says in one sentence or a few who is credited for a
// resource at an instant and why, as p may read it: a partner reader reads
// of its own accounts by name and of the others as the shownAccount rule
// says, and of an interval it lost, who won and when.
func explanationWords(p Principal, d directory, x attribution.Explanation) string {
	if !x.Exists {
		return fmt.Sprintf("%s does not exist in tenant %s at %s.", x.Resource, x.Tenant, day(x.At))
	}
	who := func(w *attribution.Winner) string {
		if p.asPartner() && p.ownsPartner(d, w.Partner) {
			return fmt.Sprintf("your partner ID %s, through %s", w.Partner, w.Account)
		}
		if p.asPartner() {
			return partnerWords(d, w.Partner)
		}
		return fmt.Sprintf("%s, through %s", partnerWords(d, w.Partner), w.Account)
	}
	var out []string
	switch {
	case !x.Counted:
		s := fmt.Sprintf("Environment %s is of type %s at that instant, and only production environments count: no partner is credited.", x.Environment, x.EnvType)
		if x.WouldBeWinner != nil {
			s += fmt.Sprintf(" Were it counted, %s would be.", who(x.WouldBeWinner))
		}
		out = append(out, s)
	case x.Winner == nil:
		out = append(out, "No partner is credited: none of its accounts holds an eligible link.")
	default:
		w := x.Winner
		role := ""
		for _, c := range x.Candidates {
			if c.Account == w.Account {
				role = roleWords[c.Role]
			}
		}
		if len(x.Shares) > 1 {
			var parts []string
			for _, sh := range x.Shares {
				parts = append(parts, fmt.Sprintf("%s %d%%", partnerWords(d, sh.Partner), int(sh.Share*100+0.5)))
			}
			out = append(out, fmt.Sprintf("Under policy split the credit is shared: %s.", strings.Join(parts, ", ")))
		}
		out = append(out, fmt.Sprintf("Credited to %s: its account, %s, associated on %s.", who(w), cmp.Or(role, "a candidate"), day(w.Since)))
	}
	// What became of the caller's own candidates (a partner reader), or
	// of the others (anyone else).
	for _, c := range x.Candidates {
		if x.Winner != nil && c.Account == x.Winner.Account {
			continue
		}
		mine := p.asPartner() && p.ownsPartner(d, c.Partner)
		if p.asPartner() && !mine {
			continue
		}
		name := c.Account
		if mine {
			name = "your account " + c.Account
		}
		switch {
		case !c.Eligible:
			out = append(out, fmt.Sprintf("%s (%s) is not eligible: %s.", capital(name), roleWords[c.Role], credit.Words(c.Reason)))
		case x.Winner != nil && (x.Winner.Org == c.Org || slices.ContainsFunc(x.Shares, func(s credit.Share) bool { return s.Partner == c.Partner })):
		case x.Winner != nil && x.Policy == attribution.First:
			out = append(out, fmt.Sprintf("%s (%s) associated on %s, later than the credited account: under policy first the earliest association keeps the credit.", capital(name), roleWords[c.Role], day(c.Association)))
		case x.Winner != nil:
			out = append(out, fmt.Sprintf("%s (%s) associated on %s, earlier than the credited account: the latest association wins; an edit or publish renews yours.", capital(name), roleWords[c.Role], day(c.Association)))
		}
	}
	return strings.Join(out, " ")
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// azureWords says who is recognised and credited for an Azure resource at
// an instant.
func azureWords(p Principal, d directory, x azure.Explanation) string {
	if len(x.Credited) == 0 {
		s := "No partner is recognised at that instant."
		if p.asPartner() {
			for _, a := range x.Assignments {
				for _, acct := range a.Accounts {
					if p.ownsPartner(d, acct.Partner) && !acct.Eligible {
						s += fmt.Sprintf(" Your account %s, through %s on %s: %s.", acct.Account, a.Role, a.Scope, acct.Reason)
					}
				}
			}
		}
		return s
	}
	var parts []string
	for _, c := range x.Credited {
		share := ""
		if c.Share < 1 {
			share = fmt.Sprintf(" (share %d%%)", int(c.Share*100+0.5))
		}
		parts = append(parts, partnerWords(d, c.Partner)+share)
	}
	return fmt.Sprintf("Credited under the Azure policy %s: %s.", x.Policy, strings.Join(parts, ", "))
}
