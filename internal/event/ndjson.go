package event

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"time"
)

// MaxLineBytes is the longest line the reader accepts; a longer line is
// refused as malformed and skipped, and reading goes on after it. It
// bounds what one line can make the reader hold, and leaves room for a
// solution.imported listing tens of thousands of resources.
const MaxLineBytes = 16 << 20

// Reader reads a log in format v1 line by line: Next one line at a time,
// Each a few chunks of lines ahead, tens of megabytes at most.
type Reader struct {
	br   *bufio.Reader
	line int
	buf  []byte
}

// NewReader returns a reader of the NDJSON log in r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next event of the log, skipping blank lines. A line that
// is refused comes back as a refusal with a nil event; reading can go on.
// At the end of the log Next returns io.EOF; any other error is an error of
// the underlying reader, wrapped with the line number.
func (r *Reader) Next() (*Event, *Refusal, error) {
	line, n, tooLong, err := r.nextLine()
	if err != nil {
		return nil, nil, err
	}
	ev, rf := decodeLine(line, n, tooLong)
	return ev, rf, nil
}

// nextLine returns the next line that is not blank, trimmed, and its
// number; tooLong, and no text, for a line over MaxLineBytes.
func (r *Reader) nextLine() (line []byte, n int, tooLong bool, err error) {
	for {
		line, tooLong, err := r.readLine()
		if err != nil {
			return nil, 0, false, err
		}
		r.line++
		if tooLong {
			return nil, r.line, true, nil
		}
		if r.line == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			return line, r.line, false, nil
		}
	}
}

// decodeLine decodes line n of a log, or refuses it as too long.
func decodeLine(line []byte, n int, tooLong bool) (*Event, *Refusal) {
	if tooLong {
		return nil, &Refusal{Line: n, Code: Malformed,
			Message: fmt.Sprintf("the line is longer than %d MiB, the most pal reads as one event; a log has one event a line", MaxLineBytes>>20)}
	}
	return Decode(line, n)
}

// Each calls fn with each line of the log in turn: its event, or its
// refusal (the event nil). It returns nil at the end of the log, the
// reader's error, or the first error of fn. This is the one intake loop of
// a log: files, batches posted to the service and what-ifs read through it.
//
// A log of more than a chunk of lines is decoded ahead of fn, a chunk at a
// time by a worker a core; fn still has its lines one by one, in order.
func (r *Reader) Each(fn func(*Event, *Refusal) error) error {
	c := r.readChunk()
	if c.err != nil {
		// A log of less than a chunk: decoded as it is read.
		c.decode()
		return c.give(fn)
	}
	order, work, quit := make(chan *lineChunk, 8), make(chan *lineChunk, 8), make(chan struct{})
	// However Each ends, a panic of fn's too, its goroutines end: the
	// reader before its next chunk (a read under way ends with its
	// source), the workers once it has. The reader is spent then.
	defer close(quit)
	go func() {
		defer close(work)
		defer close(order)
		for ; ; c = r.readChunk() {
			select {
			case order <- c:
			case <-quit:
				return
			}
			work <- c
			if c.err != nil {
				return
			}
			select {
			case <-quit:
				return
			default:
			}
		}
	}()
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for c := range work {
				c.decode()
			}
		}()
	}
	for c := range order {
		if err := c.give(fn); err != nil || c.err != nil {
			return err
		}
	}
	return nil
}

// A chunk of a log holds chunkLines lines, or chunkBytes bytes of them
// and the line that passes that.
const (
	chunkLines = 512
	chunkBytes = 4 << 20
)

// lineChunk is lines of a log: read, then decoded, then given in order.
type lineChunk struct {
	text    []byte
	lines   []chunkLine
	evs     []*Event
	rfs     []*Refusal
	decoded chan struct{}
	// panicked is what Decode panicked with, given to fn's goroutine.
	panicked any
	// err is the reader's error after the lines, io.EOF at the end.
	err error
}

type chunkLine struct {
	n, from, to int
	tooLong     bool
}

