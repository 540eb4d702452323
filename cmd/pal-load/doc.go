// Command pal-load measures the service under load on loopback, on the
// store named by --db (an SQLite file or a postgres:// URL): link writes
// per second with their p50 and p99 latency; usage events ingested per
// second in batches, until --usage-events were pushed over --tenants
// tenants, and the resident memory then; reads of a small tenant while
// usage is ingested at full speed; and late control events in that small
// tenant, with the other tenants' events in the store; and last, in a
// process of its own, a cold start of the store (its whole log folded, as
// after an upgrade that changes the snapshot's shape): the time, and the
// peak and held resident memory. It runs the real HTTP server in process
// and bounded client loops, and stops by itself.
//
// With --processes N (PostgreSQL), N processes serve the one database, the
// clients spread over them, and pal-load measures the link writes and the
// usage ingest in total, and each process's resident memory.
//
//	go run ./cmd/pal-load --db /tmp/load.db --seconds 10
//	go run ./cmd/pal-load --db 'postgres://postgres@127.0.0.1:5432/test' --seconds 10
//	go run ./cmd/pal-load --db 'postgres://postgres@127.0.0.1:5432/test' --processes 3
package main
