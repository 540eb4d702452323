package event

import (
	"testing"
	"time"
)

// TestRFC3339ToTheLetter: a log's times are RFC 3339 as its section 5.6
// writes them, no more and no less.
func TestRFC3339ToTheLetter(t *testing.T) {
	utc := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t.UTC()
	}
	for s, want := range map[string]time.Time{
		"2026-01-06T09:00:00Z":           utc("2026-01-06T09:00:00Z"),
		"2026-01-06t09:00:00z":           utc("2026-01-06T09:00:00Z"),
		"2026-01-06T10:00:00.25+01:00":   utc("2026-01-06T09:00:00.25Z"),
		"2026-01-06T09:00:00-00:00":      utc("2026-01-06T09:00:00Z"),
		"2016-12-31T23:59:60Z":           utc("2016-12-31T23:59:59.999999999Z"),
		"2016-12-31T23:59:60.5Z":         utc("2016-12-31T23:59:59.999999999Z"),
		"2017-01-01T00:59:60+01:00":      utc("2016-12-31T23:59:59.999999999Z"),
		"2026-01-06T09:00:00.123456789Z": utc("2026-01-06T09:00:00.123456789Z"),
	} {
		got, ok := ParseRFC3339(s)
		if !ok || !got.Equal(want) {
			t.Errorf("ParseRFC3339(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{
		"2026-01-06T9:00:00Z",        // a one-digit hour
		"2026-01-06T09:00:00,5Z",     // a comma before the fraction
		"2026-01-06T09:00:00.Z",      // a dot and no digit
		"2026-01-06 09:00:00Z",       // a space for T
		"2026-01-06T09:00:00",        // no offset
		"2026-01-06T09:00:00+0100",   // an offset without its colon
		"2026-01-06T09:00:00+01:00 ", // a space after it
		"26-01-06T09:00:00Z",         // a two-digit year
		"2026-1-06T09:00:00Z",        // a one-digit month
		"2026-02-30T09:00:00Z",       // no such day
		"2026-01-06T24:00:00Z",       // no such hour
		"2026-01-06T09:00:61Z",       // no such second
		"2026-01-06",                 // a date alone
		"",
	} {
		if got, ok := ParseRFC3339(s); ok {
			t.Errorf("ParseRFC3339(%q) = %v, want it refused", s, got)
		}
	}
	line := `{"type":"usage","time":"2026-01-06T9:00:00Z","tenant":"t","resource":"r","user":"u"}`
	if _, rf := Decode([]byte(line), 1); rf == nil || rf.Code != InvalidTime {
		t.Errorf("Decode(%s) = %v, want invalid_time", line, rf)
	}
}
