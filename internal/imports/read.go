package imports

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	xunicode "golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Problem is a row that was not imported, and why: the rest of the file
// is. A problem with Skipped rows and no line is instead one summary of a
// file's rows that hold nothing pal reads (a cost export's purchases), so
// that they are counted rather than listed one by one; one with neither
// is about the import as a whole (a snapshot's scopes, a flag it needs).
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Reason  string `json:"reason"`
	Skipped int    `json:"skipped,omitempty"`
}

func (p Problem) String() string {
	switch {
	case p.Skipped > 0:
		return fmt.Sprintf("%s: %d %s skipped: %s", p.File, p.Skipped, plural(p.Skipped, "row", "rows"), p.Reason)
	case p.Line > 0:
		return fmt.Sprintf("%s line %d: %s", p.File, p.Line, p.Reason)
	case p.File != "":
		return fmt.Sprintf("%s: %s", p.File, p.Reason)
	}
	return p.Reason
}

// Row reports whether the problem is of one row, which was not imported.
func (p Problem) Row() bool { return p.Line > 0 }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// record is one row of an export, its field names kept as keys (lower
// case, no spaces, underscores or dashes) so that "Date", "date" and
// "Charge Date" are found alike. A JSON record holds its fields; a CSV
// record its row and the file's header, shared by every row.
type record struct {
	file   string
	line   int
	fields map[string]any
	cols   map[string]int
	row    []string
	// sep is what separates a CSV file's fields (0 in JSON): a file of
	// semicolons or tabs comes from a locale of decimal commas and days
	// before months.
	sep rune
}

// value returns a field's value, nil when the record has none. The key is
// made on the stack: the same few names are asked of every row of a file
// of millions.
func (r record) value(name string) any {
	var buf [64]byte
	key := appendFieldKey(buf[:0], name)
	if r.cols != nil {
		if i, ok := r.cols[string(key)]; ok {
			return r.row[i]
		}
		return nil
	}
	return r.fields[string(key)]
}

// fieldKey is a field name as records keep it: lower case, without
// spaces, underscores, dashes or a byte-order mark.
func fieldKey(name string) string { return string(appendFieldKey(nil, name)) }

func appendFieldKey(dst []byte, name string) []byte {
	for _, r := range name {
		switch {
		case r == ' ' || r == '_' || r == '-' || r == '\ufeff':
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			dst = append(dst, byte(r))
		default:
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
	}
	return dst
}

// str returns the first of the named fields that holds a value, as a
// string; "" when none does.
func (r record) str(names ...string) string {
	for _, n := range names {
		switch v := r.value(n).(type) {
		case nil:
		case string:
			if s := strings.TrimSpace(v); s != "" {
				return s
			}
		case json.Number:
			return v.String()
		case bool:
			return fmt.Sprint(v)
		}
	}
	return ""
}

// has reports whether the record has a field, empty or not.
func (r record) has(name string) bool {
	if r.cols != nil {
		_, ok := r.cols[fieldKey(name)]
		return ok
	}
	_, ok := r.fields[fieldKey(name)]
	return ok
}

// get returns a field as it was read: for JSON, nested objects and arrays.
func (r record) get(name string) any { return r.value(name) }

// sub returns a nested object of a record as a record: a JSON object, or
// the text Windows PowerShell 5.1's Export-Csv writes for one.
func (r record) sub(name string) (record, bool) {
	m, ok := r.value(name).(map[string]any)
	if !ok {
		if s, text := r.value(name).(string); text {
			m, ok = psObject(s)
		}
	}
	if !ok {
		return record{}, false
	}
	return r.with(m), true
}

// psObject reads the text Windows PowerShell 5.1's Export-Csv writes for
// a nested object, "@{id=…; displayName=…; type=User}", into its fields
// (each a string; one nested deeper stays its text, read the same way when
// asked). ok is false for any other text.
func psObject(s string) (map[string]any, bool) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(s), "@{")
	if !ok {
		return nil, false
	}
	if inner, ok = strings.CutSuffix(inner, "}"); !ok {
		return nil, false
	}
	m := map[string]any{}
	field := func(part string) {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k != "" {
			m[k] = v
		}
	}
	depth, from := 0, 0
	for i := 0; i < len(inner); i++ {
		switch inner[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ';':
			if depth == 0 {
				field(inner[from:i])
				from = i + 1
			}
		}
	}
	field(inner[from:])
	return m, true
}

