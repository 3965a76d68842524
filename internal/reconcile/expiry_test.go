package reconcile

import (
	"reflect"
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

// TestByDeadline: authorize splits a batch into one call per deadline and
// leaves out what has expired at the moment of the write.
func TestByDeadline(t *testing.T) {
	now := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	perm := func(port int32, at time.Time) rules.Permission {
		return rules.Permission{Key: rules.Key{GroupID: "sg-1", Direction: rules.Ingress, Protocol: "tcp", FromPort: port, ToPort: port,
			Peer: rules.Peer{Kind: rules.PeerCIDR4, Value: "10.0.0.0/8"}}, ExpiresAt: at}
	}
	later, later2 := now.Add(time.Hour), now.Add(2*time.Hour)
	tests := []struct {
		name    string
		perms   []rules.Permission
		want    [][]int32
		expired int
	}{
		{"none", nil, nil, 0},
		{"permanent only", []rules.Permission{perm(1, time.Time{}), perm(2, time.Time{})}, [][]int32{{1, 2}}, 0},
		{"mixed", []rules.Permission{perm(1, later), perm(2, time.Time{}), perm(3, later2), perm(4, later)}, [][]int32{{1, 4}, {2}, {3}}, 0},
		{"expired at now", []rules.Permission{perm(1, now), perm(2, later), perm(3, now.Add(-time.Hour))}, [][]int32{{2}}, 2},
		{"all expired", []rules.Permission{perm(1, now)}, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parts, expired := byDeadline(tc.perms, now)
			var got [][]int32
			for _, p := range parts {
				var ports []int32
				for _, x := range p {
					ports = append(ports, x.Key.FromPort)
				}
				got = append(got, ports)
			}
			if !reflect.DeepEqual(got, tc.want) || expired != tc.expired {
				t.Errorf("got %v, %d expired; want %v, %d", got, expired, tc.want, tc.expired)
			}
		})
	}
}

// TestUnexpired: a recorded declaration loses what has expired, and is
// returned as is when nothing has.
func TestUnexpired(t *testing.T) {
	now := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	a := rules.Permission{Owner: rules.Owner{Rule: "a"}}
	b := rules.Permission{Owner: rules.Owner{Rule: "b"}, ExpiresAt: now}
	c := rules.Permission{Owner: rules.Owner{Rule: "c"}, ExpiresAt: now.Add(time.Second)}
	in := []rules.Permission{a, b, c}
	if got := unexpired(in, now); !reflect.DeepEqual(got, []rules.Permission{a, c}) {
		t.Errorf("unexpired = %+v", got)
	}
	if !reflect.DeepEqual(in, []rules.Permission{a, b, c}) {
		t.Errorf("the record was changed: %+v", in)
	}
	if got := unexpired(in, now.Add(-time.Second)); &got[0] != &in[0] || len(got) != 3 {
		t.Errorf("nothing expired: want the same slice")
	}
	if got := unexpired(in, time.Time{}); !reflect.DeepEqual(got, []rules.Permission{a}) {
		t.Errorf("no clock: %+v, want only the permanent one", got)
	}
}
