// Package azure recognises partners on Azure (SPEC.md section 9): it folds
// each tenant's management-group tree, security groups, role assignments
// with their PIM activations, and consumption; it answers who is recognised
// for a resource at any instant and why, and sums a month of consumption
// into the Azure report with its Money.
//
// Recognition follows an eligible role's scope, not ownership, so it knows
// nothing of Power Platform resources. What it needs of the rest of the
// log — the partner directory and each account's history of link,
// disabled and deleted — it reads through Accounts, which the Power
// Platform engine (internal/attribution) implements and which folds the
// accounts once for both.
package azure
