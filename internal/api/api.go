package api

import "github.com/palproject/pal/internal/event"

// IngestResult is the answer to a batch of events (SPEC section 8):
// accepted, held until what makes them applicable arrives, duplicates of
// ids already carried, and refused.
type IngestResult struct {
	Accepted   int              `json:"accepted"`
	Held       []*event.Refusal `json:"held"`
	Duplicates int              `json:"duplicates"`
	Refused    []*event.Refusal `json:"refused"`
}
