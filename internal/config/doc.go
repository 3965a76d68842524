// Package config is the one reader of the environment: it reads and checks
// the variables of each function (Reconcile, Drift) and of the CLI into a
// typed Config, and builds the engine and its adapters from it. Both
// Lambda mains and the CLI go through it, so they agree on every default
// and every refusal; the template test uses Functions to check that every
// variable a function reads is set in template.yaml.
//
// It may import the adapters and the engine it builds; never the CLI, the
// shells or development tooling.
package config
