package trigger

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/events"
)

// Kind tells which shape an event had.
type Kind string

const (
	// KindObjects is an S3 event notification or an S3 event delivered by
	// EventBridge: Event.Objects.
	KindObjects Kind = "objects"
	// KindS3Test is the s3:TestEvent S3 sends when a notification is
	// configured. There is nothing to do.
	KindS3Test Kind = "s3-test"
	// KindSQS is an SQS batch whose bodies are S3 notifications:
	// Event.Messages, one per SQS message.
	KindSQS Kind = "sqs"
	// KindSchedule is an EventBridge "Scheduled Event": Event.Schedule.
	KindSchedule Kind = "schedule"
	// KindAPICall is a CloudTrail management event delivered by EventBridge
	// for one of the security group APIs: Event.APICall.
	KindAPICall Kind = "api-call"
	// KindCloudFormation is a custom resource request: Event.CloudFormation.
	KindCloudFormation Kind = "cloudformation"
	// KindSweep is an SQS batch of sweep messages (the drift planner's,
	// body {"sweep":{...}}): Event.Messages, each with Sweep set (or Err).
	KindSweep Kind = "sweep"
	// KindExpiry is one sweep message as the whole payload,
	// {"sweep":{"account":…,"region":…}}: what the expiry schedule of a
	// target (EventBridge Scheduler) sends at the target's earliest
	// deadline. Event.Sweep.
	KindExpiry Kind = "expiry"
)

// MaxSQSBodySize is the largest SQS message body decoded. An S3
// notification is a few KiB; a larger body is not one.
const MaxSQSBodySize = 256 << 10

// Event is one decoded invocation payload. Exactly the field matching Kind
// is set.
type Event struct {
	Kind           Kind
	Objects        []Object
	Messages       []Message
	Schedule       *Schedule
	APICall        *APICall
	CloudFormation *cfn.Event
	Sweep          *Sweep
}

// Object is one S3 object event.
type Object struct {
	Bucket string
	// Key is the object key as stored in S3 (URL-decoded for S3
	// notifications, where "+" is a space; EventBridge keys are not encoded).
	Key string
	// EventName is the S3 notification event name ("ObjectCreated:Put") or
	// the EventBridge detail-type and reason ("Object Created:PutObject").
	EventName string
	VersionID string
	Sequencer string
	ETag      string
	Size      int64
}

// Message is one SQS message of a batch.
type Message struct {
	// ID is the SQS message id, the item identifier of a batch failure.
	ID string
	// Objects are the S3 object events of the body.
	Objects []Object
	// Test is set when the body is an s3:TestEvent (nothing to do).
	Test bool
	// Sweep is set when the body is a sweep message.
	Sweep *Sweep
	// Err is set when the body is not an S3 notification (too large, not
	// JSON, another shape). Such a message will never decode, so it is
	// poison: the handler logs and drops it instead of retrying it.
	Err error
}

