// Package store is the contract between pal's service and the databases
// that keep its log: an append-only table of events with sequence numbers
// and unique ids, the engine's latest snapshot, and the hashes of the tokens
// pal issues. Two backends implement it, sqlite and postgres, and one
// conformance suite, storetest, runs against both.
package store
