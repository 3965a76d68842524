package strutil_test

import (
	"slices"
	"testing"

	"github.com/sgrules/sgrules/internal/strutil"
)

func TestSortedUnique(t *testing.T) {
	in := []string{"sg-2", "", "sg-1", "sg-2"}
	if got, want := strutil.SortedUnique(in), []string{"sg-1", "sg-2"}; !slices.Equal(got, want) {
		t.Errorf("SortedUnique = %q, want %q", got, want)
	}
	if in[0] != "sg-2" || in[1] != "" {
		t.Errorf("SortedUnique changed its input: %q", in)
	}
	if got := strutil.SortedUnique(nil); len(got) != 0 {
		t.Errorf("SortedUnique(nil) = %q", got)
	}
}

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "rules"}, {1, "rule"}, {2, "rules"}} {
		if got := strutil.Plural(tc.n, "rule"); got != tc.want {
			t.Errorf("Plural(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
