// Package api holds the answers of pal's HTTP API that the service writes
// and the command line reads, so that both speak of one type: a field the
// service adds is one the command line sees.
package api