// with returns a record of the same file and line holding other fields.
// An Azure Resource Manager object (REST, and the az CLI for some
// commands) holds its fields under "properties", and Microsoft Graph
// PowerShell's objects hold those it has no property for (@odata.type,
// userPrincipalName) under "AdditionalProperties", where the az CLI's
// flattened objects hold them at the top: they are read at the top too,
// where the top has no field of that name, so that every source reads
// every shape alike.
func (r record) with(m map[string]any) record {
	f := make(map[string]any, len(m))
	for k, v := range m {
		f[fieldKey(k)] = v
	}
	for _, nested := range []string{"properties", "additionalproperties"} {
		props, ok := f[nested].(map[string]any)
		if !ok {
			continue
		}
		for k, v := range props {
			if k := fieldKey(k); f[k] == nil {
				f[k] = v
			}
		}
	}
	return record{file: r.file, line: r.line, fields: f}
}

// list returns a nested array of objects of a JSON record as records.
func (r record) list(name string) []record {
	a, _ := r.value(name).([]any)
	var out []record
	for _, v := range a {
		if m, ok := v.(map[string]any); ok {
			out = append(out, r.with(m))
		}
	}
	return out
}

func (r record) problem(format string, args ...any) Problem {
	return Problem{File: r.file, Line: r.line, Reason: fmt.Sprintf(format, args...)}
}

// eachRecord reads an export, JSON or CSV, told apart by their first
// character, gzipped or not, and calls fn with each record in file order, until fn says
// stop (false); a row that cannot be read goes to bad. The text may be
// UTF-8, with or without a byte-order mark, or UTF-16 (what Windows
// PowerShell's Out-File and > write). A CSV file is read a row at a time,
// however large.
func eachRecord(name string, in io.Reader, restate func([]byte) []byte, fn func(record) bool, bad func(Problem)) error {
	br := bufio.NewReaderSize(in, 1<<20)
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		// A Cost Management export compressed with gzip.
		z, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer z.Close()
		br = bufio.NewReaderSize(z, 1<<20)
	}
	if head, _ := br.Peek(4); isUTF16(head) {
		br = bufio.NewReaderSize(transform.NewReader(br, utf16Decoder(head)), 1<<20)
	}
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	var first byte
	for {
		b, err := br.Peek(1)
		if errors.Is(err, io.EOF) {
			return nil // empty
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n' {
			br.Discard(1)
			continue
		}
		first = b[0]
		break
	}
	if first == '[' || first == '{' {
		data, err := io.ReadAll(br)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if restate != nil {
			data = restate(data)
		}
		recs, probs, err := readJSON(name, data)
		for _, p := range probs {
			bad(p)
		}
		for _, r := range recs {
			if !fn(r) {
				break
			}
		}
		return err
	}
	return readCSV(name, br, fn, bad)
}

// isUTF16 reports whether a file begins as UTF-16 text: with a byte-order
// mark, or, without one, with the zero byte every ASCII character has.
func isUTF16(head []byte) bool {
	if len(head) < 2 {
		return false
	}
	switch {
	case head[0] == 0xff && head[1] == 0xfe, head[0] == 0xfe && head[1] == 0xff:
		return true
	case len(head) == 4 && head[0] != 0 && head[1] == 0 && head[2] != 0 && head[3] == 0:
		return true // little-endian, no mark
	case len(head) == 4 && head[0] == 0 && head[1] != 0 && head[2] == 0 && head[3] != 0:
		return true // big-endian, no mark
	}
	return false
}

// utf16Decoder decodes UTF-16 in the byte order its mark says (dropping
// the mark), or, without one, the order its zero bytes show.
func utf16Decoder(head []byte) transform.Transformer {
	order, bom := xunicode.LittleEndian, xunicode.IgnoreBOM
	if head[0] == 0 || head[0] == 0xfe {
		order = xunicode.BigEndian
	}
	if head[0] == 0xff || head[0] == 0xfe {
		bom = xunicode.ExpectBOM
	}
	return xunicode.UTF16(order, bom).NewDecoder().Transformer
}

// restatePages turns a JSON file of an API's pages (one, or several
// concatenated, as a script following nextLink writes them) into records
// with convert, which says whether a page is of its shape: the file of
// another shape, or of a page that is not, is returned as it is
// (Source.restate).
func restatePages(data []byte, convert func(page []byte) ([]byte, bool)) []byte {
	var out [][]byte
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var page json.RawMessage
		if err := dec.Decode(&page); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return data
		}
		recs, ok := convert(page)
		if !ok {
			return data
		}
		out = append(out, recs)
	}
	if len(out) == 0 {
		return data
	}
	return bytes.Join(out, []byte("\n"))
}

