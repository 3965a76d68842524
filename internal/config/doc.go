// Package config is the one reader of the environment: it reads and checks
// the variables of each function (Reconcile, Drift, Flowlogs) and of the
// CLI into a typed Config. Both Lambda mains and the CLI go through it, so
// they agree on every default and every refusal; the template test uses
// Functions to check that every variable a function reads is set in
// template.yaml.
//
// It builds nothing: no AWS client, credentials or engine (internal/fleetrt
// builds those from a Config). It may import the pure core and the engine's
// types (for its defaults and checks), and aws/arn to parse ARNs; never the
// adapters, the AWS service packages, the shells or development tooling
// (internal/dev/layout tests it).
package config
