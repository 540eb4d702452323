// Package storetest is the conformance suite of the store contract: every
// backend runs Exercise, so that both behave the same.
package storetest
