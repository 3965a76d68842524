package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/flowlog"
)

// Environment variables.
const (
	EnvStateTable  = "STATE_TABLE"       // DynamoDB ledger table
	EnvDeployment  = "DEPLOYMENT_ID"     // identity proposed for a ledger without one (the template: the stack id's UUID)
	EnvRulesBucket = "RULES_BUCKET"      // S3 bucket of the rule files
	EnvCLIBucket   = "SGRULES_BUCKET"    // the CLI's name for it (RULES_BUCKET also works)
	EnvRulesPrefix = "RULES_PREFIX"      // key prefix of the rule files (default rules/)
	EnvMaxRevoke   = "MAX_REVOKE"        // blast-radius guard (default 50, negative: no limit)
	EnvDriftMode   = "DRIFT_MODE"        // drift function: report or revert (default)
	EnvRoleARNs    = "SGRULES_ROLE_ARNS" // drift function: sgrules' own roles, comma-separated
	EnvAlertTopic  = "ALERT_TOPIC_ARN"   // drift function: SNS topic for drift summaries (optional)
	EnvPolicyKey   = "POLICY_KEY"        // key of the guardrail policy in the rules bucket (default policy/sgrules.yaml)
	// EnvRequirePolicy: "true" makes an absent policy object hold every
	// change, as an invalid policy does (default false: no policy).
	EnvRequirePolicy = "REQUIRE_POLICY"
	// EnvPauseUntilMax caps sgrules:pause-until (a Go duration, default
	// 24h): a tag further ahead pauses nothing and is reported.
	EnvPauseUntilMax = "PAUSE_UNTIL_MAX"
	// EnvManagedGroupTag: when set, only groups carrying this tag are
	// changed (the template's IAM condition enforces the same).
	EnvManagedGroupTag = "MANAGED_GROUP_TAG"
	// Many accounts (docs/multi-account.md).
	EnvTargetAccounts   = "TARGET_ACCOUNTS"    // accounts rule files may name, comma-separated (empty: only the hub's)
	EnvTargetRole       = "TARGET_ROLE"        // role assumed in a target account (default sgrules-target)
	EnvTargetExternalID = "TARGET_EXTERNAL_ID" // ExternalId of that AssumeRole (optional)
	EnvSweepQueueURL    = "SWEEP_QUEUE_URL"    // drift function: the queue of per-target sweeps (empty: sweep in the schedule's invocation)
	// On time (docs/expiry.md): one EventBridge Scheduler schedule per
	// target at its earliest deadline, invoking the drift function.
	EnvExpiryTarget = "EXPIRY_TARGET_ARN"     // the drift function's ARN (empty: the function invoked)
	EnvExpiryRole   = "EXPIRY_ROLE_ARN"       // the role the scheduler invokes it with (empty: no expiry schedules)
	EnvExpiryGroup  = "EXPIRY_SCHEDULE_GROUP" // the schedule group (default sgrules)
	// Traffic evidence (docs/usage.md): removing or narrowing a rule that
	// carried traffic within USED_WITHIN is refused.
	EnvFlowLogs   = "FLOW_LOGS_URL" // where the VPC Flow Logs are delivered, s3://BUCKET/PREFIX (empty: no evidence)
	EnvUsedWithin = "USED_WITHIN"   // the window: days (30d), weeks (2w) or a Go duration (default 30d)
	// EnvPeerLedgers names the ledger tables of the other deployments
	// sharing these groups, comma-separated (names, or table ARNs for
	// another region or account), read to prove their claims
	// (docs/reliability.md, Other deployments).
	EnvPeerLedgers = "PEER_LEDGERS"
)

// DefaultPolicyKey is where the functions look for the guardrail policy.
const DefaultPolicyKey = "policy/sgrules.yaml"

// DefaultTargetRole is the role name TARGET_ROLE defaults to.
const DefaultTargetRole = "sgrules-target"

