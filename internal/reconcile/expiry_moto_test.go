package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/policyload"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// clock is a settable time for the engine: tests move it, never sleep.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// expiryWorld is a moto world whose engine reads the time from a clock.
func expiryWorld(t *testing.T, start time.Time) (*world, *clock) {
	t.Helper()
	w := newWorld(t)
	c := &clock{now: start}
	eng, err := reconcile.New(reconcile.Config{
		Source:   s3source.New(w.s3, w.bucket, "rules/"),
		Groups:   ec2sg.New(w.ec2),
		Ledger:   ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger"),
		LedgerID: "ledger",
		Now:      c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	return w, c
}

// tagged returns the rules of the world's groups as "KEY TAGVALUE" for
// those carrying tag, "KEY -" for the others.
func (w *world) tagged(tag string) map[string]string {
	w.t.Helper()
	var ids []string
	for _, id := range w.groups {
		ids = append(ids, id)
	}
	actual, err := ec2sg.New(ec2.NewFromConfig(w.cfg)).DescribeRules(context.Background(), ids)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range actual {
		v, ok := a.Tags[tag]
		if !ok {
			v = "-"
		}
		out[a.Key.String()] = v
	}
	return out
}

func sshRule(group, cidr, expires string) string {
	return fmt.Sprintf("    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: 22\n    toPort: 22\n    cidrBlocks: [%s]\n    expiresAt: %s\n", group, cidr, expires)
}

// TestExpirySweepRevokes: temporary rules are authorized before their
// deadline, each EC2 rule tagged with its own deadline; a sweep at the
// deadline revokes them, whether the file names its groups by id (the
// sweep declares it from its ledger record without reading it) or by tag
// (read and expanded again), while the permanent rules stay.
func TestExpirySweepRevokes(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w, clk := expiryWorld(t, t0)
	web, db := w.groups["web"], w.groups["database"]
	static := "rules:\n  https:\n    securityGroup: " + web + "\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [10.0.0.0/8]\n" +
		"  ssh-alice:\n" + sshRule(web, "198.51.100.7/32", "2026-12-07T12:00:00+01:00") +
		"  ssh-bob:\n" + sshRule(web, "198.51.100.8/32", "2026-12-07T11:30:00Z")
	byTag := "rules:\n  ssh-vendor:\n" + sshRule("{tags: {Name: database}}", "203.0.113.0/24", "2026-12-07T11:00:00Z")
	w.put("rules/static.yaml", []byte(static))
	w.put("rules/bytag.yaml", []byte(byTag))
	res := w.reconcile(reconcile.Request{All: true, Reason: "test"})
	if n := res.Plan.Count(reconcile.ActAuthorize); n != 4 {
		t.Fatalf("authorized %d, want 4: %+v", n, res.Plan.Actions)
	}
	alice := web + "|ingress|tcp|22|22|cidr4:198.51.100.7/32"
	bob := web + "|ingress|tcp|22|22|cidr4:198.51.100.8/32"
	vendor := db + "|ingress|tcp|22|22|cidr4:203.0.113.0/24"
	https := web + "|ingress|tcp|443|443|cidr4:10.0.0.0/8"
	tags := w.tagged(reconcile.TagExpiresAt)
	for k, want := range map[string]string{alice: "2026-12-07T11:00:00Z", bob: "2026-12-07T11:30:00Z", vendor: "2026-12-07T11:00:00Z", https: "-"} {
		if tags[k] != want {
			t.Errorf("%s: tag %s = %q, want %q", k, reconcile.TagExpiresAt, tags[k], want)
		}
	}

	// A nanosecond before the deadline a sweep changes nothing.
	clk.Set(time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC).Add(-time.Nanosecond))
	if res := w.reconcile(reconcile.Request{All: true, Reason: "sweep"}); !res.Plan.Empty() {
		t.Fatalf("sweep before the deadline: %+v", res.Plan.Actions)
	}

	// At the deadline: alice's and the vendor's rules are revoked.
	clk.Set(time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC))
	res = w.reconcile(reconcile.Request{All: true, Reason: "sweep"})
	var revoked []string
	for _, a := range res.Plan.Actions {
		if a.Kind != reconcile.ActRevoke {
			t.Errorf("unexpected action %+v", a)
			continue
		}
		revoked = append(revoked, a.Key.String()+" "+a.Reason)
	}
	want := []string{vendor + " expired at 2026-12-07T11:00:00Z", alice + " expired at 2026-12-07T11:00:00Z"}
	if strings.Join(revoked, "\n") != strings.Join(want, "\n") && strings.Join(revoked, "\n") != strings.Join([]string{want[1], want[0]}, "\n") {
		t.Errorf("revoked:\n%s\nwant:\n%s", strings.Join(revoked, "\n"), strings.Join(want, "\n"))
	}
	tags = w.tagged(reconcile.TagExpiresAt)
	if _, ok := tags[alice]; ok {
		t.Errorf("alice's rule still in EC2")
	}
	if _, ok := tags[vendor]; ok {
		t.Errorf("the vendor's rule still in EC2")
	}
	if _, ok := tags[bob]; !ok {
		t.Errorf("bob's rule (deadline 11:30) revoked early")
	}

	// Later, bob's too; then the sweeps are quiet.
	clk.Set(time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC))
	if res := w.reconcile(reconcile.Request{All: true, Reason: "sweep"}); res.Plan.Count(reconcile.ActRevoke) != 1 {
		t.Errorf("sweep after bob's deadline: %+v", res.Plan.Actions)
	}
	tags = w.tagged(reconcile.TagExpiresAt)
	if _, ok := tags[bob]; ok {
		t.Errorf("bob's rule still in EC2")
	}
	if _, ok := tags[https]; !ok {
		t.Errorf("the permanent rule was revoked")
	}
	if res := w.reconcile(reconcile.Request{All: true, Reason: "sweep"}); !res.Plan.Empty() {
		t.Errorf("sweep after every deadline: %+v", res.Plan.Actions)
	}
}

