package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
)

// A region name the SDK does not know is accepted offline (with a
// did-you-mean warning one edit away from a known region); validate
// --online, plan and apply ask EC2 DescribeRegions and refuse it, located
// at the file's region field, without writing anything.
func TestRegionThatDoesNotExist(t *testing.T) {
	w := newCLIWorld(t)
	web := w.group("web")
	body := "rules:\n  ssh:\n    securityGroup: " + web + "\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [10.0.0.0/8]\n"
	w.write("a.yaml", "region: eu-west-9\n"+body)
	w.write("b.yaml", "region: me-west-1\nrules: {}\n")
	const located = `a.yaml:1:9: region: "eu-west-9" does not exist: EC2 DescribeRegions does not list it (did you mean "eu-west-1"?)`

	w.expect(exitOK, []string{`a.yaml:1:9: warning: region: "eu-west-9" is not a region sgrules knows (did you mean "eu-west-1"?)`, "2 files checked, 0 invalid"},
		"validate", w.dir)
	w.expect(exitFail, []string{located, "2 files checked, 1 invalid"}, "validate", "--online", w.dir)
	// moto serves no EC2 in me-west-1: plan and apply would fail there.
	if err := os.Remove(filepath.Join(w.dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	w.expect(exitFail, []string{located}, "plan", w.dir)
	w.expect(exitFail, []string{located}, "apply", w.dir)
	actual, err := ec2sg.New(w.ec2).DescribeRules(context.Background(), []string{web})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range actual {
		if a.Key.FromPort == 22 {
			t.Errorf("apply wrote %v for a file in a region that does not exist", a.Key)
		}
	}

	// A file applied at home that moves to a region that does not exist
	// is invalid: it keeps what it applied, nothing is revoked.
	w.write("a.yaml", body)
	w.expect(exitOK, nil, "apply", w.dir)
	w.write("a.yaml", "region: eu-west-9\n"+body)
	w.expect(exitFail, []string{located}, "apply", w.dir)
	actual, err = ec2sg.New(w.ec2).DescribeRules(context.Background(), []string{web})
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, a := range actual {
		if a.Key.FromPort == 22 {
			kept++
		}
	}
	if kept != 1 {
		t.Errorf("after the move to a region that does not exist, %d rules on port 22, want the 1 applied", kept)
	}
}
