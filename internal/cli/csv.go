package cli

import (
	"encoding/csv"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/palproject/pal/internal/api"
)

// writeCSV writes a slice of structs as CSV: a header of the fields' JSON
// names, then a line a row. Times are RFC 3339, amounts as printed, lists
// joined by ";", a nested record as its named fields.
func writeCSV(w io.Writer, rows any) error {
	v := reflect.ValueOf(rows)
	t := v.Type().Elem()
	var fields []int
	var header []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fields = append(fields, i)
		header = append(header, name)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	record := make([]string, len(fields))
	for r := range v.Len() {
		for k, i := range fields {
			record[k] = csvCell(v.Index(r).Field(i))
			if !numeric(v.Index(r).Field(i)) {
				record[k] = api.CSVText(record[k])
			}
		}
		if err := cw.Write(record); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// numeric reports whether a field is a number (a pointer to one too),
// which a spreadsheet reads as one, its sign included.
func numeric(v reflect.Value) bool {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Float64, reflect.Bool:
		return true
	}
	return false
}

func csvCell(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return stamp(x)
	case fmt.Stringer:
		return x.String()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = csvCell(v.Index(i))
		}
		return strings.Join(parts, ";")
	case reflect.Struct:
		// A nested record: its fields, named, that say something.
		var parts []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			if c := csvCell(v.Field(i)); c != "" {
				parts = append(parts, name+"="+c)
			}
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprint(v.Interface())
}