// TestExpiredNeverAuthorized: a new file whose rule has already expired
// is applied without it (a warning, not an error), and nothing is created
// for it.
func TestExpiredNeverAuthorized(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w, _ := expiryWorld(t, t0)
	web := w.groups["web"]
	body := "rules:\n  https:\n    securityGroup: " + web + "\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [10.0.0.0/8]\n" +
		"  ssh-late:\n" + sshRule(web, "198.51.100.9/32", "2026-12-07T09:58:00Z")
	w.put("rules/late.yaml", []byte(body))
	res := w.reconcile(reconcile.Request{Keys: []string{"rules/late.yaml"}, Reason: "test"})
	if n := res.Plan.Count(reconcile.ActAuthorize); n != 1 {
		t.Errorf("authorized %d, want only https: %+v", n, res.Plan.Actions)
	}
	if len(res.Sources) != 1 || res.Sources[0].Status != reconcile.StatusApplied {
		t.Fatalf("sources: %+v", res.Sources)
	}
	d := res.Sources[0].Diagnostics
	if len(d) != 1 || !strings.HasPrefix(d[0].String(), "rules/late.yaml:16:16: warning: ssh-late: expiresAt: expired at 2026-12-07T09:58:00Z (2 min ago)") {
		t.Errorf("diagnostics: %v", d.Strings())
	}
	if _, ok := w.tagged(reconcile.TagExpiresAt)[web+"|ingress|tcp|22|22|cidr4:198.51.100.9/32"]; ok {
		t.Errorf("the expired rule was authorized")
	}
}

