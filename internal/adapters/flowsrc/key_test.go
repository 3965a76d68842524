package flowsrc_test

import (
	"testing"

	"github.com/sgrules/sgrules/internal/adapters/flowsrc"
)

func TestParseLogKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want string // "ACCOUNT REGION YYYY-MM-DD", "" when not a log key
	}{
		{"AWSLogs/123456789012/vpcflowlogs/eu-west-1/2025/12/01/123456789012_vpcflowlogs_eu-west-1_fl-1_20251201T0000Z_abc.log.gz", "123456789012 eu-west-1 2025-12-01"},
		{"vpc/AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/02/28/x.log", "123456789012 us-east-1 2025-02-28"},
		{"a/b/AWSLogs/o-abc123/123456789012/vpcflowlogs/us-east-1/2025/02/28/10/x.log.gz", "123456789012 us-east-1 2025-02-28"},
		{"AWSLogs/123456789012/vpcflowlogs/eu-west-1/2025/12/01/x.parquet", ""},
		{"AWSLogs/123456789012/vpcflowlogs/eu-west-1/2025/13/01/x.log.gz", ""},
		{"AWSLogs/123456789012/vpcflowlogs/eu-west-1/2025/12/x.log.gz", ""},
		{"AWSLogs/12345/vpcflowlogs/eu-west-1/2025/12/01/x.log.gz", ""},
		{"rules/web.log", ""},
	} {
		got := ""
		if k, ok := flowsrc.ParseLogKey(tc.key); ok {
			got = k.Account + " " + k.Region + " " + k.Day.Format("2006-01-02")
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.key, got, tc.want)
		}
	}
}