// Config is what the environment says.
type Config struct {
	// Table is the ledger table (STATE_TABLE).
	Table string
	// DeploymentID is the identity proposed for a ledger that has none
	// yet (DEPLOYMENT_ID; "": a random one). The ledger's stored one wins.
	DeploymentID string
	// PeerLedgers are the other deployments' ledger tables (PEER_LEDGERS):
	// names or table ARNs.
	PeerLedgers []string
	// Bucket and Prefix locate the rule files; Prefix is normalised
	// (Prefix).
	Bucket string
	Prefix string
	// MaxRevoke is the blast-radius guard (never 0).
	MaxRevoke int
	// ManagedGroupTag limits changes to groups with this tag ("": any).
	ManagedGroupTag string
	// RequirePolicy: an absent policy object holds every change
	// (REQUIRE_POLICY).
	RequirePolicy bool
	// MaxPause caps sgrules:pause-until (PAUSE_UNTIL_MAX; 0: the
	// engine's default, 24h).
	MaxPause time.Duration
	// PolicyKey is the key of the guardrail policy in Bucket (POLICY_KEY,
	// functions only; "" means none is read).
	PolicyKey string
	// Drift function only.
	DriftMode     DriftMode
	RoleARNs      []string
	AlertTopicARN string
	// TargetAccounts are the accounts besides the hub's that rule files
	// may name (TARGET_ACCOUNTS), TargetRole the role assumed in them,
	// TargetExternalID its ExternalId.
	TargetAccounts   []string
	TargetRole       string
	TargetExternalID string
	// SweepQueueURL is the drift function's queue of sweeps.
	SweepQueueURL string
	// ExpiryTargetARN (the drift function; empty: the function
	// invoked), ExpiryRoleARN and ExpiryGroup configure the expiry
	// schedules; an empty ExpiryRoleARN keeps none.
	ExpiryTargetARN, ExpiryRoleARN, ExpiryGroup string
	// FlowLogs is where the flow logs are (FLOW_LOGS_URL, "": no traffic
	// evidence) and UsedWithin the window of the evidence (USED_WITHIN).
	FlowLogs   string
	UsedWithin time.Duration
}

// Function is one reader of the environment: a Lambda function or the CLI.
type Function struct {
	// Name is the folder of the function under functions/ ("reconcile"),
	// or "cli".
	Name string
	// Vars are the variables Load reads, and only those.
	Vars []string
	// required are the variables that must be set.
	required []string
}

var (
	// Reconcile is the reconcile function's environment.
	Reconcile = Function{Name: "reconcile",
		Vars: []string{EnvStateTable, EnvDeployment, EnvRulesBucket, EnvRulesPrefix, EnvMaxRevoke, EnvPolicyKey, EnvRequirePolicy, EnvPauseUntilMax, EnvManagedGroupTag, EnvPeerLedgers,
			EnvTargetAccounts, EnvTargetRole, EnvTargetExternalID, EnvExpiryTarget, EnvExpiryRole, EnvExpiryGroup, EnvFlowLogs, EnvUsedWithin},
		required: []string{EnvStateTable, EnvRulesBucket}}
	// Drift is the drift function's environment.
	Drift = Function{Name: "drift",
		Vars: []string{EnvStateTable, EnvDeployment, EnvRulesBucket, EnvRulesPrefix, EnvMaxRevoke, EnvPolicyKey, EnvRequirePolicy, EnvPauseUntilMax, EnvManagedGroupTag, EnvDriftMode, EnvRoleARNs, EnvAlertTopic, EnvPeerLedgers,
			EnvTargetAccounts, EnvTargetRole, EnvTargetExternalID, EnvSweepQueueURL, EnvExpiryTarget, EnvExpiryRole, EnvExpiryGroup, EnvFlowLogs, EnvUsedWithin},
		required: []string{EnvStateTable, EnvRulesBucket}}
	// Flowlogs is the flow-log function's environment: the ledger, and
	// the accounts whose logs it counts.
	Flowlogs = Function{Name: "flowlogs",
		Vars:     []string{EnvStateTable, EnvTargetAccounts, EnvTargetRole, EnvTargetExternalID},
		required: []string{EnvStateTable}}
	// CLI is the defaults of the CLI's flags; nothing is required here
	// (the commands check what they need after the flags).
	CLI = Function{Name: "cli",
		Vars: []string{EnvCLIBucket, EnvRulesBucket, EnvRulesPrefix, EnvStateTable, EnvMaxRevoke, EnvPauseUntilMax, EnvManagedGroupTag, EnvPeerLedgers,
			EnvTargetAccounts, EnvTargetRole, EnvTargetExternalID}}
)

// Functions are the Lambda functions, one per folder under functions/.
var Functions = []Function{Reconcile, Drift, Flowlogs}

