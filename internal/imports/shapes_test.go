package imports_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/imports"
)

// assignment is a role assignment as the generator makes it, before a
// shape writes it.
type assignment struct {
	name, principal, kind, roleID, role, scope string
	created                                    time.Time
}

// roleShapes write role assignments as each tool does: the az CLI's flat
// objects, the REST API's pages (concatenated, as a script following
// nextLink appends them), and JSON Lines.
var roleShapes = map[string]func(rng *rand.Rand, as []assignment) string{
	"cli": func(rng *rand.Rand, as []assignment) string {
		rows := []map[string]any{}
		for _, a := range as {
			row := map[string]any{"name": a.name, "principalId": a.principal, "principalType": a.kind, "principalName": "",
				"roleDefinitionId":   "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/" + a.roleID,
				"roleDefinitionName": a.role, "scope": a.scope, "createdOn": a.created.Format(time.RFC3339Nano),
				"type": "Microsoft.Authorization/roleAssignments"}
			if rng.IntN(2) == 0 {
				row["roleDefinitionName"] = nil // a deleted role's, or an old CLI's
			}
			rows = append(rows, row)
		}
		out, _ := json.MarshalIndent(rows, "", "  ")
		return string(out)
	},
	"rest": func(rng *rand.Rand, as []assignment) string {
		var pages []string
		for len(as) > 0 || len(pages) == 0 {
			n := min(len(as), 1+rng.IntN(3))
			value := []map[string]any{}
			for _, a := range as[:n] {
				value = append(value, map[string]any{"name": a.name, "type": "Microsoft.Authorization/roleAssignments",
					"id": a.scope + "/providers/Microsoft.Authorization/roleAssignments/" + a.name,
					"properties": map[string]any{"principalId": a.principal, "principalType": a.kind, "scope": a.scope,
						"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/" + a.roleID,
						"createdOn":        a.created.Format("2006-01-02T15:04:05.0000000Z")}})
			}
			as = as[n:]
			page := map[string]any{"value": value}
			if len(as) > 0 {
				page["nextLink"] = "https://management.azure.com/roleAssignments?$skiptoken=" + fmt.Sprint(len(as))
			}
			out, _ := json.MarshalIndent(page, "", "    ")
			pages = append(pages, string(out))
		}
		return strings.Join(pages, "\n")
	},
	"jsonl": func(rng *rand.Rand, as []assignment) string {
		var lines []string
		for _, a := range as {
			out, _ := json.Marshal(map[string]any{"name": a.name, "principalId": a.principal, "principalType": a.kind,
				"roleDefinitionId": a.roleID, "scope": a.scope, "createdOn": a.created.Format(time.RFC3339)})
			lines = append(lines, string(out))
		}
		return strings.Join(lines, "\n") + "\n"
	},
}

// encodings write text as the tools do: UTF-8 with or without a
// byte-order mark, UTF-16 either way round with one (Windows PowerShell
// 5.1's Out-File), and UTF-16 without one.
var encodings = map[string]func(string) []byte{
	"utf-8":            func(s string) []byte { return []byte(s) },
	"utf-8-bom":        func(s string) []byte { return append([]byte("\xef\xbb\xbf"), s...) },
	"utf-16le":         func(s string) []byte { return append([]byte{0xff, 0xfe}, utf16Bytes(s, binary.LittleEndian)...) },
	"utf-16be":         func(s string) []byte { return append([]byte{0xfe, 0xff}, utf16Bytes(s, binary.BigEndian)...) },
	"utf-16le-no-mark": func(s string) []byte { return utf16Bytes(s, binary.LittleEndian) },
}

func utf16Bytes(s string, order binary.AppendByteOrder) []byte {
	var out []byte
	for _, u := range utf16.Encode([]rune(s)) {
		out = order.AppendUint16(out, u)
	}
	return out
}

