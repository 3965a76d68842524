// Package flowcorpus builds the labelled traffic corpus of pkg/flowlog
// (flowlogtest) in moto: the VPC, its security groups tagged Name, the
// network interfaces with their groups and addresses, the prefix lists,
// and the flow-log objects in S3 in the standard layout. Only tests import
// it.
package flowcorpus

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/internal/testutil/motoworld"
	"github.com/sgrules/sgrules/pkg/flowlog/flowlogtest"
)

// Account is the account moto serves, as it appears in log keys.
const Account = "123456789012"

// Build creates the corpus world with c (a client on moto) and returns
// the ids of its placeholders.
func Build(ctx context.Context, c *ec2.Client, corpus *flowlogtest.Corpus) (flowlogtest.IDs, error) {
	ids := flowlogtest.IDs{}
	vpc, err := motoworld.CreateVPC(ctx, c)
	if err != nil {
		return nil, err
	}
	ids["vpc"] = vpc
	sub, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String("10.0.0.0/20")})
	if err != nil {
		return nil, fmt.Errorf("create subnet: %w", err)
	}
	for _, g := range corpus.World.Groups {
		id, err := motoworld.CreateGroup(ctx, c, vpc, g+"-sg", map[string]string{"Name": g})
		if err != nil {
			return nil, err
		}
		ids["sg:"+g] = id
	}
	for _, in := range corpus.World.Interfaces {
		req := &ec2.CreateNetworkInterfaceInput{SubnetId: sub.Subnet.SubnetId}
		for _, g := range in.Groups {
			req.Groups = append(req.Groups, ids["sg:"+g])
		}
		for _, s := range in.Addrs {
			a := netip.MustParseAddr(s)
			switch {
			case a.Is6():
				req.Ipv6Addresses = append(req.Ipv6Addresses, ec2types.InstanceIpv6Address{Ipv6Address: aws.String(s)})
			case req.PrivateIpAddress == nil:
				req.PrivateIpAddress = aws.String(s)
			default:
				return nil, fmt.Errorf("interface %s: one IPv4 address only", in.Name)
			}
		}
		out, err := c.CreateNetworkInterface(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("create interface %s: %w", in.Name, err)
		}
		ids["eni:"+in.Name] = aws.ToString(out.NetworkInterface.NetworkInterfaceId)
	}
	names := make([]string, 0, len(corpus.World.PrefixLists))
	for n := range corpus.World.PrefixLists {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		req := &ec2.CreateManagedPrefixListInput{PrefixListName: aws.String(n), AddressFamily: aws.String("IPv4"), MaxEntries: aws.Int32(10)}
		for _, e := range corpus.World.PrefixLists[n] {
			req.Entries = append(req.Entries, ec2types.AddPrefixListEntry{Cidr: aws.String(e)})
		}
		out, err := c.CreateManagedPrefixList(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("create prefix list %s: %w", n, err)
		}
		ids["pl:"+n] = aws.ToString(out.PrefixList.PrefixListId)
	}
	return ids, nil
}

// LogPrefix is where flow logs of the account and region land under the
// destination prefix (which ends in "/" or is empty).
func LogPrefix(prefix, region string) string {
	return prefix + "AWSLogs/" + Account + "/vpcflowlogs/" + region + "/"
}

// PutLogs writes every log of the corpus, its placeholders replaced by
// ids and gzip-compressed, under the day's folder (YYYY/MM/DD/) of the
// standard layout, and returns the keys.
func PutLogs(ctx context.Context, c *s3.Client, bucket, prefix, region, day string, corpus *flowlogtest.Corpus, ids flowlogtest.IDs) ([]string, error) {
	names := make([]string, 0, len(corpus.Logs))
	for n := range corpus.Logs {
		names = append(names, n)
	}
	sort.Strings(names)
	var keys []string
	for _, n := range names {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write([]byte(ids.Expand(corpus.Logs[n]))); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		key := LogPrefix(prefix, region) + day + "/" + Account + "_vpcflowlogs_" + region + "_fl-0123456789abcdef0_" + n + ".gz"
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes())}); err != nil {
			return nil, fmt.Errorf("put %s: %w", key, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// TrafficFormat is a custom flow-log format with the fields attribution
// reads best (flow-direction, tcp-flags), for PutLog's records.
const TrafficFormat = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status flow-direction tcp-flags"

// Flow is one accepted TCP connection a peer opened to an interface's
// port, as PutLog writes it (TrafficFormat: ingress, SYN).
type Flow struct {
	ENI        string
	Peer, Addr string
	Port       int
	At         time.Time
}

// PutLog writes one gzip-compressed log object of flows (TrafficFormat)
// in the folder of the day of the first flow, and returns its key.
func PutLog(ctx context.Context, c *s3.Client, bucket, prefix, region, name string, flows []Flow) (string, error) {
	var body bytes.Buffer
	body.WriteString(TrafficFormat + "\n")
	for _, f := range flows {
		fmt.Fprintf(&body, "2 %s %s %s %s 49152 %d 6 10 840 %d %d ACCEPT OK ingress 2\n",
			Account, f.ENI, f.Peer, f.Addr, f.Port, f.At.Unix()-30, f.At.Unix())
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(body.Bytes()); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	day := flows[0].At.UTC().Format("2006/01/02")
	key := LogPrefix(prefix, region) + day + "/" + Account + "_vpcflowlogs_" + region + "_fl-0123456789abcdef0_" + name + ".log.gz"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes())}); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	return key, nil
}

// Interface creates a network interface in a new subnet 10.0.200.0/24 of
// vpc (or the one created before), with addr and groups, and returns its id.
func Interface(ctx context.Context, c *ec2.Client, vpc, addr string, groups ...string) (string, error) {
	subs, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("cidr-block"), Values: []string{"10.0.200.0/24"}}}})
	if err != nil {
		return "", fmt.Errorf("describe subnets: %w", err)
	}
	var sub string
	if len(subs.Subnets) > 0 {
		sub = aws.ToString(subs.Subnets[0].SubnetId)
	} else {
		out, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String("10.0.200.0/24")})
		if err != nil {
			return "", fmt.Errorf("create subnet: %w", err)
		}
		sub = aws.ToString(out.Subnet.SubnetId)
	}
	out, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(sub), PrivateIpAddress: aws.String(addr), Groups: groups})
	if err != nil {
		return "", fmt.Errorf("create interface: %w", err)
	}
	return aws.ToString(out.NetworkInterface.NetworkInterfaceId), nil
}
