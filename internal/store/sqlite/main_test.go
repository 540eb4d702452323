package sqlite_test

import (
	"testing"

	"github.com/palproject/pal/internal/testskip"
)

// TestMain says which tests were skipped, and why, after them.
func TestMain(m *testing.M) { testskip.Main(m) }
