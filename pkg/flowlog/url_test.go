package flowlog

import "testing"

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ in, bucket, prefix string }{
		{"s3://b", "b", ""},
		{"s3://b/", "b", ""},
		{"s3://b/vpc", "b", "vpc/"},
		{"s3://b/a/b/", "b", "a/b/"},
	} {
		b, p, err := ParseURL(tc.in)
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseURL(%q) = %q %q %v", tc.in, b, p, err)
		}
	}
	for _, bad := range []string{"", "b/prefix", "https://b/p", "s3:///p", "s3://b/p?x=1"} {
		if _, _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}
