package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPrefix(t *testing.T) {
	for in, want := range map[string]string{"": "rules/", "rules/": "rules/", "rules": "rules/", "a/b": "a/b/", "/": ""} {
		if got := Prefix(in); got != want {
			t.Errorf("Prefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaxRevoke(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"", 50, false},
		{"10", 10, false},
		{" 7 ", 7, false},
		{"-1", -1, false},
		{"0", 0, true},
		{"ten", 0, true},
	} {
		got, err := MaxRevoke(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("MaxRevoke(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseDriftMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    DriftMode
		wantErr bool
	}{
		{"", DriftRevert, false},
		{"revert", DriftRevert, false},
		{"Report", DriftReport, false},
		{"fix", "", true},
	} {
		got, err := ParseDriftMode(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseDriftMode(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestList(t *testing.T) {
	got := List(" arn:a , ,arn:b,")
	if want := []string{"arn:a", "arn:b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if got := List(""); got != nil {
		t.Errorf("List(\"\") = %q, want nil", got)
	}
}

func TestTargetAccounts(t *testing.T) {
	got, err := TargetAccounts(" 444455556666, 111122223333,,111122223333")
	if want := []string{"111122223333", "444455556666"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("TargetAccounts = %v, %v; want %v", got, err, want)
	}
	if _, err := TargetAccounts("11112222333"); err == nil || !strings.Contains(err.Error(), `TARGET_ACCOUNTS: "11112222333" is not a 12-digit account id`) {
		t.Errorf("11 digits: %v", err)
	}
	c, err := Drift.Load(env(map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b", "SWEEP_QUEUE_URL": " https://q ", "TARGET_EXTERNAL_ID": "x"}))
	if err != nil || c.TargetRole != DefaultTargetRole || c.SweepQueueURL != "https://q" || c.TargetExternalID != "x" || c.TargetAccounts != nil {
		t.Errorf("Drift.Load = %+v, %v", c, err)
	}
}

func TestFlowLogsEnvironment(t *testing.T) {
	base := map[string]string{"STATE_TABLE": "t", "RULES_BUCKET": "b"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, fn := range []Function{Reconcile, Drift} {
		c, err := fn.Load(env(with("FLOW_LOGS_URL", " s3://logs/vpc/ ", "USED_WITHIN", "2w")))
		if err != nil || c.FlowLogs != "s3://logs/vpc/" || c.UsedWithin != 14*24*time.Hour {
			t.Errorf("%s: %+v, %v", fn.Name, c, err)
		}
		if c, err := fn.Load(env(base)); err != nil || c.FlowLogs != "" || c.UsedWithin != 0 {
			t.Errorf("%s without: %+v, %v", fn.Name, c, err)
		}
		for _, bad := range [][]string{{"FLOW_LOGS_URL", "logs/vpc"}, {"USED_WITHIN", "soon"}, {"USED_WITHIN", "0d"}} {
			if _, err := fn.Load(env(with(bad...))); err == nil || !strings.Contains(err.Error(), bad[0]) {
				t.Errorf("%s %v: %v", fn.Name, bad, err)
			}
		}
	}
}
