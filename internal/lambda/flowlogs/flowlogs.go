// Package flowlogs is the flow-log function's shell: it takes an SQS batch
// of S3 event notifications for VPC Flow Logs objects, reads each object
// once in a streaming pass (pkg/flowlog: memory bounded by distinct
// flows), credits its flows to the managed rules of the target its key
// names (account and region from …/AWSLogs/ACCOUNT/vpcflowlogs/REGION/),
// and adds per-rule counters for the object's day to the ledger
// (ddbledger.Counters: once per object, whatever the redeliveries).
//
// A message whose objects were all handled (counted, already counted, or
// not countable: not a log object, an account that is not a target, an
// object gone, content that cannot be read) succeeds; one that met an AWS
// error is returned in batchItemFailures, so SQS delivers it again (and,
// after the queue's maxReceiveCount, moves it to the dead-letter queue).
// Malformed lines and unreadable objects are counted and logged with
// embedded metrics, never fatal.
//
// It may import adapters, internal/reconcile, pkg/* and the Lambda
// libraries; never the CLI.
package flowlogs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/flowsrc"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/flowlog"
	"github.com/sgrules/sgrules/pkg/rules"
)

// Metric names of the per-object log line (embedded metric format,
// namespace sgrules).
const (
	MetricObjects        = "FlowLogObjects"
	MetricBadObjects     = "FlowLogBadObjects"
	MetricMalformedLines = "FlowLogMalformedLines"
	MetricRulesCredited  = "FlowLogRulesCredited"
)

// S3API is the part of the S3 client the function uses.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Ledger is what the function needs of the ledger of one target: which
// permissions are managed (and their rule ids), and where to add counters.
type Ledger interface {
	GroupPermissions(ctx context.Context, t rules.Target, groupIDs []string) ([]reconcile.OwnedPermission, error)
	AddCounters(ctx context.Context, t rules.Target, obj ddbledger.ObjectID, day time.Time, counts []ddbledger.RuleCounter) (bool, error)
}

// Targets gives the EC2 API of a target; ErrNotTarget when its account is
// not one the deployment manages.
type Targets interface {
	EC2(ctx context.Context, t rules.Target) (flowsrc.EC2API, error)
}

// ErrNotTarget: the object's account is neither the hub's nor one of
// TARGET_ACCOUNTS. Its objects are skipped (logged), not retried.
var ErrNotTarget = errors.New("not a target account")

// Handler handles SQS batches of S3 notifications.
type Handler struct {
	S3      S3API
	Ledger  Ledger
	Targets Targets
	Logger  *slog.Logger
}

// Handle processes every message; the failed ones are returned for
// redelivery.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		if err := h.message(ctx, m); err != nil {
			h.Logger.ErrorContext(ctx, "flow-log message failed: it will be delivered again", "messageId", m.MessageId, "error", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

// Notification is one object an S3 notification names.
type Notification struct {
	Bucket, Key string
}

// Decode reads an SQS message body: an S3 event notification (direct, or
// wrapped in an SNS notification), or the s3:TestEvent S3 sends when the
// notification is configured (no objects). Keys are URL-decoded. Only
// ObjectCreated events name objects.
func Decode(body string) ([]Notification, error) {
	var probe struct {
		Type    string `json:"Type"`
		Message string `json:"Message"`
		Event   string `json:"Event"`
	}
	if err := json.Unmarshal([]byte(body), &probe); err != nil {
		return nil, fmt.Errorf("message body is not JSON: %w", err)
	}
	if probe.Type == "Notification" && probe.Message != "" {
		return Decode(probe.Message)
	}
	if probe.Event == "s3:TestEvent" {
		return nil, nil
	}
	var ev events.S3Event
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return nil, fmt.Errorf("message body is not an S3 event: %w", err)
	}
	if len(ev.Records) == 0 {
		return nil, errors.New("message body is not an S3 event: no Records")
	}
	var out []Notification
	for _, r := range ev.Records {
		if !strings.HasPrefix(r.EventName, "ObjectCreated:") {
			continue
		}
		// Keys arrive URL-encoded ("+" for a space); S3Object decodes them.
		out = append(out, Notification{Bucket: r.S3.Bucket.Name, Key: r.S3.Object.URLDecodedKey})
	}
	return out, nil
}

