package ec2sg_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

// TestStaleReferences: DescribeStaleSecurityGroups (moto patched to answer
// as EC2 does) names a rule referencing a deleted group of a peered VPC,
// and one referencing a group of a VPC whose peering was deleted; a
// reference within the VPC and one over an active peering are not stale.
func TestStaleReferences(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	peerVPC := motoserver.CreateVPC(t, e.cfg)
	app := e.group(t, "app", nil)
	local := e.group(t, "local", nil)
	db := motoserver.CreateGroup(t, e.cfg, peerVPC, "db", nil)
	gone := motoserver.CreateGroup(t, e.cfg, peerVPC, "gone", nil)
	pcx, err := e.ec2.CreateVpcPeeringConnection(ctx, &ec2.CreateVpcPeeringConnectionInput{VpcId: aws.String(e.vpc), PeerVpcId: aws.String(peerVPC)})
	if err != nil {
		t.Fatal(err)
	}
	pcxID := pcx.VpcPeeringConnection.VpcPeeringConnectionId
	if _, err := e.ec2.AcceptVpcPeeringConnection(ctx, &ec2.AcceptVpcPeeringConnectionInput{VpcPeeringConnectionId: pcxID}); err != nil {
		t.Fatal(err)
	}
	for port, ref := range map[int32]string{5432: db, 22: gone, 80: local} {
		if _, err := e.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(app), IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(ref)}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	show := func(refs []ec2sg.StaleReference) string {
		var s []string
		for _, r := range refs {
			s = append(s, fmt.Sprintf("%s egress=%v %s %d-%d %s %s", r.GroupID, r.Egress, r.Protocol, r.FromPort, r.ToPort, r.RefGroupID, r.PeeringStatus))
		}
		return strings.Join(s, "; ")
	}
	stale, err := ec2sg.StaleReferences(ctx, e.ec2, []string{e.vpc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := show(stale); got != "" {
		t.Errorf("before: stale %q, want none", got)
	}
	if _, err := e.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(gone)}); err != nil {
		t.Fatal(err)
	}
	stale, err = ec2sg.StaleReferences(ctx, e.ec2, []string{e.vpc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := show(stale), app+" egress=false tcp 22-22 "+gone+" "; got != want {
		t.Errorf("group deleted: stale %q, want %q", got, want)
	}
	if _, err := e.ec2.DeleteVpcPeeringConnection(ctx, &ec2.DeleteVpcPeeringConnectionInput{VpcPeeringConnectionId: pcxID}); err != nil {
		t.Fatal(err)
	}
	stale, err = ec2sg.StaleReferences(ctx, e.ec2, []string{e.vpc, peerVPC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := show(stale), app+" egress=false tcp 22-22 "+gone+" ; "+app+" egress=false tcp 5432-5432 "+db+" deleted"; got != want {
		t.Errorf("peering deleted: stale %q, want %q", got, want)
	}
	if stale, err = ec2sg.StaleReferences(ctx, e.ec2, []string{e.vpc}, map[string]bool{local: true}); err != nil || len(stale) != 0 {
		t.Errorf("only local: %v %v", show(stale), err)
	}
}
