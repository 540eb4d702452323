// Package attribution is pal's engine for Power Platform. It folds the
// events of the log, in time order, into the state of every tenant and
// partner organisation, and decides at each instant who is credited for
// every resource and why (SPEC.md section 4). It keeps the history of each
// resource's credit as intervals. It does no I/O: the caller feeds it
// events and reads answers.
//
// The accounts it folds (links, disabled, deleted) serve Azure recognition
// too: an Engine hands Azure's events to its azure.Engine (Azure), which
// reads the accounts and the partner directory through azure.Accounts.
package attribution
