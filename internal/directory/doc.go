// Package directory is pal's partner directory: the organisations that
// partner.registered events register, the location IDs each lists and
// listed, and partner.metrics' capability-score inputs. It is the state of
// the log's records of no tenant, which every tenant's fold reads; the
// engine holds one, and a late directory record folds it again (Adopt says
// which organisations' histories changed). Links stay with the accounts
// that hold them, in each tenant's partition of the engine: a link is a
// fact of its tenant.
package directory
