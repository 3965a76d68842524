package rules

import "testing"

func TestNormalizePorts(t *testing.T) {
	tests := []struct {
		proto            string
		from, to         int32
		wantFrom, wantTo int32
	}{
		{ProtoTCP, 80, 443, 80, 443},
		{ProtoUDP, 0, 65535, 0, 65535},
		{ProtoICMP, 8, -1, 8, -1},
		{ProtoICMPv6, 128, 0, 128, 0},
		{ProtoAll, 0, 65535, -1, -1},
		{"47", 0, 0, -1, -1},
		{"50", 5, 5, -1, -1},
	}
	for _, tc := range tests {
		from, to := NormalizePorts(tc.proto, tc.from, tc.to)
		if from != tc.wantFrom || to != tc.wantTo {
			t.Errorf("NormalizePorts(%s, %d, %d) = %d, %d, want %d, %d", tc.proto, tc.from, tc.to, from, to, tc.wantFrom, tc.wantTo)
		}
		k := Key{Protocol: tc.proto, FromPort: tc.from, ToPort: tc.to}
		if from, to := k.Ports(); from != tc.wantFrom || to != tc.wantTo {
			t.Errorf("Key.Ports() of %s = %d, %d", k, from, to)
		}
	}
}
