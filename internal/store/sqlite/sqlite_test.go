package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/sqlite"
	"github.com/palproject/pal/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "pal.db")
		return func(t *testing.T) store.Store {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}
