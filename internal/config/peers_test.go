package config

import (
	"slices"
	"testing"
)

func TestPeerLedgers(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		wantErr  bool
	}{
		{"empty", " ", nil, false},
		{"names", "ledger-b, ledger.c ,", []string{"ledger-b", "ledger.c"}, false},
		{"arn", "arn:aws:dynamodb:ca-west-1:111122223333:table/c32-ledger", []string{"arn:aws:dynamodb:ca-west-1:111122223333:table/c32-ledger"}, false},
		{"bad name", "a b", nil, true},
		{"short name", "ab", nil, true},
		{"arn of another service", "arn:aws:s3:::bucket", nil, true},
		{"arn without region", "arn:aws:dynamodb::111122223333:table/x-ledger", nil, true},
		{"arn of an index", "arn:aws:dynamodb:eu-west-1:111122223333:index/x", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PeerLedgers(tc.in)
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Fatalf("PeerLedgers(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
	name, region, err := PeerTable("arn:aws:dynamodb:ca-west-1:111122223333:table/c32-ledger")
	if name != "c32-ledger" || region != "ca-west-1" || err != nil {
		t.Fatalf("PeerTable: %q %q %v", name, region, err)
	}
}
