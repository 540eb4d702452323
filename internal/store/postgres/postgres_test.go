package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/palproject/pal/internal/event"
	"github.com/palproject/pal/internal/store"
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

// TestTenantsAfterARecord: the tenants listed after a record are those of
// the records after it, each once, in order; the directory's none.
func TestTenantsAfterARecord(t *testing.T) {
	ctx := context.Background()
	st := storetest.Backends()[1].Fresh(t)(t).(*postgres.Store)
	lines := []string{
		`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"t2","environment":"prod","env_type":"production"}`,
		`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"t1","environment":"prod","env_type":"production"}`,
		`{"type":"partner.registered","time":"2026-01-01T00:00:00Z","org":"100001","name":"Fabrikam","locations":["100011"]}`,
		`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"t3","environment":"prod","env_type":"production"}`,
		`{"type":"environment.created","time":"2026-01-01T00:00:00Z","tenant":"t2","environment":"test","env_type":"sandbox"}`,
	}
	var seqs []int64
	for i, line := range lines {
		ev, rf := event.Decode([]byte(line), i+1)
		if rf != nil {
			t.Fatal(rf)
		}
		err := st.Write(ctx, func(w store.Writer) error {
			got, err := w.Append(ctx, []*event.Event{ev})
			seqs = append(seqs, got...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		after int64
		want  []string
	}{
		{0, []string{"t1", "t2", "t3"}},
		{seqs[0], []string{"t1", "t2", "t3"}},
		{seqs[1], []string{"t2", "t3"}},
		{seqs[3], []string{"t2"}},
		{seqs[4], nil},
	} {
		got, err := st.Tenants(ctx, tt.after)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("tenants after %d: %q, %v; want %q", tt.after, got, err, tt.want)
		}
	}
}