// Sweep asks for a sweep of one target: every group of it, or the
// shard Groups. An empty Account or Region is the hub's.
type Sweep struct {
	Account string   `json:"account,omitempty"`
	Region  string   `json:"region,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	// Run names the schedule that planned the sweep (its event id): the
	// sweeps of one schedule share one revoke budget.
	Run string `json:"run,omitempty"`
	// Route is the target's routing as the planner decided it
	// (reconcile.TargetRoute): with it the sweep reads only its own
	// target's ledger. Absent: the sweep routes every file itself.
	Route *SweepRoute `json:"route,omitempty"`
}

// SweepRoute is reconcile.TargetRoute in a sweep message.
type SweepRoute struct {
	// Read are the files routed to the target its records do not prove.
	Read []string `json:"read,omitempty"`
	// Moves are the files recorded in the target that moved elsewhere.
	Moves []SweepMove `json:"moves,omitempty"`
}

// SweepMove is a file that moved out of the swept target, to Account and
// Region.
type SweepMove struct {
	Key     string `json:"key"`
	Account string `json:"account"`
	Region  string `json:"region"`
}

// Body is the SQS message body of the sweep.
func (s Sweep) Body() string {
	b, _ := json.Marshal(struct {
		Sweep Sweep `json:"sweep"`
	}{s})
	return string(b)
}

// Schedule is an EventBridge scheduled event.
type Schedule struct {
	ID   string
	Time time.Time
	// Resources are the ARNs of the rules that fired.
	Resources []string
}

// APICall is a security group API call recorded by CloudTrail.
type APICall struct {
	EventID   string
	EventName string
	Region    string
	Account   string
	// GroupIDs are the security groups the call touched, sorted and
	// unique; empty when the request named a group only by name (a
	// default-VPC call), in which case the caller should sweep everything.
	GroupIDs []string
	// CallerARN is userIdentity.arn (for a role session,
	// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION).
	CallerARN string
	// IssuerARN is userIdentity.sessionContext.sessionIssuer.arn (the role
	// ARN, arn:aws:iam::ACCOUNT:role/PATH/ROLE), empty for IAM users.
	IssuerARN string
	// IdentityType is userIdentity.type (AssumedRole, IAMUser, Root,
	// AWSService, ...) and InvokedBy userIdentity.invokedBy (the service
	// that called on the caller's behalf): who it was when there is no ARN.
	IdentityType string
	InvokedBy    string
	// Time is detail.eventTime (the envelope's time when that is absent or
	// unreadable: attribution never makes an event undecodable).
	Time time.Time
	// SourceIP is detail.sourceIPAddress, UserAgent detail.userAgent.
	SourceIP  string
	UserAgent string
	// ErrorCode is set when the call failed, so changed nothing.
	ErrorCode string
}

// SecurityGroupAPIs are the CloudTrail event names that change security
// group rules.
var SecurityGroupAPIs = []string{
	"AuthorizeSecurityGroupEgress",
	"AuthorizeSecurityGroupIngress",
	"ModifySecurityGroupRules",
	"RevokeSecurityGroupEgress",
	"RevokeSecurityGroupIngress",
	"UpdateSecurityGroupRuleDescriptionsEgress",
	"UpdateSecurityGroupRuleDescriptionsIngress",
}

// probe holds the top-level fields that tell the shapes apart.
type probe struct {
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	Event       string `json:"Event"`
	DetailType  string `json:"detail-type"`
	Source      string `json:"source"`
	RequestType string `json:"RequestType"`
	ResponseURL string `json:"ResponseURL"`
	StackID     string `json:"StackId"`
}

// Decode recognises raw by its shape and decodes it. Anything it does not
// recognise is an error naming what it saw.
func Decode(raw json.RawMessage) (Event, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return Event{}, fmt.Errorf("decode event: not a JSON object: %w", err)
	}
	var p probe
	if err := json.Unmarshal(raw, &p); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	switch {
	case len(p.Records) > 0:
		return decodeRecords(raw, p)
	case p.Event == "s3:TestEvent":
		return Event{Kind: KindS3Test}, nil
	case p.DetailType != "" && p.Source != "":
		return decodeEventBridge(raw)
	case p.RequestType != "" && p.ResponseURL != "" && p.StackID != "":
		return decodeCloudFormation(raw)
	case len(top) == 1 && len(top["sweep"]) > 0:
		s, _, err := decodeSweep(raw)
		if err != nil {
			return Event{}, fmt.Errorf("decode event: %w", err)
		}
		return Event{Kind: KindExpiry, Sweep: s}, nil
	}
	return Event{}, fmt.Errorf("decode event: unrecognised event with fields %s", fieldList(top))
}

func decodeRecords(raw json.RawMessage, p probe) (Event, error) {
	src := p.Records[0].EventSource
	for i, r := range p.Records {
		if r.EventSource != src {
			return Event{}, fmt.Errorf("decode event: record %d has eventSource %q, record 0 %q", i, r.EventSource, src)
		}
	}
	switch src {
	case "aws:s3":
		objs, err := decodeS3Notification(raw)
		if err != nil {
			return Event{}, err
		}
		return Event{Kind: KindObjects, Objects: objs}, nil
	case "aws:sqs":
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return Event{}, fmt.Errorf("decode SQS event: %w", err)
		}
		msgs := make([]Message, len(ev.Records))
		sweeps, others := 0, 0
		for i, r := range ev.Records {
			msgs[i] = decodeSQSBody(r.MessageId, r.Body)
			switch {
			case msgs[i].Sweep != nil:
				sweeps++
			case msgs[i].Err == nil:
				others++
			}
		}
		if sweeps > 0 && others == 0 {
			return Event{Kind: KindSweep, Messages: msgs}, nil
		}
		return Event{Kind: KindSQS, Messages: msgs}, nil
	}
	return Event{}, fmt.Errorf("decode event: unsupported records with eventSource %q", src)
}

// s3Notification holds the fields of an S3 event notification that sgrules
// reads. It leaves eventTime out on purpose: nothing depends on it, and a
// timestamp in an unexpected form (moto writes it without a zone) must not
// make the whole event undecodable. events.S3Object URL-decodes the key.
type s3Notification struct {
	Records []struct {
		EventSource string `json:"eventSource"`
		EventName   string `json:"eventName"`
		S3          struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object events.S3Object `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
}

