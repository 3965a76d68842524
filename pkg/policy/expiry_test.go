package policy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

const expiryPolicy = `deny:
  - id: no-world-ssh
    message: SSH must not be open to the internet
    type: ingress
    ports: 22
    cidrs: [0.0.0.0/0]
    allowIfExpiresWithin: 8h
  - id: no-telnet
    ports: 23
tenants:
  - prefix: break-glass/
    groups: {tags: {team: a}}
    maxDuration: 1d
`

func TestParseDurations(t *testing.T) {
	p := mustPolicy(t, expiryPolicy)
	if p.Deny[0].AllowIfExpiresWithin != 8*time.Hour || p.Deny[1].AllowIfExpiresWithin != 0 || p.Tenants[0].MaxDuration != 24*time.Hour {
		t.Errorf("durations: %v %v %v", p.Deny[0].AllowIfExpiresWithin, p.Deny[1].AllowIfExpiresWithin, p.Tenants[0].MaxDuration)
	}
	for s, want := range map[string]time.Duration{"90m": 90 * time.Minute, "1d12h": 36 * time.Hour, "2h30m": 150 * time.Minute, "366d": 366 * 24 * time.Hour} {
		p := mustPolicy(t, "deny:\n  - {id: a, ports: 22, allowIfExpiresWithin: "+s+"}\n")
		if got := p.Deny[0].AllowIfExpiresWithin; got != want {
			t.Errorf("%s: %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]string{
		"8":     `p.yaml:2:46: a: allowIfExpiresWithin: "8" is not a duration: write days, hours and minutes such as 8h, 90m or 1d12h`,
		"8s":    `is not a duration`,
		"1h 2m": `is not a duration`,
		"0h":    `allowIfExpiresWithin: "0h" is zero`,
		"367d":  `allowIfExpiresWithin: "367d" is over the limit of 366d`,
		"[8h]":  `want a string, got a list`,
	} {
		_, diags := Parse("p.yaml", []byte("deny:\n  - {id: a, ports: 22, allowIfExpiresWithin: "+s+"}\n"))
		if len(diags) != 1 || !strings.Contains(diags[0].String(), want) {
			t.Errorf("%s: got %v, want %q", s, diags.Strings(), want)
		}
	}
	_, diags := Parse("p.yaml", []byte("tenants:\n  - {prefix: a/, groups: {tags: {team: a}}, maxDuration: 0m}\n"))
	if len(diags) != 1 || diags[0].Field != "maxDuration" || !strings.Contains(diags[0].Msg, `maxDuration: "0m" is zero`) {
		t.Errorf("tenant: %v", diags.Strings())
	}
}

// TestAdmitExpiry: a deny clause relaxed for rules that expire soon
// enough, and a tenant's cap, measured from the moment of the check.
func TestAdmitExpiry(t *testing.T) {
	p := mustPolicy(t, expiryPolicy)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	const sgA = "sg-0000000000000000a"
	world := rules.Key{GroupID: sgA, Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: 22, ToPort: 22, Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}}
	telnet, https := world, world
	telnet.FromPort, telnet.ToPort = 23, 23
	https.FromPort, https.ToPort = 443, 443
	group := map[string]Group{sgA: {ID: sgA, Tags: map[string]string{"team": "a"}, Complete: true}}
	tests := []struct {
		name     string
		key      rules.Key
		deadline time.Time
		now      time.Time
		path     string
		want     []string
	}{
		{name: "permanent world ssh", key: world, now: now, path: "platform/x.yaml",
			want: []string{"no-world-ssh -1: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/0)"}},
		{name: "expires within 8h", key: world, deadline: now.Add(7*time.Hour + 59*time.Minute), now: now, path: "platform/x.yaml"},
		{name: "expires in exactly 8h", key: world, deadline: now.Add(8 * time.Hour), now: now, path: "platform/x.yaml"},
		{name: "expires in 8h and a minute", key: world, deadline: now.Add(8*time.Hour + time.Minute), now: now, path: "platform/x.yaml",
			want: []string{"no-world-ssh -1: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/0)"}},
		{name: "no clock: not relaxed", key: world, deadline: now.Add(time.Hour), path: "platform/x.yaml",
			want: []string{"no-world-ssh -1: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/0)"}},
		{name: "a clause without relaxation", key: telnet, deadline: now.Add(time.Hour), now: now, path: "platform/x.yaml",
			want: []string{"no-telnet -1: violates policy NO-TELNET: ingress tcp 23 from 0.0.0.0/0"}},
		{name: "tenant: within its cap", key: world, deadline: now.Add(2 * time.Hour), now: now, path: "break-glass/x.yaml"},
		{name: "tenant: permanent", key: https, now: now, path: "break-glass/x.yaml",
			want: []string{"tenant break-glass/ 0: violates policy tenant break-glass/: the tenant's rules must expire within 1 d (maxDuration): set expiresAt"}},
		{name: "tenant: over its cap", key: https, deadline: now.Add(25 * time.Hour), now: now, path: "break-glass/x.yaml",
			want: []string{"tenant break-glass/ 0: violates policy tenant break-glass/: expires in 1 d 1 h, over the tenant's maxDuration of 1 d"}},
		{name: "tenant: no clock", key: https, deadline: now.Add(time.Hour), path: "break-glass/x.yaml",
			want: []string{"~tenant break-glass/ 0: skipped policy tenant break-glass/: needs the time of the check"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			facts := Facts{Groups: group, Now: tc.now}
			if !tc.deadline.IsZero() {
				facts.Deadlines = map[rules.Key]time.Time{tc.key: tc.deadline}
			}
			var got []string
			for _, r := range p.Admit(Write{Key: tc.key, Paths: []string{tc.path}}, facts) {
				s := r.Policy + " " + strconv.Itoa(r.Owner) + ": " + r.Msg
				if r.Skipped {
					s = "~" + s
				}
				got = append(got, s)
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

// TestCheckExpiry: the source check relaxes the clause for a file's
// temporary rules (they do not count with the others either) and holds
// the tenant's rules to its cap, located at expiresAt.
func TestCheckExpiry(t *testing.T) {
	p := mustPolicy(t, expiryPolicy)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	file := `rules:
  ssh-alice:
    securityGroup: {tags: {team: a}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [0.0.0.0/1]
    expiresAt: ALICE
  ssh-half:
    securityGroup: {tags: {team: a}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [128.0.0.0/1]
    expiresAt: EXPIRES
`
	check := func(path, alice, expires string, now time.Time) []string {
		f, diags := rules.Parse(path, []byte(strings.NewReplacer("ALICE", alice, "EXPIRES", expires).Replace(file)))
		if f == nil {
			t.Fatalf("parse: %v", diags.Strings())
		}
		resolve, facts := Offline(f)
		facts.Groups["tags:team=a"] = Group{Tags: map[string]string{"team": "a"}, Complete: true}
		facts.Now = now
		perms, _, _ := rules.ExpandAt(f, path, resolve, now)
		res := p.Check(Source{File: f, Perms: perms, Resolve: resolve, Path: path}, facts)
		var out []string
		for _, v := range res.Violations {
			out = append(out, v.String())
		}
		for _, s := range res.Skipped {
			out = append(out, "~"+s.String())
		}
		return out
	}
	for _, tc := range []struct {
		name, path, alice, expires string
		now                        time.Time
		want                       []string
	}{
		{"both temporary", "platform/x.yaml", "2026-12-07T12:00:00Z", "2026-12-07T17:00:00Z", now, nil},
		{"one temporary: it does not count with the other", "platform/x.yaml", "2026-12-07T12:00:00Z", "2026-12-08T10:00:00Z", now, nil},
		{"both too long", "platform/x.yaml", "2026-12-07T18:01:00Z", "2026-12-08T10:00:00Z", now, []string{
			"platform/x.yaml:8:18: ssh-alice: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/1; with ingress tcp 22 from 128.0.0.0/1 it covers the internet (0.0.0.0/0))",
			"platform/x.yaml:16:18: ssh-half: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 128.0.0.0/1; with ingress tcp 22 from 0.0.0.0/1 it covers the internet (0.0.0.0/0))"}},
		{"tenant cap", "break-glass/x.yaml", "2026-12-07T12:00:00Z", "2026-12-08T12:00:00Z", now,
			[]string{"break-glass/x.yaml:17:16: ssh-half: violates policy tenant break-glass/: expires in 1 d 2 h, over the tenant's maxDuration of 1 d"}},
		{"tenant without a clock", "break-glass/x.yaml", "2026-12-07T12:00:00Z", "2026-12-07T12:00:00Z", time.Time{}, []string{
			"~break-glass/x.yaml:9:16: ssh-alice: skipped policy tenant break-glass/: needs the time of the check",
			"~break-glass/x.yaml:17:16: ssh-half: skipped policy tenant break-glass/: needs the time of the check"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := check(tc.path, tc.alice, tc.expires, tc.now)
			if g, w := strings.Join(got, "\n"), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}
