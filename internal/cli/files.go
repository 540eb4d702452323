package cli

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
)

// dataFile is a file of records of their own (--usage, --consumption):
// Parquet, read a row group at a time from a file, or NDJSON, read as a
// stream, from standard input too. This is the one place that tells the
// two apart.
type dataFile struct {
	io.Closer
	// parquet, when set, reads the Parquet file of size bytes.
	parquet io.ReaderAt
	size    int64
	// lines reads the NDJSON file otherwise.
	lines *bufio.Reader
}

// openData opens the file a flag names (- for standard input).
func openData(env *Env, flag, path string) (*dataFile, error) {
	f, err := env.open(path)
	if err != nil {
		return nil, err
	}
	if ra, ok := f.(interface {
		io.ReaderAt
		Stat() (os.FileInfo, error)
	}); ok && isParquet(ra) {
		st, err := ra.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		return &dataFile{Closer: f, parquet: ra, size: st.Size()}, nil
	}
	in := bufio.NewReader(f)
	if magic, _ := in.Peek(4); string(magic) == "PAR1" {
		f.Close()
		return nil, usagef("--%s %s: a Parquet file is read from a file, not from standard input", flag, path)
	}
	return &dataFile{Closer: f, lines: in}, nil
}

func isParquet(r io.ReaderAt) bool {
	magic := make([]byte, 4)
	_, err := r.ReadAt(magic, 0)
	return err == nil && string(magic) == "PAR1"
}

// writeFileAtomically writes a file through fn into a temporary file beside
// it, renamed at the end: a failure leaves nothing half-written, and a
// reader sees the old file or the whole new one.
func writeFileAtomically(path string, fn func(w io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := fn(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
