package demo

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Traffic evidence (issue 25, docs/usage.md): VPC Flow Logs delivered to
// S3, read by `sgrules usage`.
const (
	FlowLogBucket = "sgrules-demo-flow-logs"
	// webAddr is the private address of the web server's interface.
	webAddr = "10.0.1.10"
	// flowLogFormat is the custom format docs/usage.md recommends (with
	// flow-direction and tcp-flags).
	flowLogFormat = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id flow-direction tcp-flags"
)

// showUsage puts a web server's interface (group web) in a subnet of the
// demo's VPC, writes one hour of its flow log to the flow-log bucket
// (HTTPS from two clients with their replies, a rejected SSH probe) and
// runs `sgrules usage` over web.yaml: its HTTPS rule carried traffic, the
// others none.
func (d *run) showUsage(ctx context.Context, cli string, env []string) error {
	web, ok := d.groups["web"]
	if !ok {
		return fmt.Errorf("no group web")
	}
	var webFile *example
	for i := range d.files {
		if d.files[i].Name == "web.yaml" {
			webFile = &d.files[i]
		}
	}
	if webFile == nil {
		return fmt.Errorf("no web.yaml among the examples")
	}
	d.step("Traffic evidence: a web server's interface in group web, one hour of its VPC Flow Log in s3://%s/AWSLogs/", FlowLogBucket)
	sub, err := d.c.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(d.vpc), CidrBlock: aws.String("10.0.1.0/24")})
	if err != nil {
		return fmt.Errorf("create subnet: %w", err)
	}
	eni, err := d.c.ec2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: sub.Subnet.SubnetId,
		Groups: []string{web}, PrivateIpAddress: aws.String(webAddr), Description: aws.String("sgrules demo web server")})
	if err != nil {
		return fmt.Errorf("create network interface: %w", err)
	}
	eniID := aws.ToString(eni.NetworkInterface.NetworkInterfaceId)
	if _, err := d.c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(FlowLogBucket)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", FlowLogBucket, err)
	}
	end := time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Minute)
	key, body, err := flowLogObject(eniID, d.vpc, end)
	if err != nil {
		return err
	}
	if _, err := d.c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(FlowLogBucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", FlowLogBucket, key, err)
	}
	d.info("interface %s (%s), flow log s3://%s/%s: HTTPS from 198.51.100.8 and 203.0.113.20 with the replies, an SSH probe rejected", eniID, webAddr, FlowLogBucket, key)

	dir := filepath.Join(d.tmp, "usage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, webFile.Name), webFile.Body, 0o644); err != nil {
		return err
	}
	args := []string{"usage", "--flow-logs", "s3://" + FlowLogBucket + "/", "--since", "1d", dir}
	d.step("sgrules usage --flow-logs s3://%s/ --since 1d DIR (DIR holding web.yaml)", FlowLogBucket)
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sgrules usage: %w\n%s%s", err, stdout.String(), stderr.String())
	}
	out := strings.TrimRight(stdout.String(), "\n")
	for _, l := range strings.Split(out, "\n") {
		d.info("%s", l)
	}
	var used, unused bool
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(l, "web-https-rule") && strings.Contains(l, "from 198.51.100.8") || strings.Contains(l, "web-https-rule") && strings.Contains(l, "from 203.0.113.20"):
			used = true
		case strings.Contains(l, "web-http-rule") && strings.Contains(l, "no traffic in the window"):
			unused = true
		}
	}
	if !used || !unused {
		return fmt.Errorf("sgrules usage: want web-https-rule used and web-http-rule with no traffic:\n%s", out)
	}
	return nil
}

// flowLogObject is one flow-log object of the interface for the hour
// ending at end, at its standard key and gzipped.
func flowLogObject(eni, vpc string, end time.Time) (string, []byte, error) {
	start := end.Add(-time.Hour)
	at := func(d time.Duration) string { return fmt.Sprint(start.Add(d).Unix()) }
	line := func(src, dst string, sport, dport, proto int, packets, bytes int, from, to time.Duration, action, dir string, flags int) string {
		return fmt.Sprintf("5 123456789012 %s %s %s %d %d %d %d %d %s %s %s OK %s %s %d", eni, src, dst, sport, dport, proto, packets, bytes, at(from), at(to), action, vpc, dir, flags)
	}
	lines := []string{
		flowLogFormat,
		// HTTPS opened by two clients (SYN from them), and the replies.
		line("198.51.100.8", webAddr, 50432, 443, 6, 12, 4200, 10*time.Minute, 11*time.Minute, "ACCEPT", "ingress", 3),
		line(webAddr, "198.51.100.8", 443, 50432, 6, 10, 18200, 10*time.Minute, 11*time.Minute, "ACCEPT", "egress", 19),
		line("203.0.113.20", webAddr, 61001, 443, 6, 8, 2900, 40*time.Minute, 41*time.Minute, "ACCEPT", "ingress", 3),
		line(webAddr, "203.0.113.20", 443, 61001, 6, 7, 9100, 40*time.Minute, 41*time.Minute, "ACCEPT", "egress", 19),
		// An SSH probe, rejected: credits no rule.
		line("192.0.2.66", webAddr, 40000, 22, 6, 1, 60, 50*time.Minute, 51*time.Minute, "REJECT", "ingress", 2),
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return "", nil, err
	}
	if err := zw.Close(); err != nil {
		return "", nil, err
	}
	key := fmt.Sprintf("AWSLogs/123456789012/vpcflowlogs/%s/%s/123456789012_vpcflowlogs_%s_fl-0demo_%s_0a1b2c3d.log.gz",
		Region, end.Format("2006/01/02"), Region, end.Format("20060102T1504Z"))
	return key, buf.Bytes(), nil
}

// cliEnv is the environment of the sgrules CLI the demo runs: the
// caller's, without AWS settings, and moto's.
func cliEnv(moto []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, moto...)
}

// showHistory runs `sgrules history` for a rule of a file (FILE#RULE):
// what the ledger recorded of it, newest first.
func (d *run) showHistory(ctx context.Context, cli string, env []string, rule string, want ...string) error {
	args := []string{"history", "--table", Table, rule}
	d.step("sgrules history --table %s %s", Table, rule)
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sgrules history: %w\n%s%s", err, stdout.String(), stderr.String())
	}
	out := strings.TrimRight(stdout.String(), "\n")
	for _, l := range strings.Split(out, "\n") {
		d.info("%s", l)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			return fmt.Errorf("sgrules history %s does not say %q:\n%s", rule, w, out)
		}
	}
	return nil
}