func decodeS3Notification(raw []byte) ([]Object, error) {
	var ev s3Notification
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("decode S3 notification: %w", err)
	}
	objs := make([]Object, 0, len(ev.Records))
	for i, r := range ev.Records {
		if r.EventSource != "aws:s3" {
			return nil, fmt.Errorf("decode S3 notification: record %d has eventSource %q", i, r.EventSource)
		}
		o := r.S3.Object
		objs = append(objs, Object{
			Bucket:    r.S3.Bucket.Name,
			Key:       o.URLDecodedKey,
			EventName: r.EventName,
			VersionID: o.VersionID,
			Sequencer: o.Sequencer,
			ETag:      o.ETag,
			Size:      o.Size,
		})
	}
	return objs, nil
}

// decodeSQSBody decodes one SQS body: an S3 notification, an S3 test event,
// an S3 event from EventBridge, or any of those wrapped in an SNS
// notification (SNS to SQS without raw message delivery).
func decodeSQSBody(id, body string) Message {
	m := Message{ID: id}
	if len(body) > MaxSQSBodySize {
		m.Err = fmt.Errorf("message %s: body of %d bytes is larger than %d", id, len(body), MaxSQSBodySize)
		return m
	}
	if sw, ok, err := decodeSweep([]byte(body)); ok {
		if err != nil {
			m.Err = fmt.Errorf("message %s: %w", id, err)
		}
		m.Sweep = sw
		return m
	}
	objs, test, err := decodeBody([]byte(body), true)
	if err != nil {
		m.Err = fmt.Errorf("message %s: %w", id, err)
		return m
	}
	m.Objects, m.Test = objs, test
	return m
}