// Load reads f.Vars with getenv (os.Getenv) and validates them.
func (f Function) Load(getenv func(string) string) (Config, error) {
	env := make(map[string]string, len(f.Vars))
	for _, v := range f.Vars {
		env[v] = getenv(v)
	}
	var missing []string
	for _, v := range f.required {
		if env[v] == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("%s must be set", strings.Join(f.required, " and "))
	}
	c := Config{Table: env[EnvStateTable], Bucket: env[EnvRulesBucket], Prefix: Prefix(env[EnvRulesPrefix]),
		ManagedGroupTag: strings.TrimSpace(env[EnvManagedGroupTag])}
	if slices.Contains(f.Vars, EnvCLIBucket) && env[EnvCLIBucket] != "" {
		c.Bucket = env[EnvCLIBucket]
	}
	var errs []error
	var err error
	if slices.Contains(f.Vars, EnvDeployment) {
		if c.DeploymentID = strings.TrimSpace(env[EnvDeployment]); c.DeploymentID != "" {
			if err := reconcile.CheckDeploymentID(c.DeploymentID); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", EnvDeployment, err))
			}
		}
	}
	if c.PeerLedgers, err = PeerLedgers(env[EnvPeerLedgers]); err != nil {
		errs = append(errs, err)
	}
	if c.MaxRevoke, err = MaxRevoke(env[EnvMaxRevoke]); err != nil {
		errs = append(errs, err)
	}
	if slices.Contains(f.Vars, EnvPolicyKey) {
		if c.PolicyKey, err = PolicyKey(env[EnvPolicyKey], c.Prefix); err != nil {
			errs = append(errs, err)
		}
	}
	if slices.Contains(f.Vars, EnvRequirePolicy) {
		switch v := strings.ToLower(strings.TrimSpace(env[EnvRequirePolicy])); v {
		case "", "false":
		case "true":
			c.RequirePolicy = true
		default:
			errs = append(errs, fmt.Errorf("%s %q: want true or false", EnvRequirePolicy, env[EnvRequirePolicy]))
		}
	}
	if v := strings.TrimSpace(env[EnvPauseUntilMax]); v != "" {
		if c.MaxPause, err = time.ParseDuration(v); err != nil || c.MaxPause <= 0 {
			errs = append(errs, fmt.Errorf("%s %q: want a positive duration such as 24h", EnvPauseUntilMax, v))
		}
	}
	if slices.Contains(f.Vars, EnvDriftMode) {
		if c.DriftMode, err = ParseDriftMode(env[EnvDriftMode]); err != nil {
			errs = append(errs, err)
		}
	}
	c.RoleARNs = List(env[EnvRoleARNs])
	c.AlertTopicARN = strings.TrimSpace(env[EnvAlertTopic])
	if c.TargetAccounts, err = TargetAccounts(env[EnvTargetAccounts]); err != nil {
		errs = append(errs, err)
	}
	c.TargetRole = strings.TrimSpace(env[EnvTargetRole])
	if c.TargetRole == "" {
		c.TargetRole = DefaultTargetRole
	}
	c.TargetExternalID = strings.TrimSpace(env[EnvTargetExternalID])
	c.SweepQueueURL = strings.TrimSpace(env[EnvSweepQueueURL])
	c.ExpiryTargetARN = strings.TrimSpace(env[EnvExpiryTarget])
	c.ExpiryRoleARN = strings.TrimSpace(env[EnvExpiryRole])
	c.ExpiryGroup = strings.TrimSpace(env[EnvExpiryGroup])
	if slices.Contains(f.Vars, EnvFlowLogs) {
		if c.FlowLogs = strings.TrimSpace(env[EnvFlowLogs]); c.FlowLogs != "" {
			if _, _, err := flowlog.ParseURL(c.FlowLogs); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", EnvFlowLogs, err))
			}
		}
		if v := strings.TrimSpace(env[EnvUsedWithin]); v != "" {
			if c.UsedWithin, err = ParseWindow(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", EnvUsedWithin, err))
			}
		}
	}
	if c.ExpiryTargetARN != "" && c.ExpiryRoleARN == "" {
		errs = append(errs, fmt.Errorf("%s is set, so %s must be too (the role EventBridge Scheduler invokes it with)", EnvExpiryTarget, EnvExpiryRole))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ParseWindow reads a window length: days ("30d"), weeks ("2w") or a Go
// duration ("36h"), longer than zero (USED_WITHIN; the CLI's --since and
// --used-within).
func ParseWindow(s string) (time.Duration, error) {
	var d time.Duration
	switch {
	case strings.HasSuffix(s, "d") || strings.HasSuffix(s, "w"):
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil {
			return 0, fmt.Errorf("%q: want days (30d), weeks (2w) or a duration (36h)", s)
		}
		d = time.Duration(n) * 24 * time.Hour
		if strings.HasSuffix(s, "w") {
			d *= 7
		}
	default:
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want days (30d), weeks (2w) or a duration (36h)", s)
		}
	}
	if d <= 0 {
		return 0, errors.New(strconv.Quote(s) + ": the window must be longer than zero")
	}
	return d, nil
}

