package event

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestNamesAreExact: a field is read only under its own name, as the
// format spells it; a name that differs in case, or folds to it in
// Unicode, is a field the format does not name, and is ignored.
func TestNamesAreExact(t *testing.T) {
	const usage = `"type":"usage","time":"2026-01-06T00:00:00Z","tenant":"contoso","resource":"app1","user":"u1"`
	tests := []struct {
		line string
		want string // the event's fields as %v, or the refusal's code
	}{
		{`{` + usage + `,"Resource":"nope"}`, "usage 2026-01-06 contoso app1 u1"},
		{`{` + usage + `,"Time":"2026-03-01T00:00:00Z","USER":"u9"}`, "usage 2026-01-06 contoso app1 u1"},
		{`{"Resource":"nope",` + usage + `}`, "usage 2026-01-06 contoso app1 u1"},
		{`{` + usage + `,"re\u017fource":"nope","\u212aind":"flow"}`, "usage 2026-01-06 contoso app1 u1"},
		{`{"TYPE":"usage","TIME":"2026-01-06T00:00:00Z","Tenant":"contoso","Resource":"app1","User":"u3"}`, "missing_field"},
		{`{"\u0074ype":"usage","time":"2026-01-06T00:00:00Z","tenant":"contoso","resource":"app1","user":"u4"}`, "usage 2026-01-06 contoso app1 u4"},
		{`{` + usage + `,"resource":"app2"}`, "usage 2026-01-06 contoso app2 u1"},
		{`{` + usage + `,"Resource":"nope","resource":"app2"}`, "usage 2026-01-06 contoso app2 u1"},
		{`{` + usage + `,"imported":"yes"}`, "usage 2026-01-06 contoso app1 u1"},
	}
	for _, tt := range tests {
		ev, rf := Decode([]byte(tt.line), 1)
		got := ""
		if rf != nil {
			got = string(rf.Code)
		} else {
			got = fmt.Sprintf("%s %s %s %s %s", ev.Type, ev.Time.Format("2006-01-02"), ev.Tenant, ev.Resource, ev.User)
		}
		if got != tt.want {
			t.Errorf("Decode(%s) = %s, want %s", tt.line, got, tt.want)
		}
	}

	ev, rf := Decode([]byte(`{"type":"solution.imported","time":"2026-01-07T00:00:00Z","tenant":"contoso","environment":"prod","account":"alice","resources":[{"resource":"fl1","kind":"flow","Resource":"zzz","NAME":"x"}]}`), 1)
	if rf != nil || len(ev.Resources) != 1 || ev.Resources[0] != (SolutionResource{Resource: "fl1", Kind: "flow"}) {
		t.Errorf("an import with a resource's fields in other cases: %+v, %v", ev, rf)
	}
	if ev, rf := Decode([]byte(`{`+usage+`,"imported":true}`), 1); rf != nil || !ev.Imported {
		t.Errorf(`"imported":true: %+v, %v; want the mark`, ev, rf)
	}
}

// TestPlainKeysReadAsEveryKey holds the struct decoder, which Decode uses
// when every key is plain, to the exact reading of every name, on random
// lines of the format's names with random extra keys, cases and escapes.
func TestPlainKeysReadAsEveryKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"type", "time", "tenant", "resource", "user", "id", "imported", "count", "kind", "color", "Type", "TIME", "re\\u0073ource", "x_1"}
	values := []string{`"usage"`, `"2026-01-06T00:00:00Z"`, `"contoso"`, `"app1"`, `"u\"1:"`, `7`, `true`, `null`, `["a","b:"]`, `{"kind":"flow","Kind":"x"}`}
	for range 20000 {
		var fields []string
		for range 1 + rng.IntN(8) {
			fields = append(fields, fmt.Sprintf("%q : %s", names[rng.IntN(len(names))], values[rng.IntN(len(values))]))
		}
		line := []byte("{" + strings.ReplaceAll(strings.Join(fields, ","), `\\u`, `\u`) + "}")
		var fast, exact raw
		if err := decodeRaw(line, &fast); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		for name, v := range m {
			if f := exact.field(name); f != nil {
				*f = v
			}
		}
		if fmt.Sprint(fast) != fmt.Sprint(exact) {
			t.Fatalf("%s (plain keys: %v):\n%s\nwant, reading each name exactly,\n%s", line, plainKeys(line), fast, exact)
		}
	}
}
