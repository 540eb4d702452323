// Package cli is the pal command line: one file and one flag set per
// subcommand. Run is the whole program but for signals and the exit call, so
// tests run it as a user would.
package cli
