package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseExpiresAt: expiresAt takes an RFC 3339 time with a zone, kept
// in UTC; anything else is an error at the field naming the fix.
func TestParseExpiresAt(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    time.Time // zero: an error is expected
		wantMsg string
	}{
		{"utc", "2026-12-07T18:00:00Z", time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC), ""},
		{"quoted utc", `"2026-12-07T18:00:00Z"`, time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC), ""},
		{"offset", "2026-12-07T19:30:00+01:00", time.Date(2026, 12, 7, 18, 30, 0, 0, time.UTC), ""},
		{"negative offset", `"2026-12-07T13:00:00-05:00"`, time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC), ""},
		{"fraction", "2026-12-07T18:00:00.25Z", time.Date(2026, 12, 7, 18, 0, 0, 250e6, time.UTC), ""},
		{"no zone", "2026-12-07T18:00:00", time.Time{}, `expiresAt: "2026-12-07T18:00:00" has no time zone: write 2026-12-07T18:00:00Z for UTC`},
		{"no zone quoted", `"2026-12-07T18:00:00"`, time.Time{}, `has no time zone`},
		{"no zone no seconds", `"2026-12-07T18:00"`, time.Time{}, `write 2026-12-07T18:00:00Z for UTC`},
		{"no zone space", `"2026-12-07 18:00:00"`, time.Time{}, `write 2026-12-07T18:00:00Z for UTC`},
		{"date only", "2026-12-07", time.Time{}, `"2026-12-07" is a date without a time: write a time with a zone, such as 2026-12-07T00:00:00Z`},
		{"space before time with zone", `"2026-12-07 18:00:00Z"`, time.Time{}, `write a T between the date and the time (2026-12-07T18:00:00Z)`},
		{"offset without colon", `"2026-12-07T18:00:00+0100"`, time.Time{}, `is not an RFC 3339 time with a zone`},
		{"duration", "8h", time.Time{}, `"8h" is not an RFC 3339 time with a zone`},
		{"epoch number", "1796666400", time.Time{}, `"1796666400" is not an RFC 3339 time`},
		{"month 13", `"2026-13-07T18:00:00Z"`, time.Time{}, `is not an RFC 3339 time`},
		{"empty", `""`, time.Time{}, `"" is not an RFC 3339 time`},
		{"null", "null", time.Time{}, "expiresAt: want a time with a zone such as 2026-12-07T18:00:00Z (RFC 3339), got nothing"},
		{"list", "[2026-12-07T18:00:00Z]", time.Time{}, "got a list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: [10.0.0.0/8]", "expiresAt: "+tc.value)
			f, diags := Parse("t.yaml", []byte(src))
			if tc.want.IsZero() {
				if f != nil || len(diags) != 1 {
					t.Fatalf("want one error, got file %v, %v", f != nil, diags.Strings())
				}
				d := diags[0]
				if d.Severity != SeverityError || d.Field != "expiresAt" || d.Rule != "r" || d.Line != 9 || d.Col != 16 ||
					!strings.Contains(d.Msg, tc.wantMsg) {
					t.Errorf("got %s (field %q), want at t.yaml:9:16 an error containing %q", d, d.Field, tc.wantMsg)
				}
				return
			}
			if f == nil {
				t.Fatalf("Parse: %v", diags.Strings())
			}
			r := f.Rules[0]
			if !r.ExpiresAt.Equal(tc.want) || r.ExpiresAt.Location() != time.UTC {
				t.Errorf("ExpiresAt = %v, want %v in UTC", r.ExpiresAt, tc.want)
			}
			if r.FieldPos["expiresAt"] != (Pos{9, 16}) {
				t.Errorf("FieldPos[expiresAt] = %v", r.FieldPos["expiresAt"])
			}
		})
	}
}

// TestParseValueExpiresAt: a rule given as a value (CloudFormation) takes
// expiresAt as a string.
func TestParseValueExpiresAt(t *testing.T) {
	v := map[string]any{"rules": map[string]any{"r": map[string]any{
		"securityGroup": "sg-01234567", "type": "ingress", "protocol": "tcp", "fromPort": "22", "toPort": "22",
		"cidrBlocks": []any{"10.0.0.0/8"}, "expiresAt": "2026-12-07T18:00:00+02:00",
	}}}
	f, diags := ParseValue("cfn", v, ValueOptions{NumericStrings: true})
	if f == nil {
		t.Fatalf("ParseValue: %v", diags.Strings())
	}
	if want := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC); !f.Rules[0].ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", f.Rules[0].ExpiresAt, want)
	}
	v["rules"].(map[string]any)["r"].(map[string]any)["expiresAt"] = "2026-12-07T18:00:00"
	if f, diags := ParseValue("cfn", v, ValueOptions{NumericStrings: true}); f != nil || len(diags) != 1 ||
		diags[0].Field != "expiresAt" || !strings.Contains(diags[0].Msg, "has no time zone") {
		t.Errorf("no zone: got %v", diags.Strings())
	}
}

