// Package event defines pal's event log, format v1 (SPEC.md section 3): the
// event types and their fields, the resource kinds, the refusal codes, the
// validation of a single line, and a streaming NDJSON reader and writer.
//
// The package knows nothing of state: it refuses what is wrong with a line on
// its own (malformed JSON, a missing field, a bad value). Checks against the
// state at the event's time belong to the attribution engine.
package event