// TestExpiryWhileInvalid: a file made invalid keeps what it applied, but
// not past a deadline: the sweep revokes the expired rule and keeps the
// rest.
func TestExpiryWhileInvalid(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w, clk := expiryWorld(t, t0)
	web := w.groups["web"]
	good := "rules:\n  https:\n    securityGroup: " + web + "\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    cidrBlocks: [10.0.0.0/8]\n" +
		"  ssh:\n" + sshRule(web, "198.51.100.7/32", "2026-12-07T11:00:00Z")
	w.put("rules/tmp.yaml", []byte(good))
	if res := w.reconcile(reconcile.Request{Keys: []string{"rules/tmp.yaml"}, Reason: "test"}); res.Plan.Count(reconcile.ActAuthorize) != 2 {
		t.Fatalf("apply: %+v", res.Plan.Actions)
	}
	w.put("rules/tmp.yaml", []byte(strings.Replace(good, "toPort: 443", "toPort: 70000", 1)))
	if res := w.reconcile(reconcile.Request{Keys: []string{"rules/tmp.yaml"}, Reason: "test"}); !res.Plan.Empty() || res.Sources[0].Status != reconcile.StatusInvalid {
		t.Fatalf("invalid upload: %+v %+v", res.Plan.Actions, res.Sources)
	}
	clk.Set(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	res := w.reconcile(reconcile.Request{All: true, Reason: "sweep"})
	if res.Plan.Count(reconcile.ActRevoke) != 1 || len(res.Plan.Actions) != 1 || res.Plan.Actions[0].Key.Peer.Value != "198.51.100.7/32" {
		t.Errorf("sweep: %+v", res.Plan.Actions)
	}
	tags := w.tagged(reconcile.TagExpiresAt)
	if _, ok := tags[web+"|ingress|tcp|443|443|cidr4:10.0.0.0/8"]; !ok {
		t.Errorf("the invalid file lost its permanent rule")
	}
	if res := w.reconcile(reconcile.Request{All: true, Reason: "sweep"}); !res.Plan.Empty() {
		t.Errorf("second sweep: %+v", res.Plan.Actions)
	}
}

// TestPolicyExpiryRelaxations: a deny clause relaxed for rules that
// expire within 8 h admits a temporary world-open SSH rule and refuses a
// longer one; a tenant capped at one day refuses a permanent rule and
// admits a short one; a sweep does not report the temporary rule as a
// violation, and revokes it at its deadline.
func TestPolicyExpiryRelaxations(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w := policyWorld(t)
	clk := &clock{now: t0}
	eng, err := reconcile.New(reconcile.Config{
		Source:   s3source.New(w.s3, w.bucket, "rules/"),
		Groups:   ec2sg.New(w.ec2),
		Ledger:   ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger"),
		LedgerID: "ledger",
		Policy:   policyload.New(s3source.New(w.s3, w.bucket, ""), policyKey, "rules/"),
		Now:      clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	w.put(policyKey, []byte(`deny:
  - id: no-world-ssh
    message: SSH must not be open to the internet
    type: ingress
    ports: 22
    cidrs: [0.0.0.0/0]
    allowIfExpiresWithin: 8h
tenants:
  - prefix: break-glass/
    groups: {tags: {team: a}}
    maxDuration: 1d
`))
	withExpiry := func(body, at string) []byte { return []byte(body + "    expiresAt: " + at + "\n") }
	world := "cidrBlocks: [0.0.0.0/0]"
	files := map[string][]byte{
		"rules/ops/ssh.yaml":         withExpiry(ruleFile("team-a-web", "ingress", "tcp", 22, 22, world), "2026-12-07T17:00:00Z"),
		"rules/ops/long.yaml":        withExpiry(ruleFile("team-a-db", "ingress", "tcp", 22, 22, world), "2026-12-07T18:01:00Z"),
		"rules/break-glass/x.yaml":   []byte(ruleFile("team-a-web", "ingress", "tcp", 443, 443, "cidrBlocks: [10.0.0.0/8]")),
		"rules/break-glass/y.yaml":   withExpiry(ruleFile("team-a-web", "ingress", "tcp", 8443, 8443, "cidrBlocks: [10.0.0.0/8]"), "2026-12-07T12:00:00Z"),
		"rules/break-glass/far.yaml": withExpiry(ruleFile("team-a-web", "ingress", "tcp", 9443, 9443, "cidrBlocks: [10.0.0.0/8]"), "2026-12-08T13:00:00Z"),
	}
	var keys []string
	for k, b := range files {
		w.put(k, b)
		keys = append(keys, k)
	}
	res := w.reconcile(reconcile.Request{Keys: keys})
	for key, want := range map[string]string{
		"rules/ops/ssh.yaml":         "",
		"rules/ops/long.yaml":        "rules/ops/long.yaml:8:18: r: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/0)",
		"rules/break-glass/x.yaml":   "rules/break-glass/x.yaml:2:3: r: violates policy tenant break-glass/: the tenant's rules must expire within 1 d (maxDuration): set expiresAt",
		"rules/break-glass/y.yaml":   "",
		"rules/break-glass/far.yaml": "rules/break-glass/far.yaml:9:16: r: violates policy tenant break-glass/: expires in 1 d 3 h, over the tenant's maxDuration of 1 d",
	} {
		s := sourceOf(res, key)
		got := strings.Join(s.Diagnostics.Strings(), "\n")
		switch {
		case want == "" && s.Status != reconcile.StatusApplied:
			t.Errorf("%s: %s %q, want applied", key, s.Status, got)
		case want != "" && (s.Status != reconcile.StatusInvalid || !strings.Contains(got, want)):
			t.Errorf("%s: %s %q, want invalid with %q", key, s.Status, got, want)
		}
	}
	if n := res.Plan.Count(reconcile.ActAuthorize); n != 2 {
		t.Errorf("authorized %d, want 2 (ssh.yaml and y.yaml): %+v", n, res.Plan.Actions)
	}

	clk.Set(t0.Add(time.Hour))
	res = w.reconcile(reconcile.Request{All: true, Reason: "sweep"})
	if len(res.Policy.Violations) != 0 || len(res.Policy.Refused) != 0 || res.Plan.Count(reconcile.ActRevoke) != 0 {
		t.Errorf("sweep before the deadlines: violations %+v, refused %+v, actions %+v", res.Policy.Violations, res.Policy.Refused, res.Plan.Actions)
	}
	clk.Set(time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC))
	res = w.reconcile(reconcile.Request{All: true, Reason: "sweep"})
	if res.Plan.Count(reconcile.ActRevoke) != 2 {
		t.Errorf("sweep at the deadline: %+v", res.Plan.Actions)
	}
}

// TestExpiryCustomResource: a CloudFormation resource with expiresAt is
// created before its deadline; a sweep at the deadline revokes it (a sweep
// declares a custom resource from its ledger record, which keeps the
// deadline), and the resource is not applied again by later sweeps.
func TestExpiryCustomResource(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	w, clk := expiryWorld(t, t0)
	web := w.groups["web"]
	const key = "cfn/stack/VendorAccess"
	f, diags := rules.ParseValue(key, map[string]any{"rules": map[string]any{"VendorAccess": map[string]any{
		"securityGroup": web, "type": "ingress", "protocol": "tcp", "fromPort": "8443", "toPort": "8443",
		"cidrBlocks": []any{"203.0.113.0/24"}, "expiresAt": "2026-12-07T12:00:00Z",
	}}}, rules.ValueOptions{NumericStrings: true})
	if f == nil {
		t.Fatal(diags.Strings())
	}
	res := w.reconcile(reconcile.Request{Inline: map[string]reconcile.Inline{key: {File: f}}, Reason: "cloudformation:Create"})
	if res.Plan.Count(reconcile.ActAuthorize) != 1 {
		t.Fatalf("create: %+v", res.Plan.Actions)
	}
	vendor := web + "|ingress|tcp|8443|8443|cidr4:203.0.113.0/24"
	if got := w.tagged(reconcile.TagExpiresAt)[vendor]; got != "2026-12-07T12:00:00Z" {
		t.Errorf("tag = %q", got)
	}
	clk.Set(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	res = w.reconcile(reconcile.Request{All: true, Reason: "sweep"})
	if res.Plan.Count(reconcile.ActRevoke) != 1 || res.Plan.Actions[0].Reason != "expired at 2026-12-07T12:00:00Z" {
		t.Errorf("sweep at the deadline: %+v", res.Plan.Actions)
	}
	if _, ok := w.tagged(reconcile.TagExpiresAt)[vendor]; ok {
		t.Error("the custom resource's rule is still in EC2")
	}
	if res := w.reconcile(reconcile.Request{All: true, Reason: "sweep"}); !res.Plan.Empty() {
		t.Errorf("second sweep: %+v", res.Plan.Actions)
	}
}
