package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/sgrules/sgrules/pkg/rules"
)

// naive applies a workload one API call per rule, as per-rule resources
// do (Terraform's aws_vpc_security_group_ingress_rule, CloudFormation's
// AWS::EC2::SecurityGroupIngress, Alchemy's SecurityGroupRule): one
// Authorize per new rule followed by one Describe of it to check it, one
// Describe per rule in scope to refresh it on every run, one Revoke per
// removed rule, one ModifySecurityGroupRules per changed description, and
// a replacement (Revoke + Authorize + Describe) per changed port. Its
// state (rule index → rule id) stands for the tool's state file.
type naive struct {
	ec2    *ec2.Client
	groups []string
	state  map[int]string
}

func ipPermission(s spec, groups []string) ec2types.IpPermission {
	p := ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(s.port), ToPort: aws.Int32(s.port)}
	if s.peerGroup >= 0 {
		p.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String(groups[s.peerGroup]), Description: aws.String(s.desc)}}
	} else {
		p.IpRanges = []ec2types.IpRange{{CidrIp: aws.String(s.cidr), Description: aws.String(s.desc)}}
	}
	return p
}

// create authorizes one rule and describes it to check it.
func (nv *naive) create(ctx context.Context, s spec) error {
	g := aws.String(nv.groups[s.group])
	perms := []ec2types.IpPermission{ipPermission(s, nv.groups)}
	var created []ec2types.SecurityGroupRule
	if s.dir == rules.Ingress {
		out, err := nv.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g, IpPermissions: perms})
		if err != nil {
			return fmt.Errorf("naive authorize rule %d: %w", s.i, err)
		}
		created = out.SecurityGroupRules
	} else {
		out, err := nv.ec2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: g, IpPermissions: perms})
		if err != nil {
			return fmt.Errorf("naive authorize rule %d: %w", s.i, err)
		}
		created = out.SecurityGroupRules
	}
	if len(created) == 0 {
		return fmt.Errorf("naive authorize rule %d: no rule id returned", s.i)
	}
	nv.state[s.i] = aws.ToString(created[0].SecurityGroupRuleId)
	if _, err := nv.refresh(ctx, s.i); err != nil {
		return err
	}
	return nil
}

// refresh describes one rule by id; false when it is gone.
func (nv *naive) refresh(ctx context.Context, i int) (bool, error) {
	out, err := nv.ec2.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{nv.state[i]}})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidSecurityGroupRuleId.NotFound" {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("naive describe rule %d: %w", i, err)
	}
	return len(out.SecurityGroupRules) > 0, nil
}

func (nv *naive) revoke(ctx context.Context, s spec) error {
	g, ids := aws.String(nv.groups[s.group]), []string{nv.state[s.i]}
	var err error
	if s.dir == rules.Ingress {
		_, err = nv.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: g, SecurityGroupRuleIds: ids})
	} else {
		_, err = nv.ec2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: g, SecurityGroupRuleIds: ids})
	}
	if err != nil {
		return fmt.Errorf("naive revoke rule %d: %w", s.i, err)
	}
	delete(nv.state, s.i)
	return nil
}

func (nv *naive) modify(ctx context.Context, s spec) error {
	p := ipPermission(s, nv.groups)
	req := &ec2types.SecurityGroupRuleRequest{IpProtocol: p.IpProtocol, FromPort: p.FromPort, ToPort: p.ToPort, Description: aws.String(s.desc)}
	if s.peerGroup >= 0 {
		req.ReferencedGroupId = aws.String(nv.groups[s.peerGroup])
	} else {
		req.CidrIpv4 = aws.String(s.cidr)
	}
	_, err := nv.ec2.ModifySecurityGroupRules(ctx, &ec2.ModifySecurityGroupRulesInput{
		GroupId:            aws.String(nv.groups[s.group]),
		SecurityGroupRules: []ec2types.SecurityGroupRuleUpdate{{SecurityGroupRuleId: aws.String(nv.state[s.i]), SecurityGroupRule: req}},
	})
	if err != nil {
		return fmt.Errorf("naive modify rule %d: %w", s.i, err)
	}
	return nil
}
