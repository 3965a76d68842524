package awsconfig_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

// stsCalls records the STS calls made with a configuration.
type stsCalls struct {
	mu       sync.Mutex
	identity int
	assumed  []sts.AssumeRoleInput
}

func (r *stsCalls) install(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("record", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			r.mu.Lock()
			switch p := in.Parameters.(type) {
			case *sts.GetCallerIdentityInput:
				r.identity++
			case *sts.AssumeRoleInput:
				r.assumed = append(r.assumed, *p)
			}
			r.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
	})
}

// whoIs is the account and ARN cfg's credentials act as.
func whoIs(t *testing.T, cfg aws.Config) (string, string) {
	t.Helper()
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Account), aws.ToString(out.Arn)
}

// TestCallerAssumesRoleInAnotherAccount: the caller's own account gets its
// own credentials; another account gets the role's, assumed once per
// account (every region shares them) with the session name, external id
// and session policy given; moto keeps the accounts apart by those
// credentials.
func TestCallerAssumesRoleInAnotherAccount(t *testing.T) {
	const acctB, acctC = "111122223333", "444455556666"
	const policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*"],"Resource":"*"}]}`
	cfg := motoserver.Shared(t).Config(t)
	var rec stsCalls
	rec.install(&cfg)
	home, homeARN := whoIs(t, cfg)
	rec.identity = 0

	c := awsconfig.NewCaller(cfg, awsconfig.AssumeRole{Role: "/sgrules-target", ExternalID: "ext-1", SessionName: "sgrules-test", Policy: policy})
	for range 2 {
		id, err := c.Identify(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if id != (awsconfig.Identity{Account: home, Partition: "aws"}) {
			t.Fatalf("Identify = %+v, want account %s in aws", id, home)
		}
	}
	if rec.identity != 1 {
		t.Errorf("Identify asked sts:GetCallerIdentity %d times, want once", rec.identity)
	}
	if got, want := c.RoleARN(acctB), "arn:aws:iam::"+acctB+":role/sgrules-target"; got != want {
		t.Errorf("RoleARN = %q, want %q", got, want)
	}

	own := c.Config(rules.Target{Account: home, Region: "eu-west-1"})
	if acct, who := whoIs(t, own); own.Region != "eu-west-1" || acct != home || who != homeARN {
		t.Errorf("own account: region %q, acts as %s, want eu-west-1 with cfg's credentials (%s)", own.Region, who, homeARN)
	}

	b1 := c.Config(rules.Target{Account: acctB, Region: "us-east-1"})
	b2 := c.Config(rules.Target{Account: acctB, Region: "eu-west-1"})
	if b1.Credentials != b2.Credentials || b2.Region != "eu-west-1" {
		t.Errorf("account B: credentials %p and %p, region %q: want one cache for every region", b1.Credentials, b2.Credentials, b2.Region)
	}
	for _, b := range []aws.Config{b1, b2} {
		acct, who := whoIs(t, b)
		if acct != acctB || !strings.Contains(who, ":assumed-role/sgrules-target/sgrules-test") {
			t.Errorf("account B acts as %s (%s), want %s through sgrules-target, session sgrules-test", acct, who, acctB)
		}
	}
	if acct, _ := whoIs(t, c.Config(rules.Target{Account: acctC, Region: "us-east-1"})); acct != acctC {
		t.Errorf("account C acts as %s", acct)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.assumed) != 2 {
		t.Fatalf("%d sts:AssumeRole calls, want one per account (B, C)", len(rec.assumed))
	}
	for i, acct := range []string{acctB, acctC} {
		in := rec.assumed[i]
		if aws.ToString(in.RoleArn) != "arn:aws:iam::"+acct+":role/sgrules-target" || aws.ToString(in.RoleSessionName) != "sgrules-test" ||
			aws.ToString(in.ExternalId) != "ext-1" || aws.ToString(in.Policy) != policy {
			t.Errorf("AssumeRole %d: role %q session %q external id %q policy %q", i,
				aws.ToString(in.RoleArn), aws.ToString(in.RoleSessionName), aws.ToString(in.ExternalId), aws.ToString(in.Policy))
		}
	}
}

// TestCallerWithoutOptionals: no external id and no session policy are
// sent when none is given.
func TestCallerWithoutOptionals(t *testing.T) {
	cfg := motoserver.Shared(t).Config(t)
	var rec stsCalls
	rec.install(&cfg)
	c := awsconfig.NewCaller(cfg, awsconfig.AssumeRole{Role: "sgrules-target", SessionName: "sgrules"})
	if _, err := c.Identify(t.Context()); err != nil {
		t.Fatal(err)
	}
	if acct, _ := whoIs(t, c.Config(rules.Target{Account: "111122223333", Region: "us-east-1"})); acct != "111122223333" {
		t.Fatalf("acts as %s", acct)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.assumed) != 1 || rec.assumed[0].ExternalId != nil || rec.assumed[0].Policy != nil {
		t.Fatalf("AssumeRole calls %+v, want one without external id or policy", rec.assumed)
	}
}
