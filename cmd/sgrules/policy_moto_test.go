package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// plan, apply and drift with --policy: a violating file is refused at its
// rule, a hand-made world-open SSH rule is reported (exit 3), and with
// enforce: revoke, drift --revert revokes it while a compliant unmanaged
// rule stays.
func TestPolicyFlagOnPlanApplyDrift(t *testing.T) {
	w := newCLIWorld(t)
	web := w.group("web")
	w.write("web.yaml", "rules:\n  https:\n    securityGroup: "+web+"\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [0.0.0.0/0]\n")
	w.write("ssh.yaml", "rules:\n  ssh:\n    securityGroup: "+web+"\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [0.0.0.0/0]\n")
	polDir := t.TempDir()
	pol := filepath.Join(polDir, "sgrules.yaml")
	text := "deny:\n  - id: no-world-ssh\n    message: SSH must not be open to the internet\n    type: ingress\n    ports: 22\n    cidrs: [0.0.0.0/0]\n"
	if err := os.WriteFile(pol, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	w.expect(exitFail, []string{"rules/ssh.yaml:8:18: ssh: violates policy NO-WORLD-SSH: SSH must not be open to the internet"},
		"apply", "--policy", pol, w.dir)
	if got := strings.Join(w.rules(web), "\n"); strings.Contains(got, "|22|") || !strings.Contains(got, "|443|") {
		t.Fatalf("want only https applied:\n%s", got)
	}
	if err := os.Remove(filepath.Join(w.dir, "ssh.yaml")); err != nil {
		t.Fatal(err)
	}
	w.expect(exitOK, nil, "apply", "--policy", pol, w.dir)

	// Rules added by hand: one world-open SSH, one SSH from the office.
	w.authorize(web, false, ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}, {CidrIp: aws.String("192.0.2.0/24")}}})
	w.expect(exitDrift, []string{"violates policy NO-WORLD-SSH", "reported"}, "drift", "--policy", pol, w.dir)
	w.expect(exitDrift, nil, "drift", "--revert", "--policy", pol, w.dir) // enforce: report leaves it

	if err := os.WriteFile(pol, []byte(text+"enforce: revoke\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.expect(exitDrift, []string{"would revoke"}, "drift", "--policy", pol, w.dir)
	w.expect(exitOK, []string{"revoked"}, "drift", "--revert", "--policy", pol, w.dir)
	got := strings.Join(w.rules(web), "\n")
	if strings.Contains(got, "|22|22|cidr4:0.0.0.0/0") || !strings.Contains(got, "|22|22|cidr4:192.0.2.0/24") || !strings.Contains(got, "|443|") {
		t.Fatalf("want the world-open SSH rule revoked, the rest kept:\n%s", got)
	}
	w.expect(exitOK, nil, "drift", "--policy", pol, w.dir)
}