// message handles the objects of one message; an error means "deliver it
// again".
func (h *Handler) message(ctx context.Context, m events.SQSMessage) error {
	objs, err := Decode(m.Body)
	if err != nil {
		// Delivering it again would not help: logged and dropped.
		h.Logger.ErrorContext(ctx, "flow-log message skipped: it cannot be decoded", "messageId", m.MessageId, "error", err.Error())
		return nil
	}
	var errs []error
	for _, o := range objs {
		if err := h.Object(ctx, o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Object reads one log object, attributes its flows and adds the
// counters. It returns only errors worth a retry (AWS calls).
func (h *Handler) Object(ctx context.Context, n Notification) error {
	log := h.Logger.With("bucket", n.Bucket, "key", n.Key)
	info, ok := flowsrc.ParseLogKey(n.Key)
	if !ok {
		log.InfoContext(ctx, "not a flow-log object: skipped (want …/AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/*.log.gz)")
		return nil
	}
	t := rules.Target{Account: info.Account, Region: info.Region}
	api, err := h.Targets.EC2(ctx, t)
	if errors.Is(err, ErrNotTarget) {
		log.WarnContext(ctx, "flow-log object skipped: its account is not a target account (TARGET_ACCOUNTS)", "account", t.Account)
		return nil
	}
	if err != nil {
		return err
	}
	out, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(n.Bucket), Key: aws.String(n.Key)})
	var nsk *s3types.NoSuchKey
	if errors.As(err, &nsk) {
		log.WarnContext(ctx, "flow-log object skipped: it no longer exists")
		return nil
	}
	if err != nil {
		return fmt.Errorf("get s3://%s/%s: %w", n.Bucket, n.Key, err)
	}
	obj := ddbledger.ObjectID{Bucket: n.Bucket, Key: n.Key, ETag: aws.ToString(out.ETag)}
	ag := flowlog.NewAggregator(time.Time{}, time.Time{})
	body := &countingReader{r: out.Body}
	readErr := ag.AddObject("s3://"+n.Bucket+"/"+n.Key, body)
	// Drain what a broken object left unread, so that the SDK can check
	// the body and reuse the connection.
	_, drainErr := io.Copy(io.Discard, body)
	_ = out.Body.Close()
	if drainErr != nil || (out.ContentLength != nil && body.n < *out.ContentLength) {
		// The transfer failed (the connection, not the content): nothing
		// is counted, the message comes again.
		return fmt.Errorf("read s3://%s/%s: %d of %d bytes: %w", n.Bucket, n.Key, body.n, aws.ToInt64(out.ContentLength), errors.Join(drainErr, readErr, io.ErrUnexpectedEOF))
	}
	st := ag.Stats()

	counts, attr, err := h.attribute(ctx, t, api, ag.Flows())
	if err != nil {
		return err
	}
	added, err := h.Ledger.AddCounters(ctx, t, obj, info.Day, counts)
	if err != nil {
		return err
	}
	attrs := []any{"account", t.Account, "region", t.Region, "day", info.Day.Format("2006-01-02"), "etag", obj.ETag,
		"records", st.Records, "accepted", st.Accepted, "rejected", st.Rejected, "flows", len(ag.Flows()),
		"rulesCredited", len(counts), "credited", attr.Credited, "unmatched", attr.Unmatched,
		"unknownInterface", attr.UnknownInterface, "noManagedGroup", attr.NoManagedGroup, "unknownSide", attr.UnknownSide,
		"malformedLines", st.Malformed, "counted", added,
		slog.Group("_aws", "Timestamp", time.Now().UnixMilli(), "CloudWatchMetrics", []map[string]any{{"Namespace": "sgrules", "Dimensions": [][]string{{}},
			"Metrics": []map[string]string{{"Name": MetricObjects, "Unit": "Count"}, {"Name": MetricBadObjects, "Unit": "Count"},
				{"Name": MetricMalformedLines, "Unit": "Count"}, {"Name": MetricRulesCredited, "Unit": "Count"}}}}),
		MetricObjects, 1, MetricBadObjects, st.BadObjects, MetricMalformedLines, st.Malformed, MetricRulesCredited, len(counts),
	}
	if len(st.Examples) > 0 {
		ex := make([]string, len(st.Examples))
		for i, e := range st.Examples {
			ex[i] = e.String()
		}
		attrs = append(attrs, "malformedExamples", ex)
	}
	switch {
	case readErr != nil:
		log.WarnContext(ctx, "flow-log object unreadable: the records before the damage are counted", append(attrs, "error", readErr.Error())...)
	case !added && len(counts) > 0:
		log.InfoContext(ctx, "flow-log object already counted (a redelivery): nothing added", attrs...)
	default:
		log.InfoContext(ctx, "flow-log object counted", attrs...)
	}
	return nil
}

// attribute credits the flows to the managed rules of the interfaces'
// groups, as the ledger of t names them.
func (h *Handler) attribute(ctx context.Context, t rules.Target, api flowsrc.EC2API, flows map[flowlog.FlowKey]*flowlog.Counter) ([]ddbledger.RuleCounter, flowlog.AttributionStats, error) {
	if len(flows) == 0 {
		return nil, flowlog.AttributionStats{}, nil
	}
	lk := flowsrc.NewLookup(api)
	seen := map[string]bool{}
	var ids []string
	for k := range flows {
		if !seen[k.Interface] {
			seen[k.Interface] = true
			ids = append(ids, k.Interface)
		}
	}
	sort.Strings(ids)
	ifaces, err := lk.Interfaces(ctx, ids)
	if err != nil {
		return nil, flowlog.AttributionStats{}, fmt.Errorf("%s/%s: look up interfaces: %w", t.Account, t.Region, err)
	}
	gs := map[string]bool{}
	for _, in := range ifaces {
		for _, g := range in.Groups {
			gs[g] = true
		}
	}
	groups := make([]string, 0, len(gs))
	for g := range gs {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var managed []flowlog.Rule
	if len(groups) > 0 {
		owned, err := h.Ledger.GroupPermissions(ctx, t, groups)
		if err != nil {
			return nil, flowlog.AttributionStats{}, fmt.Errorf("%s/%s: read the ledger: %w", t.Account, t.Region, err)
		}
		for _, o := range owned {
			if o.RuleID == "" {
				continue
			}
			managed = append(managed, flowlog.Rule{Key: o.Key, RuleID: o.RuleID, Owner: firstOwner(o.Owners)})
		}
	}
	rep, err := flowlog.Attribute(ctx, flows, managed, lk)
	if err != nil {
		return nil, flowlog.AttributionStats{}, fmt.Errorf("%s/%s: %w", t.Account, t.Region, err)
	}
	var counts []ddbledger.RuleCounter
	for _, u := range rep.Rules {
		if !u.Used() {
			continue
		}
		counts = append(counts, ddbledger.RuleCounter{Key: u.Key, RuleID: u.RuleID, Flows: u.Flows, Bytes: u.Bytes,
			AmbiguousFlows: u.AmbiguousFlows, First: u.First, Last: u.Last, LastPeer: u.LastPeer})
	}
	return counts, rep.Stats, nil
}

func firstOwner(m map[rules.Owner]string) rules.Owner {
	var out rules.Owner
	first := true
	for o := range m {
		if first || o.Source < out.Source || (o.Source == out.Source && o.Rule < out.Rule) {
			out, first = o, false
		}
	}
	return out
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
