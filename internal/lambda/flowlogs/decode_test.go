package flowlogs_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sgrules/sgrules/internal/lambda/flowlogs"
)

func TestDecode(t *testing.T) {
	s3ev := `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"vpc/AWSLogs/1/my+file%3D1.log.gz"}}},
{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"gone.log.gz"}}}]}`
	sns, _ := json.Marshal(map[string]string{"Type": "Notification", "Message": s3ev})
	for _, tc := range []struct {
		name, body, want, err string
	}{
		{"s3 event, key URL-decoded, removals ignored", s3ev, "[{b vpc/AWSLogs/1/my file=1.log.gz}]", ""},
		{"through SNS", string(sns), "[{b vpc/AWSLogs/1/my file=1.log.gz}]", ""},
		{"test event", `{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}`, "[]", ""},
		{"not JSON", "hello", "", "message body is not JSON"},
		{"no records", `{"foo":1}`, "", "no Records"},
		{"bad escape", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%zz"}}}]}`, "", "not an S3 event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := flowlogs.Decode(tc.body)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tc.want && !(tc.want == "[]" && len(got) == 0) {
				t.Fatalf("%v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
