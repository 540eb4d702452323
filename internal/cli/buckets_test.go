package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palproject/pal/internal/store/postgres"
	"github.com/palproject/pal/internal/store/postgres/pgtest"
	"github.com/palproject/pal/internal/store/sqlite"
)

// TestBucketsAreFixedOnce: the first pal serve of a PostgreSQL database
// fixes its buckets, a later one with another number is refused, naming
// the number fixed; SQLite refuses --buckets, saying why.
func TestBucketsAreFixedOnce(t *testing.T) {
	ctx := context.Background()
	pg, err := postgres.Open(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if err := setBuckets(ctx, pg, 16, true); err != nil {
		t.Fatalf("the first --buckets 16: %v", err)
	}
	if err := setBuckets(ctx, pg, 16, false); err != nil {
		t.Fatalf("--buckets 16 again: %v", err)
	}
	err = setBuckets(ctx, pg, 64, false)
	if err == nil || !strings.Contains(err.Error(), "first served with 16 buckets") || !strings.Contains(err.Error(), "--buckets 16") {
		t.Fatalf("another number of buckets: %v, want a refusal naming 16", err)
	}
	leases, err := pg.Leases(ctx)
	if err != nil || len(leases) != 16 {
		t.Fatalf("%d leases (%v), want 16", len(leases), err)
	}

	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "pal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	if err := setBuckets(ctx, lite, 64, false); err != nil {
		t.Fatalf("SQLite without --buckets: %v", err)
	}
	if err := setBuckets(ctx, lite, 64, true); err == nil || !strings.Contains(err.Error(), "one process") {
		t.Fatalf("SQLite with --buckets: %v, want a refusal saying why", err)
	}
}
