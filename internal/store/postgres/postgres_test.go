package postgres_test

import (
	"testing"

	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/storetest"
)

func TestStore(t *testing.T) { storetest.Exercise(t, storetest.Backends()[1].Fresh) }

// TestStoreInSmallPages: the store's contract holds when a scan of the log
// takes many queries, one a page.
func TestStoreInSmallPages(t *testing.T) {
	defer postgres.SetScanPage(7)()
	storetest.Exercise(t, storetest.Backends()[1].Fresh)
}
