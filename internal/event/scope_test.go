package event

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestParseScopeAsSegments: ParseScope reads any path as splitting it into
// its segments does, whatever its segments, their number and their case.
func TestParseScopeAsSegments(t *testing.T) {
	forms := [][]string{
		{"subscriptions", "s1"},
		{"subscriptions", "s1", "resourceGroups", "rg"},
		{"subscriptions", "s1", "resourceGroups", "rg", "providers", "Microsoft.Compute", "virtualMachines", "vm"},
		{"SUBSCRIPTIONS", "S1", "RESOURCEGROUPS", "RG", "PROVIDERS", "Microsoft.Web", "sites", "app", "slots", "blue"},
		{"providers", "Microsoft.Management", "managementGroups", "mg"},
	}
	words := []string{"", "subscriptions", "resourceGroups", "providers", "managementGroups", "x"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		// A form of scope, whole or spoilt: a segment dropped, changed or
		// added.
		segs := append([]string(nil), forms[rng.IntN(len(forms))]...)
		for range rng.IntN(3) {
			i := rng.IntN(len(segs) + 1)
			switch rng.IntN(3) {
			case 0:
				if i < len(segs) {
					segs = append(segs[:i], segs[i+1:]...)
				}
			case 1:
				if i < len(segs) {
					segs[i] = words[rng.IntN(len(words))]
				}
			default:
				segs = append(segs[:i], append([]string{words[rng.IntN(len(words))]}, segs[i:]...)...)
			}
		}
		var b strings.Builder
		for _, s := range segs {
			b.WriteString("/" + s)
		}
		if rng.IntN(5) == 0 {
			b.WriteString("/")
		}
		path := b.String()
		got, gerr := ParseScope(path)
		want, werr := splitScope(path)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Fatalf("ParseScope(%q) = %+v, %v; split gives %+v, %v", path, got, gerr, want, werr)
		}
		if got.Kind == ScopeResource {
			if again := ResourceScope(got.Path); again != got {
				t.Fatalf("ResourceScope(%q) = %+v; ParseScope gave %+v", got.Path, again, got)
			}
		}
	}
}

// splitScope is ParseScope as the segments of a path say it, plainly.
func splitScope(s string) (Scope, error) {
	if !strings.HasPrefix(s, "/") {
		return ParseScope("no")
	}
	p := strings.TrimSuffix(s, "/")
	if p == "" {
		return Scope{Kind: ScopeRoot, Path: "/"}, nil
	}
	p = strings.ToLower(p)
	segs := strings.Split(p[1:], "/")
	for _, seg := range segs {
		if seg == "" {
			return ParseScope("no")
		}
	}
	switch {
	case segs[0] == "providers" && len(segs) == 4 && segs[1] == "microsoft.management" && segs[2] == "managementgroups":
		return Scope{Kind: ScopeManagementGroup, Path: p, Group: segs[3]}, nil
	case segs[0] == "subscriptions":
		sc := Scope{Path: p, Subscription: segs[1%len(segs)]}
		switch n := len(segs); {
		case n == 2:
			sc.Kind = ScopeSubscription
		case n == 4 && segs[2] == "resourcegroups":
			sc.Kind = ScopeResourceGroup
		case n >= 8 && segs[2] == "resourcegroups" && segs[4] == "providers":
			sc.Kind = ScopeResource
		default:
			return ParseScope("no")
		}
		return sc, nil
	}
	return ParseScope("no")
}
