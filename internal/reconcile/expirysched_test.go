package reconcile

import (
	"testing"
	"time"

	"github.com/sgrules/sgrules/pkg/rules"
)

func TestNextDeadline(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	perm := func(port int32, deadline time.Time) rules.Permission {
		return rules.Permission{Key: rules.Key{FromPort: port}, ExpiresAt: deadline}
	}
	for _, tc := range []struct {
		name string
		recs []SourceRecord
		want time.Time
	}{
		{"no records", nil, time.Time{}},
		{"no deadlines", []SourceRecord{{Permissions: []rules.Permission{perm(22, time.Time{})}}}, time.Time{}},
		{"earliest of every record", []SourceRecord{
			{Permissions: []rules.Permission{perm(22, at(5)), perm(23, time.Time{})}},
			{Permissions: []rules.Permission{perm(24, at(2)), perm(25, at(3))}},
		}, at(2)},
		{"passed deadlines left out", []SourceRecord{{Permissions: []rules.Permission{perm(22, at(-1)), perm(23, now), perm(24, at(1))}}}, at(1)},
		{"only passed deadlines", []SourceRecord{{Permissions: []rules.Permission{perm(22, at(-1))}}}, time.Time{}},
	} {
		if got := NextDeadline(tc.recs, now); !got.Equal(tc.want) {
			t.Errorf("%s: NextDeadline = %s, want %s", tc.name, got, tc.want)
		}
	}
}