const tempFile = `rules:
  ssh-incident:
    securityGroup: sg-000000db
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [198.51.100.7/32, 198.51.100.8/32]
    description: incident 4711
    expiresAt: 2026-12-07T18:00:00+01:00
  https:
    securityGroup: sg-000000db
    type: ingress
    protocol: tcp
    fromPort: 443
    toPort: 443
    cidrBlocks: [10.0.0.0/8]
exclusiveGroups: [sg-000000db]
`

// TestExpandAtExpiry: before the deadline a temporary rule is declared,
// carrying its deadline; from the deadline on (included) it declares
// nothing and draws a located warning, never an error; rules without a
// deadline are untouched; Expand without a clock fails closed.
func TestExpandAtExpiry(t *testing.T) {
	f := mustParse(t, tempFile)
	deadline := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	ssh := []string{
		"sg-000000db|ingress|tcp|22|22|cidr4:198.51.100.7/32 src#ssh-incident 2026-12-07T17:00:00Z",
		"sg-000000db|ingress|tcp|22|22|cidr4:198.51.100.8/32 src#ssh-incident 2026-12-07T17:00:00Z",
	}
	https := "sg-000000db|ingress|tcp|443|443|cidr4:10.0.0.0/8 src#https -"
	const notice = "t.yaml:10:16: warning: ssh-incident: expiresAt: expired at 2026-12-07T17:00:00Z"
	tests := []struct {
		name   string
		now    time.Time
		want   []string
		notice string // "" for no diagnostics
	}{
		{"hours before", deadline.Add(-7*time.Hour - 58*time.Minute), append(append([]string{}, ssh...), https), ""},
		{"a nanosecond before", deadline.Add(-time.Nanosecond), append(append([]string{}, ssh...), https), ""},
		{"at the deadline", deadline, []string{https}, notice + " (less than a minute ago)"},
		{"applied late", deadline.Add(26*time.Hour + 5*time.Minute), []string{https}, notice + " (1 d 2 h ago)"},
		{"no clock", time.Time{}, []string{https}, notice + ": the rule"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			perms, excl, diags := ExpandAt(f, "src", nil, tc.now)
			var got []string
			for _, p := range perms {
				at := "-"
				if !p.ExpiresAt.IsZero() {
					at = FormatExpiresAt(p.ExpiresAt)
				}
				got = append(got, p.Key.String()+" "+p.Owner.String()+" "+at)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("perms:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if !reflect.DeepEqual(excl, []string{"sg-000000db"}) {
				t.Errorf("exclusive = %v", excl)
			}
			if diags.HasErrors() {
				t.Errorf("errors: %v", diags.Strings())
			}
			switch {
			case tc.notice == "" && len(diags) != 0:
				t.Errorf("diags: %v", diags.Strings())
			case tc.notice != "" && (len(diags) != 1 || !strings.HasPrefix(diags[0].String(), tc.notice) ||
				diags[0].Severity != SeverityWarning || diags[0].Field != "expiresAt"):
				t.Errorf("diags: %v, want one warning starting %q", diags.Strings(), tc.notice)
			}
		})
	}
	if p, _, _ := Expand(f, "src", nil); len(p) != 1 {
		t.Errorf("Expand without a clock declared %d permissions, want only the permanent one", len(p))
	}
}

// TestExpandExpiredStillChecked: an expired rule still takes part in the
// checks, so a file's validity does not change with time.
func TestExpandExpiredStillChecked(t *testing.T) {
	f := mustParse(t, `rules:
  a:
    securityGroup: sg-000000db
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.0.0.0/8]
    expiresAt: 2020-01-01T00:00:00Z
  b:
    securityGroup: {tags: {Name: db}}
    type: ingress
    protocol: tcp
    fromPort: 22
    toPort: 22
    cidrBlocks: [10.0.0.0/8]
`)
	res := mapResolver(map[string][]string{"tags:Name=db": {"sg-000000db"}})
	for _, now := range []time.Time{time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)} {
		perms, _, diags := ExpandAt(f, "src", res, now)
		if perms != nil || !diags.HasErrors() {
			t.Errorf("at %v: want the duplicate error, got %d perms, %v", now, len(perms), diags.Strings())
		}
	}
}

// TestMarshalExpiresAt: MarshalYAML writes expiresAt in UTC, last, and it
// parses back to the same instant.
func TestMarshalExpiresAt(t *testing.T) {
	f := mustParse(t, withBase("protocol: tcp", "fromPort: 22", "toPort: 22", "cidrBlocks: [10.0.0.0/8]", "expiresAt: 2026-12-07T19:00:00+01:00"))
	out, err := MarshalYAML(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(out), "      - 10.0.0.0/8\n    expiresAt: \"2026-12-07T18:00:00Z\"\n") {
		t.Errorf("MarshalYAML:\n%s", out)
	}
	again := mustParse(t, string(out))
	if !reflect.DeepEqual(stripPos(again).Rules, stripPos(f).Rules) {
		t.Errorf("round trip differs: %+v / %+v", again.Rules, f.Rules)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                "less than a minute",
		59 * time.Second:                 "less than a minute",
		time.Minute:                      "1 min",
		7*time.Hour + 58*time.Minute + 9: "7 h 58 min",
		-3 * time.Hour:                   "3 h",
		49*time.Hour + 59*time.Minute:    "2 d 1 h",
		72 * time.Hour:                   "3 d",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
