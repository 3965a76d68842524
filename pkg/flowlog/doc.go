// Package flowlog is the pure core of traffic evidence: it reads VPC Flow
// Logs text files, folds their records into distinct flows, and credits
// each accepted flow to the managed security group rules that allow it.
//
// It imports no AWS package; interfaces and prefix lists come through the
// Lookup interface, which an adapter implements.
//
// # Reading
//
// A log file is plain text or gzip, a header line naming the fields (the
// default version 2 format or any custom one, in any order, "-" for a
// missing value), then one record a line. Reader streams it: memory does
// not grow with the file. A malformed line is counted and skipped; a file
// whose header or compression is broken is counted as a bad object.
//
// # Aggregation
//
// Aggregator folds accepted records into FlowKey counters: (interface,
// protocol, initiator, listener, listening port), so memory is bounded by
// distinct flows, not records. Which end opened a flow (Class):
//
//   - With tcp-flags, a TCP record carrying SYN without ACK (flags & 18 ==
//     2) was sent by the opener; one carrying SYN-ACK (18) by the
//     listener. tcp-flags is the OR of the flags of the record's packets,
//     and ACK is reported only with SYN, so the two are told apart.
//   - Without tcp-flags, and for TCP records without SYN (a connection
//     opened before the capture window), the ports decide: the listener's
//     port is the one below 1024 against one at or above, else the one
//     below 32768 against one in the ephemeral range.
//   - When ports are of the same kind, and for ICMP (whose type and code
//     flow logs do not carry) and other protocols without ports, the flow
//     is Ambiguous: attribution tries both ends as the opener, each with
//     its own port as the rule's port, and marks the credit.
//
// # Attribution
//
// Attribute credits each flow to every managed rule of its interface's
// groups that allows it: an inbound rule when the peer opened the flow,
// an outbound rule when the interface did; the protocol; the listening
// port against the rule's range; the peer address against the rule's
// CIDR, prefix-list entries, or referenced group (the groups of the
// interfaces holding the peer address). A response to a connection the
// interface opened is never use of an inbound rule. Rejected records
// credit nothing.
package flowlog
