// Package attributiontest makes logs for the property tests of the engine
// and of the service: the same generator serves both, so that both are held
// to the same answers.
package attributiontest