// readJSON reads one or more JSON documents, one after another: arrays of
// objects, Azure REST pages (an object whose "value" holds them; the pages
// of a nextLink concatenated), single objects (a resource alone, or
// PowerShell's ConvertTo-Json of one object), and so one object a line
// (JSON Lines). Each record carries the line it begins on. A document cut
// short gives its whole records and reports the one it ends in; a line of
// JSON Lines that is not an object is reported, the others read.
func readJSON(name string, data []byte) ([]record, []Problem, error) {
	lines := lineCounter{data: data}
	var recs []record
	add := func(v any, offset int64) {
		if m, ok := v.(map[string]any); ok {
			recs = append(recs, record{file: name, line: lines.at(offset)}.with(m))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		off := skipSpace(data, dec.InputOffset())
		if off == int64(len(data)) {
			return recs, nil, nil
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if arr, cut, ok := elements(data[off:]); ok && cut >= 0 && len(arr) > 0 {
				for _, e := range arr {
					add(e.value, off+e.offset)
				}
				return recs, []Problem{{File: name, Line: lines.at(off + cut), Reason: "the file ends in the middle of this record: a truncated export"}}, nil
			}
			return readJSONLines(name, data)
		}
		if arr, _, ok := elements(raw); ok {
			for _, e := range arr {
				add(e.value, off+e.offset)
			}
			continue
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		if d.Decode(&v) == nil {
			add(v, off)
		}
	}
}

// readJSONLines reads one JSON object a line, each on its own, a bad one
// reported.
func readJSONLines(name string, data []byte) ([]record, []Problem, error) {
	var recs []record
	var probs []Problem
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(text))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			probs = append(probs, Problem{File: name, Line: line, Reason: fmt.Sprintf("not a JSON object (%v): a truncated or broken line", err)})
			continue
		}
		recs = append(recs, record{file: name, line: line}.with(m))
	}
	if len(recs) == 0 && len(probs) > 0 {
		return nil, nil, fmt.Errorf("%s is neither JSON nor one JSON object a line: %s", name, probs[0].Reason)
	}
	return recs, probs, sc.Err()
}

// skipSpace returns the offset of the first byte at or after off that is
// not white space.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && (data[off] == ' ' || data[off] == '\n' || data[off] == '\r' || data[off] == '\t') {
		off++
	}
	return off
}

// lineCounter turns offsets into line numbers, counting on from the last
// offset asked, since records are met in file order.
type lineCounter struct {
	data []byte
	off  int64
	line int // 0 before the first
}

func (c *lineCounter) at(off int64) int {
	if c.line == 0 || off < c.off {
		c.off, c.line = 0, 1
	}
	c.line += bytes.Count(c.data[c.off:off], []byte("\n"))
	c.off = off
	return c.line
}

// element is a value of a JSON array and where it begins.
type element struct {
	value  any
	offset int64
}

// elements reads the values of a top-level JSON array, or of the "value"
// array of a top-level object, with their offsets; false for any other
// document. An array cut short gives the values before the cut, and the
// offset of the value it cuts (-1 when whole).
func elements(data []byte) (arr []element, cut int64, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, -1, false
	}
	if tok == json.Delim('{') {
		// Find "value": an array; skip every other member.
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, -1, false
			}
			if key != "value" {
				var skip json.RawMessage
				if dec.Decode(&skip) != nil {
					return nil, -1, false
				}
				continue
			}
			if t, err := dec.Token(); err != nil || t != json.Delim('[') {
				return nil, -1, false
			}
			arr, cut := arrayElements(dec, data)
			return arr, cut, true
		}
		return nil, -1, false
	}
	if tok != json.Delim('[') {
		return nil, -1, false
	}
	arr, cut = arrayElements(dec, data)
	return arr, cut, true
}

func arrayElements(dec *json.Decoder, data []byte) ([]element, int64) {
	var out []element
	for dec.More() {
		// The element begins at the first non-space byte after the
		// decoder's offset (past a comma).
		off := skipSpace(data, dec.InputOffset())
		if off < int64(len(data)) && data[off] == ',' {
			off = skipSpace(data, off+1)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return out, off
		}
		out = append(out, element{v, off})
	}
	return out, -1
}

// readCSV reads a CSV file with a header (after Export-Csv's #TYPE line,
// if any), a row at a time; a row of another length (a truncated last
// line) is reported and skipped.
func readCSV(name string, in *bufio.Reader, fn func(record) bool, bad func(Problem)) error {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.Comma = delimiter(in)
	header, err := r.Read()
	if err == nil && len(header) == 1 && strings.HasPrefix(header[0], "#TYPE ") {
		// Windows PowerShell's Export-Csv begins with the type it wrote.
		header, err = r.Read()
	}
	if err != nil {
		return fmt.Errorf("%s: not a CSV file with a header: %w", name, err)
	}
	cols := make(map[string]int, len(header))
	for i, h := range header {
		if _, dup := cols[fieldKey(h)]; !dup {
			cols[fieldKey(h)] = i
		}
	}
	for {
		row, err := r.Read()
		line, _ := r.FieldPos(0)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			bad(Problem{File: name, Line: line, Reason: fmt.Sprintf("not a CSV row: %v", err)})
			continue
		}
		if slices.Equal(row, header) {
			continue // exports concatenated, each with its header
		}
		if len(row) != len(header) {
			bad(Problem{File: name, Line: line, Reason: fmt.Sprintf("%d fields where the header names %d: a truncated or broken row", len(row), len(header))})
			continue
		}
		if !fn(record{file: name, line: line, cols: cols, row: row, sep: r.Comma}) {
			return nil
		}
	}
}

