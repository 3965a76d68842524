package strutil

import "slices"

// SortedUnique returns ss sorted, without repeats and without empty
// strings, as a new slice: the order in which adapters send ids to AWS.
func SortedUnique(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// Plural returns word for n == 1 and word+"s" otherwise: Plural(2, "rule")
// is "rules".
func Plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
