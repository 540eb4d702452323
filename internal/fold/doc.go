// Package fold replays pal's log: it is the one place that folds records
// into answers. It orders them (time, then log order, duplicates by id
// dropped: Order), keeps the partner directory and each tenant's partition
// of the engine, folds again what a late record changes (a tenant, or the
// directory and the tenants linked to it), and keeps the verdict on every
// record, the monthly aggregates and the outbox of credit changes.
//
// A State reads the log through a Source: the service's store, or records
// held in memory (Records). The command line's replay, the service, the
// what-if and the gate fold through it; internal/server keeps HTTP, the
// group commit and the two copies readers and writers swap, and nothing of
// the fold.
package fold