// Prefix normalises RULES_PREFIX (and the CLI's --prefix): empty means
// the default "rules/"; a prefix without a trailing slash gets one
// ("rules" is "rules/"), so keys relative to it never start with "/".
// Use "/" for the whole bucket.
func Prefix(v string) string {
	switch {
	case v == "":
		return "rules/"
	case v == "/":
		return ""
	case !strings.HasSuffix(v, "/"):
		return v + "/"
	}
	return v
}

// PolicyKey checks POLICY_KEY (empty means DefaultPolicyKey): a key
// outside the rules prefix, or it would be read as a rule file too. With
// the whole bucket as the rules prefix ("", RULES_PREFIX=/) nothing is
// outside: the sources then leave the policy key out (PolicySource).
func PolicyKey(v, rulesPrefix string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		v = DefaultPolicyKey
	}
	if (rulesPrefix != "" && strings.HasPrefix(v, rulesPrefix)) || strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") {
		return "", fmt.Errorf("%s %q: want an object key outside %s %q, such as %s", EnvPolicyKey, v, EnvRulesPrefix, rulesPrefix, DefaultPolicyKey)
	}
	return v, nil
}

// MaxRevoke parses MAX_REVOKE (and the CLI's --max-revoke): empty means
// reconcile.DefaultMaxRevoke, a negative number means no limit, 0 is an
// error (it reads as "revoke nothing", which is not what the engine
// would do with it).
func MaxRevoke(v string) (int, error) {
	if v == "" {
		return reconcile.DefaultMaxRevoke, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%s %q: not an integer", EnvMaxRevoke, v)
	}
	if err := CheckMaxRevoke(n); err != nil {
		return 0, fmt.Errorf("%s %q: %w", EnvMaxRevoke, v, err)
	}
	return n, nil
}

// CheckMaxRevoke rejects 0.
func CheckMaxRevoke(n int) error {
	if n == 0 {
		return errors.New("must not be 0 (use a negative number for no limit)")
	}
	return nil
}

// DriftMode is what the drift function does with drift.
type DriftMode string

const (
	DriftRevert DriftMode = "revert" // the default
	DriftReport DriftMode = "report" // plan only (DryRun)
)

// ParseDriftMode parses DRIFT_MODE (empty means revert).
func ParseDriftMode(v string) (DriftMode, error) {
	switch m := DriftMode(strings.ToLower(strings.TrimSpace(v))); m {
	case "":
		return DriftRevert, nil
	case DriftRevert, DriftReport:
		return m, nil
	}
	return "", fmt.Errorf("%s %q: want report or revert", EnvDriftMode, v)
}

// List splits a comma-separated variable (SGRULES_ROLE_ARNS), dropping
// blanks.
func List(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// TargetAccounts parses TARGET_ACCOUNTS (and the CLI's
// --target-accounts): comma-separated 12-digit account ids; blanks are
// dropped, duplicates kept once, the result sorted.
func TargetAccounts(v string) ([]string, error) {
	var out []string
	for _, a := range List(v) {
		if !isAccountID(a) {
			return nil, fmt.Errorf("%s: %q is not a 12-digit account id", EnvTargetAccounts, a)
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
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

// tableNameRe is a DynamoDB table name.
var tableNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// PeerLedgers parses PEER_LEDGERS: comma-separated table names or
// DynamoDB table ARNs (arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME).
func PeerLedgers(v string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, _, err := PeerTable(p); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvPeerLedgers, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// PeerTable returns the table name and region ("": the functions' own)
// of a PEER_LEDGERS entry.
func PeerTable(entry string) (name, region string, err error) {
	if !strings.HasPrefix(entry, "arn:") {
		if !tableNameRe.MatchString(entry) {
			return "", "", fmt.Errorf("%q is not a table name (3 to 255 letters, digits, _ . -) or a table ARN", entry)
		}
		return entry, "", nil
	}
	a, err := arn.Parse(entry)
	name, ok := strings.CutPrefix(a.Resource, "table/")
	if err != nil || a.Service != "dynamodb" || !ok || !tableNameRe.MatchString(name) || a.Region == "" {
		return "", "", fmt.Errorf("%q is not a DynamoDB table ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)", entry)
	}
	return name, a.Region, nil
}
