package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/internal/testutil/flowcorpus"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
)

// TestUnusedWrite: "unused --write DIR" rewrites the rule files without
// the rules that carried no traffic, with the logs covering their group:
// the used rule stays, the unused one goes with its comment (every other
// line kept), a rule of a group with no interface (usage unknown) stays,
// a file whose every rule goes keeps "rules: {}", AWS is not touched, and
// the rewritten directory validates and plans the revokes.
func TestUnusedWrite(t *testing.T) {
	extra := `# Extra web rules, reviewed by the platform team.
rules:
  # Partners' HTTPS (used: 198.51.100.8 connects).
  web-https-partners:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [198.51.100.0/24]

  # An old HTTP entry nobody uses.
  web-http-8080:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 8080
    toPort: 8080
    cidrBlocks: [192.0.2.0/24] # old office

  lonely-ssh: # the group has no interface: usage unknown
    securityGroup: {tags: {Name: lonely}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.0.0.0/8]

  quiet-https: # an interface no flow log covers: usage unknown
    securityGroup: {tags: {Name: quiet}}
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [10.0.0.0/8]
`
	gone := `# Only an unused rule here.
rules:
  web-ssh-old:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 2222
    toPort: 2222
    cidrBlocks: [203.0.113.0/24]
`
	w, _, ids := usageWorld(t, []string{"lonely", "quiet"}, map[string]string{"extra.yaml": extra, "gone.yaml": gone})
	if _, err := flowcorpus.Interface(context.Background(), w.ec2, ids["vpc"], "10.0.200.5", ids["sg:quiet"]); err != nil {
		t.Fatal(err)
	}
	w.expect(0, []string{"No changes"}, "plan", w.dir)
	out := w.expect(0, nil, "unused", "--flow-logs", "s3://flow-logs/vpc", "--until", "2025-12-02", "--output", "json", "--write", w.dir, w.dir)
	var doc render.UnusedDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	removed := map[string]string{}
	for _, r := range doc.Removed {
		removed[r.File] = strings.Join(r.Rules, " ")
	}
	unknown := map[string]string{}
	for _, r := range doc.Unused {
		unknown[r.Rule] = r.Unknown
	}
	if unknown["lonely-ssh"] != render.UnknownNoInterface || unknown["quiet-https"] != render.UnknownNoLogs || unknown["web-http-8080"] != "" {
		t.Errorf("unknown %q", unknown)
	}
	// The corpus's rules labelled unused go too; web.yaml's used rules
	// (web-https-in, web-ssh-office: SSH from 203.0.113.50) stay.
	for file, want := range map[string]string{"extra.yaml": "web-http-8080", "gone.yaml": "web-ssh-old", "web.yaml": "web-http-in",
		"admin.yaml": "admin-rdp", "app.yaml": "app-from-batch", "db.yaml": "db-from-admin"} {
		if removed[file] != want {
			t.Errorf("%s: removed %q, want %q", file, removed[file], want)
		}
	}
	if len(removed) != 6 {
		t.Errorf("removed %v", removed)
	}
	web, _ := os.ReadFile(filepath.Join(w.dir, "web.yaml"))
	for _, r := range []string{"web-https-in:", "web-ssh-office:"} {
		if !strings.Contains(string(web), r) {
			t.Errorf("web.yaml lost the used rule %s:\n%s", r, web)
		}
	}
	got, err := os.ReadFile(filepath.Join(w.dir, "extra.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(extra, `  # An old HTTP entry nobody uses.
  web-http-8080:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 8080
    toPort: 8080
    cidrBlocks: [192.0.2.0/24] # old office

`, "", 1)
	if string(got) != want {
		t.Errorf("extra.yaml:\n%s\nwant:\n%s", got, want)
	}
	if got, _ := os.ReadFile(filepath.Join(w.dir, "gone.yaml")); string(got) != "# Only an unused rule here.\nrules: {}\n" {
		t.Errorf("gone.yaml:\n%s", got)
	}
	// AWS untouched: the plan of the rewritten files revokes the six.
	w.expect(0, nil, "validate", w.dir)
	w.expect(0, []string{"Plan: 0 to authorize, 0 to update, 6 to revoke", "owners: rules/gone.yaml#web-ssh-old", "owners: rules/extra.yaml#web-http-8080"}, "plan", w.dir)
}

// TestUnusedStale: the unused report names the managed groups' stale
// references (DescribeStaleSecurityGroups), with the rule declaring one:
// a rule of web referencing a group of another VPC that was deleted.
func TestUnusedStale(t *testing.T) {
	w, _, ids := usageWorld(t, nil, nil)
	peerVPC := motoserver.CreateVPC(t, w.cfg)
	old := motoserver.CreateGroup(t, w.cfg, peerVPC, "old-peer", nil)
	w.write("peer.yaml", `rules:
  web-from-old-peer:
    securityGroup: {tags: {Name: web}}
    type: ingress
    protocol: tcp
    fromPort: 8443
    toPort: 8443
    sourceSecurityGroups: [`+old+`]
`)
	w.expect(0, []string{"Applied:"}, "apply", w.dir)
	if _, err := w.ec2.DeleteSecurityGroup(context.Background(), &ec2.DeleteSecurityGroupInput{GroupId: aws.String(old)}); err != nil {
		t.Fatal(err)
	}
	out := w.expect(0, nil, "unused", "--flow-logs", "s3://flow-logs/vpc", "--until", "2025-12-02", "--output", "json", w.dir)
	var doc render.UnusedDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.StaleReferences) != 1 {
		t.Fatalf("stale references %+v", doc.StaleReferences)
	}
	s := doc.StaleReferences[0]
	if s.GroupID != ids["sg:web"] || s.RefGroupID != old || s.Direction != "ingress" || s.Protocol != "tcp" || s.FromPort != 8443 ||
		strings.Join(s.Owners, " ") != "rules/peer.yaml#web-from-old-peer" {
		t.Errorf("stale %+v", s)
	}
	w.expect(0, []string{"1 stale group references", ids["sg:web"] + " ingress tcp 8443-8443 from " + old + ": rules/peer.yaml#web-from-old-peer"},
		"unused", "--flow-logs", "s3://flow-logs/vpc", "--until", "2025-12-02", w.dir)
}
