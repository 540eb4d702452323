package event

import (
	"fmt"
	"strings"
)

// ScopeKind is what an Azure path names (SPEC.md section 9.1).
type ScopeKind uint8

// The kinds of Azure scope, outermost first.
const (
	ScopeRoot ScopeKind = iota
	ScopeManagementGroup
	ScopeSubscription
	ScopeResourceGroup
	ScopeResource
)

var scopeKindNames = [...]string{"tenant root", "management group", "subscription", "resource group", "resource"}

func (k ScopeKind) String() string { return scopeKindNames[k] }

// Scope is an Azure path parsed once: its kind, its canonical form (lower
// case, no trailing slash), and the management group or subscription it
// names or lies in.
type Scope struct {
	Kind ScopeKind
	// Path is the canonical path: "/" for the root, otherwise lower-cased
	// segments joined by "/" after a leading "/".
	Path string
	// Group is the management group of a ScopeManagementGroup.
	Group string
	// Subscription is the subscription of a subscription, resource group
	// or resource.
	Subscription string
}

// ScopeForms lists the Azure paths pal reads, for messages.
const ScopeForms = "/, /providers/Microsoft.Management/managementGroups/{group}, /subscriptions/{sub}, " +
	"/subscriptions/{sub}/resourceGroups/{rg}, or /subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}"

// ParseScope reads an Azure path. Segments compare case-insensitively, so
// the canonical form is lower case; one trailing "/" is dropped.
func ParseScope(s string) (Scope, error) {
	bad := func(why string) (Scope, error) {
		return Scope{}, fmt.Errorf("%q is not an Azure scope (%s); write %s", s, why, ScopeForms)
	}
	if !strings.HasPrefix(s, "/") {
		return bad("it does not begin with /")
	}
	p := strings.TrimSuffix(s, "/")
	if p == "" {
		return Scope{Kind: ScopeRoot, Path: "/"}, nil
	}
	p = strings.ToLower(p)
	// The first segments, which say what the scope is, and how many there
	// are; each a part of p, so that reading a path allocates nothing more.
	var segs [5]string
	n := 0
	for rest := p[1:]; ; n++ {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" {
			return bad("it has an empty segment")
		}
		if n < len(segs) {
			segs[n] = seg
		}
		if !more {
			n++
			break
		}
		rest = tail
	}
	switch {
	case segs[0] == "providers":
		if n != 4 || segs[1] != "microsoft.management" || segs[2] != "managementgroups" {
			return bad("a management group is /providers/Microsoft.Management/managementGroups/{group}")
		}
		return Scope{Kind: ScopeManagementGroup, Path: p, Group: segs[3]}, nil
	case segs[0] == "subscriptions":
		sc := Scope{Path: p}
		switch {
		case n == 2:
			sc.Kind = ScopeSubscription
		case n == 4 && segs[2] == "resourcegroups":
			sc.Kind = ScopeResourceGroup
		case n >= 8 && segs[2] == "resourcegroups" && segs[4] == "providers":
			sc.Kind = ScopeResource
		default:
			return bad("under a subscription come resourceGroups/{rg}, then providers/{namespace}/{type}/{name}")
		}
		sc.Subscription = segs[1]
		return sc, nil
	}
	return bad("it begins with neither /subscriptions nor /providers/Microsoft.Management")
}

// ParseResourcePath reads the path of an Azure resource, refusing any other
// scope.
func ParseResourcePath(s string) (Scope, error) {
	sc, err := ParseScope(s)
	if err != nil {
		return sc, err
	}
	if sc.Kind != ScopeResource {
		return Scope{}, fmt.Errorf("%q is a %s, not a resource; a resource path is /subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}", s, sc.Kind)
	}
	return sc, nil
}

// ResourceScope returns the scope of a resource's canonical path, one
// that ParseResourcePath returned, without reading it again.
func ResourceScope(path string) Scope {
	sub := strings.TrimPrefix(path, "/subscriptions/")
	sub, _, _ = strings.Cut(sub, "/")
	return Scope{Kind: ScopeResource, Path: path, Subscription: sub}
}

// Contains reports whether the scope holds the resource at path (canonical)
// by its path alone: the root holds everything, a subscription, resource
// group or resource every path it prefixes with whole segments. A
// management group holds what its tree holds at an instant, which the path
// does not say: Contains reports false for it.
func (s Scope) Contains(path string) bool {
	switch s.Kind {
	case ScopeRoot:
		return true
	case ScopeManagementGroup:
		return false
	}
	return path == s.Path || strings.HasPrefix(path, s.Path) && len(path) > len(s.Path) && path[len(s.Path)] == '/'
}

// Prefixes calls fn with every scope that contains the resource path by its
// segments, outermost first: its subscription, its resource group, every
// longer prefix that is a resource path, and the path itself.
func Prefixes(path string, fn func(prefix string)) {
	n := 0
	for i := 1; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		n++
		// segment n ended at i: subscriptions(1) sub(2) resourcegroups(3)
		// rg(4) providers(5) namespace(6) type(7) name(8), then any.
		if n == 2 || n == 4 || n >= 8 {
			fn(path[:i])
		}
	}
	fn(path)
}

// IsSegment reports whether s can be a management group or subscription ID:
// a non-empty path segment.
func IsSegment(s string) bool { return s != "" && !strings.Contains(s, "/") }
