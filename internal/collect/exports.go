package collect

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/palproject/pal/internal/imports"
)

// costExport is a Cost Management export's container, with the client
// that reads it (azblob's, with the tenant's credential and the
// collector's retries).
type costExport struct {
	cfg    CostExport
	client *container.Client
}

func newCostExport(e CostExport, cred azcore.TokenCredential, co policy.ClientOptions) (*costExport, error) {
	c, err := container.NewClient(e.Container, cred, &container.ClientOptions{ClientOptions: co})
	if err != nil {
		return nil, err
	}
	return &costExport{cfg: e, client: c}, nil
}

// exportBlob is a file of an export, as the container lists it.
type exportBlob struct {
	export   *costExport
	name     string
	size     int64
	modified time.Time
	etag     azcore.ETag
}

// costExports reads the tenant's cost exports instead of the cost query:
// of each export's periods that the cost window reaches (cost_days before
// the run), the files of its newest run (chooseRuns), CSV or gzipped CSV,
// each handed whole to the cost importer, as pal import azure-costs reads
// the same files downloaded. A prefix under which the container holds
// nothing at all fails the source: it is misspelt, or not the export's.
func (r *run) costExports(ctx context.Context, t *target, st *counter) (fetched, error) {
	day := r.at.UTC().Truncate(24 * time.Hour)
	from, until := day.AddDate(0, 0, -r.c.cfg.CostDays), r.at.UTC()
	chosen := make([][]exportBlob, len(t.exports))
	notes := make([][]string, len(t.exports))
	_, err := eachScope(ctx, t, indices(len(t.exports)), func(i int) ([]page, error) {
		x := t.exports[i]
		var blobs []exportBlob
		p := x.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &x.cfg.Prefix})
		for p.More() {
			pg, err := p.NextPage(ctx)
			if err != nil {
				return nil, requestError(err)
			}
			for _, b := range pg.Segment.BlobItems {
				if b == nil || b.Name == nil || b.Properties == nil {
					continue
				}
				eb := exportBlob{export: x, name: *b.Name}
				if b.Properties.ContentLength != nil {
					eb.size = *b.Properties.ContentLength
				}
				if b.Properties.LastModified != nil {
					eb.modified = *b.Properties.LastModified
				}
				if b.Properties.ETag != nil {
					eb.etag = *b.Properties.ETag
				}
				blobs = append(blobs, eb)
			}
		}
		if len(blobs) == 0 {
			return nil, fmt.Errorf("the container %s holds nothing under %q: check cost_exports' container and prefix (the export's root folder and name)", x.cfg.Container, x.cfg.Prefix)
		}
		chosen[i], notes[i] = chooseRuns(blobs, from, until)
		return nil, nil
	})
	if err != nil {
		return fetched{}, err
	}
	files := slices.Concat(chosen...)
	pages, err := eachScope(ctx, t, files, func(b exportBlob) ([]page, error) {
		buf := make([]byte, b.size)
		if b.size > 0 {
			// Blocks of 4 MiB, each a request of its own within the
			// request timeout, one at a time within the tenant's slot;
			// a file rewritten meanwhile fails (If-Match), and is read
			// whole at the next run.
			o := &blob.DownloadBufferOptions{Range: blob.HTTPRange{Count: b.size}, Concurrency: 1}
			if b.etag != "" {
				o.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &b.etag}}
			}
			if _, err := b.export.client.NewBlobClient(b.name).DownloadBuffer(ctx, buf, o); err != nil {
				return nil, requestError(err)
			}
		}
		pg := page{name: b.export.cfg.Container + "/" + b.name, body: buf}
		st.page(pg)
		return []page{pg}, nil
	})
	if err != nil {
		return fetched{}, err
	}
	f := fetched{calls: []call{{pages: pages}}}
	var words []string
	for _, n := range notes {
		words = append(words, n...)
	}
	if len(files) == 0 {
		words = append(words, fmt.Sprintf("no export's files cover the days from %s to %s", from.Format(time.DateOnly), until.Format(time.DateOnly)))
	}
	f.note = strings.Join(words, "; ")
	return f, nil
}

// chooseRuns chooses the files to read of an export's listing: in each
// period's folder (imports.PlaceInExport), the newest run only, or its
// costs would be summed twice. A run folder with no manifest.json where
// other runs of the period have one is still being written, and waits for
// the next run. Only the periods that reach the cost window [from, until]
// are read. It returns the files, and words on what it left out: Parquet
// files, and files in no period's folder.
func chooseRuns(blobs []exportBlob, from, until time.Time) ([]exportBlob, []string) {
	type run struct {
		files    []exportBlob
		newest   time.Time
		manifest bool
	}
	type period struct {
		start, end time.Time
		runs       map[string]*run
	}
	periods := map[string]*period{}
	var keys []string
	parquet, unplaced := 0, 0
	for _, b := range blobs {
		lower := strings.ToLower(b.name)
		base := path.Base(lower)
		data := strings.HasSuffix(lower, ".csv") || strings.HasSuffix(lower, ".csv.gz") || strings.HasSuffix(lower, ".gz")
		place, placed := imports.PlaceInExport(b.name)
		switch {
		case strings.HasSuffix(lower, ".parquet"):
			parquet++
			continue
		case !placed && data:
			unplaced++
			continue
		case !placed || !data && base != "manifest.json" && base != "_manifest.json":
			continue
		}
		pe := periods[place.Period]
		if pe == nil {
			pe = &period{start: place.Start, end: place.End, runs: map[string]*run{}}
			periods[place.Period] = pe
			keys = append(keys, place.Period)
		}
		// A file in the period's folder is a run of its own (its parts
		// one run); a folder in it holds one run, and its manifest.
		if !data && !place.InFolder {
			continue
		}
		runKey := place.Run
		ru := pe.runs[runKey]
		if ru == nil {
			ru = &run{}
			pe.runs[runKey] = ru
		}
		if !data {
			ru.manifest = true
			continue
		}
		ru.files = append(ru.files, b)
		if b.modified.After(ru.newest) {
			ru.newest = b.modified
		}
	}
	slices.Sort(keys)
	var out []exportBlob
	for _, key := range keys {
		pe := periods[key]
		if pe.start.After(until) || pe.end.Before(from.Truncate(24*time.Hour)) {
			continue
		}
		manifests := false
		for _, ru := range pe.runs {
			manifests = manifests || ru.manifest
		}
		var best *run
		bestKey := ""
		for k, ru := range pe.runs {
			if len(ru.files) == 0 || manifests && !ru.manifest {
				continue
			}
			if best == nil || ru.newest.After(best.newest) || ru.newest.Equal(best.newest) && k > bestKey {
				best, bestKey = ru, k
			}
		}
		if best != nil {
			files := slices.Clone(best.files)
			slices.SortFunc(files, func(a, b exportBlob) int { return cmp.Compare(a.name, b.name) })
			out = append(out, files...)
		}
	}
	var notes []string
	if parquet > 0 {
		notes = append(notes, fmt.Sprintf("%d Parquet %s left alone: pal reads exports in CSV (the export's format)", parquet, plural(parquet, "file", "files")))
	}
	if unplaced > 0 {
		notes = append(notes, fmt.Sprintf("%d CSV %s in no period's folder (YYYYMMDD-YYYYMMDD) left alone: pal reads the folders a Cost Management export writes", unplaced, plural(unplaced, "file", "files")))
	}
	return out, notes
}
