package ec2sg

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// StaleAPI is what StaleReferences uses of the EC2 client.
type StaleAPI interface {
	DescribeStaleSecurityGroups(ctx context.Context, in *ec2.DescribeStaleSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeStaleSecurityGroupsOutput, error)
}

var _ StaleAPI = (*ec2.Client)(nil)

// StaleReference is one stale rule EC2 reports: a rule of GroupID
// referencing RefGroupID, a group that was deleted or that is in a VPC
// no longer peered (PeeringStatus, RefVPCID and PeeringID as EC2 gives
// them, when it does).
type StaleReference struct {
	GroupID, VPCID string
	Egress         bool
	Protocol       string
	FromPort       int32
	ToPort         int32
	RefGroupID     string
	RefUserID      string
	RefVPCID       string
	PeeringID      string
	PeeringStatus  string
}

// StaleReferences asks DescribeStaleSecurityGroups for each VPC (every
// page, 255 groups a page) and returns the stale rules of the groups in
// only (nil: every group of the VPCs), sorted by group, direction, port
// and referenced group.
func StaleReferences(ctx context.Context, api StaleAPI, vpcIDs []string, only map[string]bool) ([]StaleReference, error) {
	var out []StaleReference
	vpcs := append([]string(nil), vpcIDs...)
	sort.Strings(vpcs)
	for _, vpc := range vpcs {
		p := ec2.NewDescribeStaleSecurityGroupsPaginator(api, &ec2.DescribeStaleSecurityGroupsInput{VpcId: aws.String(vpc), MaxResults: aws.Int32(255)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describe stale security groups of %s: %w", vpc, err)
			}
			for _, g := range page.StaleSecurityGroupSet {
				gid := aws.ToString(g.GroupId)
				if only != nil && !only[gid] {
					continue
				}
				out = append(out, flattenStale(gid, vpc, false, g.StaleIpPermissions)...)
				out = append(out, flattenStale(gid, vpc, true, g.StaleIpPermissionsEgress)...)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.GroupID != b.GroupID {
			return a.GroupID < b.GroupID
		}
		if a.Egress != b.Egress {
			return !a.Egress
		}
		if a.FromPort != b.FromPort {
			return a.FromPort < b.FromPort
		}
		return a.RefGroupID < b.RefGroupID
	})
	return out, nil
}

func flattenStale(groupID, vpc string, egress bool, perms []types.StaleIpPermission) []StaleReference {
	var out []StaleReference
	for _, p := range perms {
		for _, pair := range p.UserIdGroupPairs {
			out = append(out, StaleReference{GroupID: groupID, VPCID: vpc, Egress: egress, Protocol: aws.ToString(p.IpProtocol),
				FromPort: aws.ToInt32(p.FromPort), ToPort: aws.ToInt32(p.ToPort), RefGroupID: aws.ToString(pair.GroupId),
				RefUserID: aws.ToString(pair.UserId), RefVPCID: aws.ToString(pair.VpcId), PeeringID: aws.ToString(pair.VpcPeeringConnectionId),
				PeeringStatus: aws.ToString(pair.PeeringStatus)})
		}
	}
	return out
}
