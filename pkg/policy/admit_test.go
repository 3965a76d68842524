package policy

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/pkg/rules"
)

func TestAdmit(t *testing.T) {
	p := mustPolicy(t, `deny:
  - id: no-world-ssh
    message: SSH must not be open to the internet
    type: ingress
    ports: 22
    cidrs: [0.0.0.0/0]
  - id: no-pl-db
    groups: {tags: {tier: db}}
    cidrs: [10.0.0.0/8]
tenants:
  - prefix: team-a/
    groups: {tags: {team: a}}
    accounts: ["111122223333"]
  - prefix: team-b/
    groups: {tags: {team: b}}
`)
	const sgA, sgB, sgDB = "sg-0000000000000000a", "sg-0000000000000000b", "sg-00000000000000d0b"
	facts := Facts{Groups: map[string]Group{
		sgA:  {ID: sgA, Tags: map[string]string{"team": "a"}, Complete: true},
		sgB:  {ID: sgB, Tags: map[string]string{"team": "b"}, Complete: true},
		sgDB: {ID: sgDB, Tags: map[string]string{"team": "a", "tier": "db"}, Complete: true},
	}}
	key := func(group string, port int32, peer rules.Peer) rules.Key {
		return rules.Key{GroupID: group, Direction: rules.Ingress, Protocol: rules.ProtoTCP, FromPort: port, ToPort: port, Peer: peer}
	}
	world := rules.Peer{Kind: rules.PeerCIDR4, Value: "0.0.0.0/0"}
	office := rules.Peer{Kind: rules.PeerCIDR4, Value: "192.0.2.0/24"}
	pl := rules.Peer{Kind: rules.PeerPrefixList, Value: "pl-12345678"}
	const acctA, acctC = "111122223333", "444455556666"
	tests := []struct {
		name string
		w    Write
		want []string // "POLICY owner: MSG", skipped ones prefixed "~"
	}{
		{name: "admitted", w: Write{Key: key(sgA, 443, office), Account: acctA, Paths: []string{"team-a/web.yaml"}}},
		{name: "deny clause refuses whoever writes", w: Write{Key: key(sgA, 22, world), Account: acctA, Paths: []string{"team-a/web.yaml", ""}},
			want: []string{"no-world-ssh -1: violates policy NO-WORLD-SSH: SSH must not be open to the internet (ingress tcp 22 from 0.0.0.0/0)"}},
		{name: "another tenant's group", w: Write{Key: key(sgB, 443, office), Account: acctA, Paths: []string{"team-a/web.yaml"}},
			want: []string{"tenant team-a/ 0: violates policy tenant team-a/: group " + sgB + " is not a group of the tenant ({tags: {team: a}})"}},
		{name: "another account", w: Write{Key: key(sgA, 443, office), Account: acctC, Paths: []string{"team-a/web.yaml"}},
			want: []string{"tenant team-a/ 0: violates policy tenant team-a/: account " + acctC + " is not an account of the tenant (" + acctA + ")"}},
		{name: "account unknown: undecided", w: Write{Key: key(sgA, 443, office), Paths: []string{"team-a/web.yaml"}},
			want: []string{"~tenant team-a/ 0: skipped policy tenant team-a/: needs the account the permission is written to"}},
		{name: "one owner may write it", w: Write{Key: key(sgB, 443, office), Account: acctA, Paths: []string{"team-a/web.yaml", "team-b/web.yaml"}}},
		{name: "an owner under no tenant", w: Write{Key: key(sgB, 443, office), Account: acctA, Paths: []string{"team-a/web.yaml", "platform/web.yaml"}}},
		{name: "a CloudFormation owner", w: Write{Key: key(sgB, 443, office), Account: acctA, Paths: []string{""}}},
		{name: "every owner refused", w: Write{Key: key(sgB, 443, office), Account: acctC, Paths: []string{"team-a/web.yaml", "team-a/x.yaml"}},
			want: []string{
				"tenant team-a/ 0: violates policy tenant team-a/: group " + sgB + " is not a group of the tenant ({tags: {team: a}})",
				"tenant team-a/ 0: violates policy tenant team-a/: account " + acctC + " is not an account of the tenant (" + acctA + ")",
				"tenant team-a/ 1: violates policy tenant team-a/: group " + sgB + " is not a group of the tenant ({tags: {team: a}})",
				"tenant team-a/ 1: violates policy tenant team-a/: account " + acctC + " is not an account of the tenant (" + acctA + ")"}},
		{name: "prefix list entries unknown", w: Write{Key: key(sgDB, 5432, pl), Account: acctA, Paths: []string{"team-a/db.yaml"}},
			want: []string{"~no-pl-db -1: skipped policy NO-PL-DB: needs the entries of prefix list pl-12345678"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range p.Admit(tc.w, facts) {
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
	var nilPolicy *Policy
	if r := nilPolicy.Admit(Write{Key: key(sgA, 22, world)}, facts); r != nil {
		t.Errorf("nil policy: %+v", r)
	}
}
