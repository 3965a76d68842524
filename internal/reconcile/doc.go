// Package reconcile is the sgrules engine: it makes EC2 security group rules
// match the declared rule sources, level-based. A Request only names what to
// look at; the engine always re-reads the current sources, the ledger and the
// EC2 rules of the groups involved, plans, and applies make-before-break.
//
// It may import pkg/rules only (and the standard library): never an
// adapter, the SDK or a shell.
package reconcile
