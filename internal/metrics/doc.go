// Package metrics turns credited usage into the monthly metrics of SPEC.md
// section 5 (resource and workload MAU, profiles, MCV) and the Business
// Applications Partner Capability Score of section 6.
//
// Distinct users are counted exactly: user identifiers are numbered once in a
// dictionary, from 0 within each tenant, and each (month, tenant, resource,
// location) keeps a compressed bitmap of the numbers seen, so memory grows
// with the distinct users and resources of a month, not with the number of
// usage events.
package metrics
