// Package server is pal's HTTP service: the link API with the shapes of
// Azure's Microsoft.ManagementPartner API, the event intake, the log export,
// and the attribution, explanation and report queries, each filtered by what
// the caller may see (SPEC.md section 8). The log in the store is the source
// of truth; the engine's state is folded from it and kept current.
package server
