package postgres_test

import (
	"context"
	"testing"

	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) storetest.Opener {
		url := pgtest.Database(t)
		return func(t *testing.T) store.Store {
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}
