package backend

import (
	"context"
	"fmt"
	"strings"

	"github.com/palproject/pal/internal/store"
	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/sqlite"
)

// Open opens the store named by db.
func Open(ctx context.Context, db string) (store.Store, error) {
	switch {
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return postgres.Open(ctx, db)
	case strings.Contains(db, "://"):
		return nil, fmt.Errorf("--db %q: use a postgres:// URL or the path of an SQLite file", db)
	}
	return sqlite.Open(ctx, db)
}