// TestShapesAndEncodingsGiveTheSameEvents imports three daily snapshots
// of a tenant's role assignments, each against the log so far, written
// in every shape and encoding, their rows shuffled and their lines ended
// either way: each gives the log that the az CLI's plain UTF-8 gives.
func TestShapesAndEncodingsGiveTheSameEvents(t *testing.T) {
	roles := [][2]string{{"b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"}, {"8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"},
		{"acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader"}, {"18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator"}}
	kinds := []string{"User", "ServicePrincipal", "Group"}
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 7))
		// A pool of assignments; each day lists those made by then and not
		// yet removed.
		var pool []assignment
		removed := map[string]int{} // name → the day it is gone from
		for i := range 4 + rng.IntN(8) {
			r := roles[rng.IntN(len(roles))]
			scope := fmt.Sprintf("/subscriptions/7d1c2a4e-0000-4000-8000-00000000000%d", rng.IntN(3))
			if rng.IntN(2) == 0 {
				scope = strings.ToUpper(scope) + "/resourceGroups/RG-" + fmt.Sprint(rng.IntN(3))
			}
			pool = append(pool, assignment{name: fmt.Sprintf("%08x-0000-4000-8000-%012d", seed, i), principal: fmt.Sprintf("p-%d", rng.IntN(5)),
				roleID: r[0], role: r[1], scope: scope, created: time.Date(2026, 1, 1+rng.IntN(3), rng.IntN(24), 0, 0, 0, time.UTC)})
			if rng.IntN(3) == 0 {
				removed[pool[i].name] = 2 + rng.IntN(2)
			}
		}
		// A principal has one kind, whichever assignment names it.
		kindOf := map[string]string{}
		for i := range pool {
			if kindOf[pool[i].principal] == "" {
				kindOf[pool[i].principal] = kinds[rng.IntN(len(kinds))]
			}
			pool[i].kind = kindOf[pool[i].principal]
		}
		snapshot := func(day int) []assignment {
			var out []assignment
			for _, a := range pool {
				if a.created.Day() <= day && (removed[a.name] == 0 || day < removed[a.name]) {
					out = append(out, a)
				}
			}
			return out
		}
		importDays := func(shape, enc string, shuffle, crlf bool) string {
			var log strings.Builder
			for day := 1; day <= 3; day++ {
				rows := snapshot(day)
				if shuffle {
					rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
				}
				text := roleShapes[shape](rng, rows)
				if crlf {
					text = strings.ReplaceAll(text, "\n", "\r\n")
				}
				// Each day's snapshot is the whole tenant's.
				whole, _ := imports.ScopesCovered([]string{"/"})
				res, err := imports.Run("azure-roles", []imports.File{{Name: "roles.json", R: bytes.NewReader(encodings[enc](text))}},
					imports.Options{Tenant: "contoso", ObservedAt: time.Date(2026, 1, day, 23, 0, 0, 0, time.UTC), Known: imports.Known(foldLog(t, log.String())), Covered: whole})
				if err != nil {
					t.Fatalf("seed %d, %s in %s, day %d: %v", seed, shape, enc, day, err)
				}
				if len(res.Problems) > 0 {
					t.Fatalf("seed %d, %s in %s, day %d: %v", seed, shape, enc, day, res.Problems)
				}
				w := event.NewWriter(&log)
				for _, ev := range res.Events {
					w.Write(ev)
				}
				w.Flush()
			}
			return log.String()
		}
		// Events of one instant may come in the file's order: the same
		// facts are the same lines.
		sorted := func(log string) string {
			lines := strings.Split(log, "\n")
			slices.Sort(lines)
			return strings.Join(lines, "\n")
		}
		want := sorted(importDays("cli", "utf-8", false, false))
		if !strings.Contains(want, `"azure.role_assigned"`) {
			t.Fatalf("seed %d: no assignment imported:\n%s", seed, want)
		}
		for shape := range roleShapes {
			for enc := range encodings {
				if got := sorted(importDays(shape, enc, true, rng.IntN(2) == 0)); got != want {
					t.Errorf("seed %d: %s in %s, shuffled, gives another log:\n%s\nthan the CLI's in UTF-8:\n%s", seed, shape, enc, got, want)
				}
			}
		}
	}
}
