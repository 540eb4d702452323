// Package testskip makes pal's skipped tests say so. Skip skips a test with
// its reason and remembers it; Main, as a package's TestMain, runs the
// tests and then prints one line a reason, naming the tests it skipped,
// with or without -v. (The go command shows a passing package's output
// when it runs in the package's folder, with -v, or on a failure; under
// `go test ./...` it shows only the ok line.)
package testskip

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	mu      sync.Mutex
	skipped = map[string][]string{} // reason → tests
)

// Skip skips a test, saying why, and remembers it for Main.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	mu.Lock()
	skipped[reason] = append(skipped[reason], t.Name())
	mu.Unlock()
	t.Skip(reason)
}

// Main runs a package's tests, says which were skipped and why, and exits
// with their code.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs a package's tests and says which were skipped and why: for a
// TestMain with work of its own around them.
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	reasons := make([]string, 0, len(skipped))
	for r := range skipped {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		tests := skipped[r]
		fmt.Printf("skipped %d: %s (%s)\n", len(tests), strings.Join(tests, ", "), r)
	}
	return code
}