// decodeSweep decodes a sweep message; ok is false when the body is not
// one (no top-level "sweep").
func decodeSweep(body []byte) (*Sweep, bool, error) {
	var p struct {
		Sweep json.RawMessage `json:"sweep"`
	}
	if json.Unmarshal(body, &p) != nil || len(p.Sweep) == 0 {
		return nil, false, nil
	}
	var s Sweep
	dec := json.NewDecoder(strings.NewReader(string(p.Sweep)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, true, fmt.Errorf("decode sweep message: %w", err)
	}
	if s.Account != "" && !isAccountID(s.Account) {
		return nil, true, fmt.Errorf("decode sweep message: account %q is not a 12-digit account id", s.Account)
	}
	for _, g := range s.Groups {
		if !strings.HasPrefix(g, "sg-") {
			return nil, true, fmt.Errorf("decode sweep message: %q is not a security group id", g)
		}
	}
	return &s, true, nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func decodeBody(body []byte, unwrapSNS bool) (objs []Object, test bool, err error) {
	var p struct {
		probe
		Type    string `json:"Type"`
		Message string `json:"Message"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, false, fmt.Errorf("body is not a JSON object: %w", err)
	}
	switch {
	case len(p.Records) > 0:
		objs, err := decodeS3Notification(body)
		return objs, false, err
	case p.Event == "s3:TestEvent":
		return nil, true, nil
	case p.Source == "aws.s3" && p.DetailType != "":
		var ev events.CloudWatchEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			return nil, false, fmt.Errorf("decode EventBridge S3 event: %w", err)
		}
		o, err := decodeS3Detail(ev)
		if err != nil {
			return nil, false, err
		}
		return []Object{o}, false, nil
	case unwrapSNS && p.Type == "Notification" && p.Message != "":
		return decodeBody([]byte(p.Message), false)
	}
	return nil, false, errors.New("body is not an S3 event notification")
}

func decodeEventBridge(raw json.RawMessage) (Event, error) {
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Event{}, fmt.Errorf("decode EventBridge event: %w", err)
	}
	switch {
	case ev.DetailType == "Scheduled Event":
		return Event{Kind: KindSchedule, Schedule: &Schedule{ID: ev.ID, Time: ev.Time, Resources: ev.Resources}}, nil
	case ev.Source == "aws.s3":
		o, err := decodeS3Detail(ev)
		if err != nil {
			return Event{}, err
		}
		return Event{Kind: KindObjects, Objects: []Object{o}}, nil
	case ev.DetailType == "AWS API Call via CloudTrail":
		c, err := decodeAPICall(ev)
		if err != nil {
			return Event{}, err
		}
		return Event{Kind: KindAPICall, APICall: c}, nil
	}
	return Event{}, fmt.Errorf("decode event: unsupported EventBridge event: source %q, detail-type %q", ev.Source, ev.DetailType)
}

// decodeS3Detail decodes the detail of an "Object Created" or "Object
// Deleted" event. EventBridge object keys are not URL-encoded.
func decodeS3Detail(ev events.CloudWatchEvent) (Object, error) {
	if ev.DetailType != "Object Created" && ev.DetailType != "Object Deleted" {
		return Object{}, fmt.Errorf("decode EventBridge S3 event: unsupported detail-type %q", ev.DetailType)
	}
	var d struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key       string `json:"key"`
			Size      int64  `json:"size"`
			ETag      string `json:"etag"`
			VersionID string `json:"version-id"`
			Sequencer string `json:"sequencer"`
		} `json:"object"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return Object{}, fmt.Errorf("decode EventBridge S3 event detail: %w", err)
	}
	if d.Bucket.Name == "" || d.Object.Key == "" {
		return Object{}, fmt.Errorf("decode EventBridge S3 event %s: detail has no bucket name or object key", ev.ID)
	}
	name := ev.DetailType
	if d.Reason != "" {
		name += ":" + d.Reason
	}
	return Object{
		Bucket:    d.Bucket.Name,
		Key:       d.Object.Key,
		EventName: name,
		VersionID: d.Object.VersionID,
		Sequencer: d.Object.Sequencer,
		ETag:      d.Object.ETag,
		Size:      d.Object.Size,
	}, nil
}

func decodeAPICall(ev events.CloudWatchEvent) (*APICall, error) {
	var d struct {
		EventID      string `json:"eventID"`
		EventName    string `json:"eventName"`
		EventSource  string `json:"eventSource"`
		AWSRegion    string `json:"awsRegion"`
		ErrorCode    string `json:"errorCode"`
		EventTime    string `json:"eventTime"`
		SourceIP     string `json:"sourceIPAddress"`
		UserAgent    string `json:"userAgent"`
		UserIdentity struct {
			Type           string `json:"type"`
			InvokedBy      string `json:"invokedBy"`
			ARN            string `json:"arn"`
			SessionContext struct {
				SessionIssuer struct {
					ARN string `json:"arn"`
				} `json:"sessionIssuer"`
			} `json:"sessionContext"`
		} `json:"userIdentity"`
		RequestParameters struct {
			GroupID string `json:"groupId"`
			Modify  struct {
				GroupID string `json:"GroupId"`
			} `json:"ModifySecurityGroupRulesRequest"`
		} `json:"requestParameters"`
		ResponseElements struct {
			RuleSet struct {
				Items []struct {
					GroupID string `json:"groupId"`
				} `json:"items"`
			} `json:"securityGroupRuleSet"`
		} `json:"responseElements"`
	}
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return nil, fmt.Errorf("decode CloudTrail event %s: %w", ev.ID, err)
	}
	if ev.Source != "aws.ec2" || !slices.Contains(SecurityGroupAPIs, d.EventName) {
		return nil, fmt.Errorf("decode CloudTrail event %s: unsupported API call %s from %s", ev.ID, d.EventName, ev.Source)
	}
	ids := []string{d.RequestParameters.GroupID, d.RequestParameters.Modify.GroupID}
	for _, it := range d.ResponseElements.RuleSet.Items {
		ids = append(ids, it.GroupID)
	}
	ids = slices.DeleteFunc(ids, func(s string) bool { return s == "" })
	slices.Sort(ids)
	ids = slices.Compact(ids)
	region := d.AWSRegion
	if region == "" {
		region = ev.Region
	}
	at := ev.Time
	if t, err := time.Parse(time.RFC3339, d.EventTime); err == nil {
		at = t
	}
	return &APICall{
		EventID:   d.EventID,
		EventName: d.EventName,
		Region:    region,
		Account:   ev.AccountID,
		GroupIDs:  ids,
		CallerARN: d.UserIdentity.ARN,
		IssuerARN: d.UserIdentity.SessionContext.SessionIssuer.ARN,
		ErrorCode: d.ErrorCode,

		IdentityType: d.UserIdentity.Type,
		InvokedBy:    d.UserIdentity.InvokedBy,
		Time:         at.UTC(),
		SourceIP:     d.SourceIP,
		UserAgent:    d.UserAgent,
	}, nil
}

func decodeCloudFormation(raw json.RawMessage) (Event, error) {
	var ev cfn.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Event{}, fmt.Errorf("decode CloudFormation request: %w", err)
	}
	switch ev.RequestType {
	case cfn.RequestCreate, cfn.RequestUpdate, cfn.RequestDelete:
	default:
		return Event{}, fmt.Errorf("decode CloudFormation request %s: unknown RequestType %q", ev.RequestID, ev.RequestType)
	}
	return Event{Kind: KindCloudFormation, CloudFormation: &ev}, nil
}

// fieldList renders the top-level field names of an unrecognised event,
// sorted, for the error message.
func fieldList(top map[string]json.RawMessage) string {
	if len(top) == 0 {
		return "(none: empty object)"
	}
	names := make([]string, 0, len(top))
	for k := range top {
		names = append(names, fmt.Sprintf("%q", k))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
