package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
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

// World-open spellings through the CLI: validate skips a prefix list
// offline and decides it with --online (its entries read); plan --policy
// refuses the two halves of IPv4 and a prefix list that does not exist
// (fail closed), and apply writes none of them.
func TestPolicyWorldOpenSpellingsCLI(t *testing.T) {
	w := newCLIWorld(t)
	web := w.group("web")
	out, err := w.ec2.CreateManagedPrefixList(context.Background(), &ec2.CreateManagedPrefixListInput{
		PrefixListName: aws.String("everyone"), AddressFamily: aws.String("IPv4"), MaxEntries: aws.Int32(5),
		Entries: []ec2types.AddPrefixListEntry{{Cidr: aws.String("0.0.0.0/0")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pl := aws.ToString(out.PrefixList.PrefixListId)
	ssh := func(peer string) string {
		return "rules:\n  ssh:\n    securityGroup: " + web + "\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    " + peer + "\n"
	}
	pol := filepath.Join(t.TempDir(), "sgrules.yaml")
	if err := os.WriteFile(pol, []byte("deny:\n  - id: no-world-ssh\n    type: ingress\n    ports: 22\n    cidrs: [0.0.0.0/0, \"::/0\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.write("list.yaml", ssh("prefixListIds: ["+pl+"]"))
	list := filepath.Join(w.dir, "list.yaml")
	w.expect(exitOK, []string{list + ":8:21: ssh: skipped policy NO-WORLD-SSH: needs the entries of prefix list " + pl}, "validate", "--policy", pol, w.dir)
	w.expect(exitFail, []string{list + ":8:21: ssh: violates policy NO-WORLD-SSH: ingress tcp 22 from " + pl + ", which covers the internet (0.0.0.0/0)"},
		"validate", "--policy", pol, "--online", w.dir)

	w.write("halves.yaml", ssh("cidrBlocks: [0.0.0.0/1, 128.0.0.0/1]"))
	w.write("missing.yaml", ssh("prefixListIds: [pl-0123456789abcdef0]"))
	want := []string{
		"rules/halves.yaml:8:18: ssh: violates policy NO-WORLD-SSH: ingress tcp 22 from 0.0.0.0/1; with ingress tcp 22 from 128.0.0.0/1 it covers the internet (0.0.0.0/0)",
		"rules/list.yaml:8:21: ssh: violates policy NO-WORLD-SSH: ingress tcp 22 from " + pl + ", which covers the internet (0.0.0.0/0)",
		"rules/missing.yaml:8:21: ssh: cannot decide policy NO-WORLD-SSH: needs the entries of prefix list pl-0123456789abcdef0 (it does not exist); a check that cannot be decided refuses the file",
	}
	w.expect(exitFail, want, "plan", "--policy", pol, w.dir)
	w.expect(exitFail, want, "apply", "--policy", pol, w.dir)
	if got := strings.Join(w.rules(web), "\n"); strings.Contains(got, "|22|") {
		t.Fatalf("a world-open SSH rule was written:\n%s", got)
	}
}
