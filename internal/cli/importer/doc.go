// Package importer turns the rules a security group has now into a rule
// file that declares them: the pure half of "sgrules import".
//
// Permissions that share group, direction, protocol, ports and
// description become one rule with several sources. Rule names read
// "LABEL-DIRECTION-PROTOCOL[-PORTS]" ("web-ingress-tcp-443",
// "web-egress-all"), where LABEL is the group's Name tag, else its group
// name, else its id, reduced to the rule-name alphabet; names that would
// repeat get "-2", "-3"… suffixes. Groups, targets and peers alike, are
// referenced by id, so applying the file to the same account adopts every
// rule and changes nothing.
//
// It may import internal/reconcile, pkg/* and internal/report (the
// presentation it shares with the Lambda functions); no AWS calls of its
// own beyond what its caller passes in.
package importer
