package awsconfig

import "testing"

func TestPartitionOf(t *testing.T) {
	for _, tc := range []struct{ arn, want string }{
		{"arn:aws:sts::123456789012:assumed-role/r/s", "aws"},
		{"arn:aws-cn:sts::123456789012:assumed-role/r/s", "aws-cn"},
		{"arn:aws-us-gov:iam::123456789012:user/u", "aws-us-gov"},
		{"arn::iam::123456789012:user/u", "aws"},
		{"", "aws"},
		{"not an arn", "aws"},
	} {
		if got := partitionOf(tc.arn); got != tc.want {
			t.Errorf("partitionOf(%q) = %q, want %q", tc.arn, got, tc.want)
		}
	}
}
