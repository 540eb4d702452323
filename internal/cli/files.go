package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
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
	return writeFilesAtomically([]string{path}, func(ws []io.Writer) error { return fn(ws[0]) })
}

// writeFilesAtomically writes several files at once through fn, as
// writeFileAtomically writes one: each is renamed once fn has written
// them all.
func writeFilesAtomically(paths []string, fn func(ws []io.Writer) error) error {
	tmps := make([]*os.File, len(paths))
	ws := make([]io.Writer, len(paths))
	bufs := make([]*bufio.Writer, len(paths))
	defer func() {
		for _, tmp := range tmps {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}
	}()
	for i, path := range paths {
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
		if err != nil {
			return err
		}
		tmps[i], bufs[i] = tmp, bufio.NewWriterSize(tmp, 1<<20)
		ws[i] = bufs[i]
	}
	if err := fn(ws); err != nil {
		return err
	}
	for i, tmp := range tmps {
		if err := bufs[i].Flush(); err != nil {
			return err
		}
		if err := tmp.Chmod(0o644); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
	}
	for i, tmp := range tmps {
		if err := os.Rename(tmp.Name(), paths[i]); err != nil {
			return err
		}
		tmps[i] = nil
	}
	return nil
}

// writeJSONRows writes a report, a struct whose large fields are lists of
// rows, as writeJSON does, byte for byte, but a row at a time: the indented
// text of the whole report is never held, only that of one row.
func writeJSONRows(w io.Writer, report any) error {
	v := reflect.ValueOf(report)
	t := v.Type()
	if t.Kind() != reflect.Struct {
		return writeJSON(w, report)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString("{")
	first := true
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		fv := v.Field(i)
		if !f.IsExported() || name == "-" || opts == "omitempty" && isEmpty(fv) {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !first {
			bw.WriteString(",")
		}
		first = false
		key, _ := json.Marshal(name)
		fmt.Fprintf(bw, "\n  %s: ", key)
		if fv.Kind() == reflect.Slice && !fv.IsNil() && fv.Len() > 0 {
			bw.WriteString("[")
			if err := writeJSONElements(bw, fv); err != nil {
				return err
			}
			bw.WriteString("\n  ]")
			continue
		}
		value, err := json.MarshalIndent(fv.Interface(), "  ", "  ")
		if err != nil {
			return err
		}
		bw.Write(value)
	}
	if first {
		bw.WriteString("}\n")
	} else {
		bw.WriteString("\n}\n")
	}
	return bw.Flush()
}

// writeJSONElements writes the elements of a slice, indented, separated by
// commas. A report's rows are many (a million resources' in an Azure
// report): a worker a core marshals the next run of them, and the runs are
// written in order.
func writeJSONElements(w io.Writer, slice reflect.Value) error {
	const run = 1024
	n, workers := slice.Len(), runtime.GOMAXPROCS(0)
	runs := make([][]byte, workers)
	errs := make([]error, workers)
	for start := 0; start < n; start += run * workers {
		var wg sync.WaitGroup
		for k := range workers {
			from, to := start+k*run, min(start+(k+1)*run, n)
			wg.Go(func() {
				buf := runs[k][:0]
				// An encoder a worker marshals a row in place, where
				// json.Marshal would copy both the row and its text.
				var text, ind bytes.Buffer
				enc := json.NewEncoder(&text)
				for j := from; j < to; j++ {
					text.Reset()
					if err := enc.Encode(slice.Index(j).Addr().Interface()); err != nil {
						errs[k] = err
						return
					}
					row := bytes.TrimSuffix(text.Bytes(), []byte("\n"))
					if j > 0 {
						buf = append(buf, ',')
					}
					buf = append(buf, "\n    "...)
					var flat bool
					if buf, flat = indentFlat(buf, row, "    "); !flat {
						ind.Reset()
						json.Indent(&ind, row, "    ", "  ")
						buf = append(buf, ind.Bytes()...)
					}
				}
				runs[k] = buf
			})
		}
		wg.Wait()
		for k := range workers {
			if errs[k] != nil {
				return errs[k]
			}
			if _, err := w.Write(runs[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// indentFlat appends an object as json.Marshal wrote it, indented as
// json.Indent(dst, object, prefix, "  ") would, when it is flat: its
// members strings, numbers, booleans or null, as a report's rows are. It
// returns dst unchanged and false for any other value. Indenting is only
// telling a string's bytes from the rest; json.Indent, which reads any
// JSON, takes twice as long as marshalling the row.
func indentFlat(dst, object []byte, prefix string) ([]byte, bool) {
	n := len(object)
	if n < 3 || object[0] != '{' || object[n-1] != '}' {
		return dst, false
	}
	start := len(dst)
	member := func() { dst = append(append(append(dst, '\n'), prefix...), "  "...) }
	dst = append(dst, '{')
	member()
	for i := 1; i < n-1; i++ {
		switch c := object[i]; c {
		case '"':
			// The string up to its closing quote, escapes and all.
			j := i + 1
			for object[j] != '"' {
				if object[j] == '\\' {
					j++
				}
				j++
			}
			dst = append(dst, object[i:j+1]...)
			i = j
		case ',':
			dst = append(dst, ',')
			member()
		case ':':
			dst = append(dst, ':', ' ')
		case '{', '[':
			return dst[:start], false
		default:
			dst = append(dst, c)
		}
	}
	return append(append(append(dst, '\n'), prefix...), '}'), true
}

// isEmpty is what omitempty leaves out.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map, reflect.String, reflect.Array:
		return v.Len() == 0
	case reflect.Struct:
		return false
	}
	return v.IsZero()
}
