// Package api is the contract of pal's HTTP API: the answers the service
// writes and the command line reads, and Client, the typed client through
// which the command line asks the service, one method a route. Both speak
// of one type, so a field the service adds is one the command line sees,
// and a copy cannot drift.
package api