// delimiter reads which character separates a CSV file's fields: the
// one Excel's "sep=" line names (the line is consumed), or a semicolon or
// a tab where the header holds more of them than commas (Excel saves so
// in locales that write a decimal comma); a comma otherwise.
func delimiter(in *bufio.Reader) rune {
	line, _ := in.Peek(4096)
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, "\r")
	if sep, ok := bytes.CutPrefix(line, []byte("sep=")); ok && len(sep) == 1 {
		in.Discard(len(line))
		in.ReadString('\n')
		return rune(sep[0])
	}
	best, most := ',', bytes.Count(line, []byte(","))
	for _, c := range []rune{';', '\t'} {
		if n := bytes.Count(line, []byte(string(c))); n > most {
			best, most = c, n
		}
	}
	return best
}

// slashOrders reads, for each file, which way its dates of slashes go
// (1/2/2006, with a time or not): the day first when one of them has a
// first number above 12, the month first when one has a second above 12.
// Where none tells, the month first, as US exports and Windows PowerShell
// write them, but the day first in a file of semicolons, which a
// spreadsheet of a locale that writes days first saved. A file whose
// dates go both ways is named in mixed.
func slashOrders(dates iter.Seq2[record, string]) (dayFirst map[string]bool, mixed []Problem) {
	type seen struct {
		day, month bool
		sep        rune
		first      record
	}
	files := map[string]*seen{}
	var order []string
	for r, s := range dates {
		a, b, ok := slashed(s)
		if !ok {
			continue
		}
		f := files[r.file]
		if f == nil {
			f = &seen{sep: r.sep, first: r}
			files[r.file] = f
			order = append(order, r.file)
		}
		f.day = f.day || a > 12
		f.month = f.month || b > 12
	}
	dayFirst = map[string]bool{}
	for _, name := range order {
		f := files[name]
		switch {
		case f.day && f.month:
			mixed = append(mixed, Problem{File: name, Reason: "its dates put the day first on some rows and the month first on others: they are read with the month first; check them, or export the dates as 2006-01-02"})
		case f.day:
			dayFirst[name] = true
		case !f.month:
			dayFirst[name] = f.sep == ';'
		}
	}
	return dayFirst, mixed
}

// slashed returns the first two numbers of a date of slashes.
func slashed(s string) (a, b int, ok bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		s = s[:i]
	}
	x, rest, ok1 := strings.Cut(s, "/")
	y, year, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || len(year) != 4 || !allDigits(year) || !allDigits(x) || !allDigits(y) || len(x) == 0 || len(y) == 0 || len(x) > 2 || len(y) > 2 {
		return 0, 0, false
	}
	a, _ = strconv.Atoi(x)
	b, _ = strconv.Atoi(y)
	return a, b, true
}

// parseTimeOrdered reads an instant as parseTime does, a date of slashes
// with its day first when dayFirst.
func parseTimeOrdered(s string, dayFirst bool) (time.Time, bool) {
	if a, b, ok := slashed(s); ok && dayFirst {
		// Swapped, the date reads as parseTime reads the month first.
		s = strings.TrimSpace(s)
		_, rest, _ := strings.Cut(s, "/")
		_, rest, _ = strings.Cut(rest, "/")
		s = strconv.Itoa(b) + "/" + strconv.Itoa(a) + "/" + rest
	}
	return parseTime(s)
}

// timeLayouts are the ways exports write an instant; those without an
// offset are read in UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"1/2/2006 3:04:05 PM",
	"1/2/2006 15:04:05",
	"1/2/2006 15:04",
	"1/2/2006",
	"2006-01-02",
	"20060102",
}

// parseTime reads an instant as an export writes it.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if t, ok := parseMSDate(s); ok {
		return t, true
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// parseMSDate reads the dates of Windows PowerShell 5.1's ConvertTo-Json,
// "\/Date(1700000000000)\/" (the JSON escape read, "/Date(…)/"):
// milliseconds since 1970, perhaps followed by the writer's UTC offset,
// which does not change the instant.
func parseMSDate(s string) (time.Time, bool) {
	inner, ok := strings.CutPrefix(s, "/Date(")
	if !ok {
		return time.Time{}, false
	}
	if inner, ok = strings.CutSuffix(inner, ")/"); !ok {
		return time.Time{}, false
	}
	if i := strings.IndexAny(inner[min(1, len(inner)):], "+-"); i >= 0 {
		inner = inner[:i+1]
	}
	ms, err := strconv.ParseInt(inner, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}