// readChunk reads the next chunk of lines that are not blank.
func (r *Reader) readChunk() *lineChunk {
	c := &lineChunk{decoded: make(chan struct{})}
	for len(c.lines) < chunkLines && len(c.text) < chunkBytes {
		line, n, tooLong, err := r.nextLine()
		if err != nil {
			c.err = err
			break
		}
		from := len(c.text)
		c.text = append(c.text, line...)
		c.lines = append(c.lines, chunkLine{n, from, len(c.text), tooLong})
	}
	return c
}

// decode decodes the chunk's lines.
func (c *lineChunk) decode() {
	defer func() {
		c.panicked = recover()
		close(c.decoded)
	}()
	c.evs, c.rfs = make([]*Event, len(c.lines)), make([]*Refusal, len(c.lines))
	for i, l := range c.lines {
		c.evs[i], c.rfs[i] = decodeLine(c.text[l.from:l.to], l.n, l.tooLong)
	}
}

// give calls fn with the chunk's lines once they are decoded, and returns
// fn's first error, or the reader's that ended the chunk (not io.EOF).
func (c *lineChunk) give(fn func(*Event, *Refusal) error) error {
	<-c.decoded
	if c.panicked != nil {
		panic(c.panicked)
	}
	for i := range c.lines {
		if err := fn(c.evs[i], c.rfs[i]); err != nil {
			return err
		}
	}
	if c.err != nil && !errors.Is(c.err, io.EOF) {
		return c.err
	}
	return nil
}

// Line returns the number of the last line read.
func (r *Reader) Line() int { return r.line }

// readLine returns the next line without its end, or io.EOF when there is
// none. A line over MaxLineBytes is read to its end and reported as too long.
func (r *Reader) readLine() (line []byte, tooLong bool, err error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if !tooLong {
			if len(r.buf)+len(chunk) > MaxLineBytes+2 {
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk...)
			}
		}
		switch {
		case err == nil:
			return r.buf, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(r.buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			return r.buf, tooLong, nil
		default:
			return nil, false, fmt.Errorf("read line %d: %w", r.line+1, err)
		}
	}
}

// AppendJSON appends the event as one line of format v1, without the
// newline: type, time and id first, then the fields of its type in the order
// of SPEC.md, leaving out empty optional fields.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"time":`...)
	b = appendString(b, e.Time.UTC().Format(time.RFC3339Nano))
	if e.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, e.ID)
	}
	if e.Imported {
		b = append(b, `,"imported":true`...)
	}
	for _, f := range schemas[e.Type] {
		switch f.kind {
		case stringField:
			v := *e.str(f.name)
			if v == "" && !f.required {
				continue
			}
			b = appendKey(b, f.name)
			b = appendString(b, v)
		case stringsField:
			b = appendKey(b, f.name)
			b = appendJSON(b, e.Locations)
		case intField:
			b = appendKey(b, f.name)
			b = strconv.AppendInt(b, *e.integer(f.name), 10)
		case resourcesField:
			b = appendKey(b, f.name)
			b = appendJSON(b, e.Resources)
		case numberField:
			b = appendKey(b, f.name)
			b = append(b, e.Cost...)
		case timeField:
			b = appendKey(b, f.name)
			b = appendString(b, e.Until.UTC().Format(time.RFC3339Nano))
		}
	}
	return append(b, '}')
}

func appendKey(b []byte, name string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendString(b []byte, s string) []byte {
	if isPlain(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return appendJSON(b, s)
}

// isPlain reports whether s can be written between quotes as it is.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func appendJSON(b []byte, v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		// Strings, string slices and SolutionResource slices always marshal.
		panic(fmt.Sprintf("event: marshal %T: %v", v, err))
	}
	return append(b, out...)
}

// Writer writes events as NDJSON, format v1.
type Writer struct {
	w   *bufio.Writer
	buf []byte
}

// NewWriter returns a writer of NDJSON to w. Call Flush when done.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 64<<10)}
}

// Write writes one event as a line.
func (w *Writer) Write(e *Event) error {
	w.buf = append(e.AppendJSON(w.buf[:0]), '\n')
	_, err := w.w.Write(w.buf)
	return err
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error { return w.w.Flush() }
