package rules

import "strings"

// ParseOwner parses the "source#rule" form of Owner.String. Rule names
// cannot contain '#'; source keys can, so the last '#' splits them. A
// string without '#' is a source with no rule name.
func ParseOwner(s string) Owner {
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		return Owner{Source: s[:i], Rule: s[i+1:]}
	}
	return Owner{Source: s}
}

// Less orders owners by source, then rule name.
func (o Owner) Less(p Owner) bool {
	if o.Source != p.Source {
		return o.Source < p.Source
	}
	return o.Rule < p.Rule
}

// OwnerStrings renders owners in their "source#rule" form.
func OwnerStrings(os []Owner) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.String()
	}
	return out
}
