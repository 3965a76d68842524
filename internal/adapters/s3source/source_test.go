package s3source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sgrules/sgrules/internal/adapters/awsconfig"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/internal/testutil/motoserver"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestMain(m *testing.M) { motoserver.Main(m) }

func TestIsRuleKey(t *testing.T) {
	tests := []struct {
		key, prefix string
		want        bool
	}{
		{"rules/web.yaml", "rules/", true},
		{"rules/a/b.YML", "rules/", true},
		{"rules/x.Json", "rules/", true},
		{"rules/readme.md", "rules/", false},
		{"rules/dir.yaml/", "rules/", false},
		{"other/web.yaml", "rules/", false},
		{"rulesx/web.yaml", "rules/", false},
		{"web.yaml", "", true},
		{"web.yaml.bak", "", false},
	}
	for _, tc := range tests {
		if got := s3source.IsRuleKey(tc.key, tc.prefix); got != tc.want {
			t.Errorf("IsRuleKey(%q, %q) = %v, want %v", tc.key, tc.prefix, got, tc.want)
		}
	}
}

func TestSourceMoto(t *testing.T) {
	srv := motoserver.Shared(t)
	srv.Reset(t)
	cfg := srv.Config(t)
	ctx := context.Background()
	const bucket = "rules-bucket"
	motoserver.CreateBucket(t, cfg, bucket, true)
	client := s3.NewFromConfig(cfg, awsconfig.S3Options)

	objects := map[string]string{
		"rules/web.yaml":             "rules: []\n",
		"rules/team a/ünïcode ☃.yml": "rules: [1]\n",
		"rules/CAPS.JSON":            `{"rules":[]}`,
		"rules/readme.md":            "# not a rule file",
		"rules/sub/":                 "",
		"other/x.yaml":               "rules: []\n",
		"rules/big.yaml":             strings.Repeat("#", rules.MaxFileSize+1),
		"rules/exactly-max.yaml":     strings.Repeat("#", rules.MaxFileSize),
	}
	etags := map[string]string{}
	versions := map[string]string{}
	for k, v := range objects {
		out, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(v),
			Metadata: map[string]string{s3source.CommitMetadata: "c0ffee" + fmt.Sprint(len(k))}})
		if err != nil {
			t.Fatal(err)
		}
		etags[k] = strings.Trim(aws.ToString(out.ETag), `"`)
		versions[k] = aws.ToString(out.VersionId)
	}
	src := s3source.New(client, bucket, "rules/")
	list, err := src.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range list {
		keys = append(keys, o.Key)
		if o.ETag != etags[o.Key] || o.ETag == "" || strings.Contains(o.ETag, `"`) {
			t.Errorf("%s: etag %q, want %q", o.Key, o.ETag, etags[o.Key])
		}
		if o.Size != int64(len(objects[o.Key])) {
			t.Errorf("%s: size %d, want %d", o.Key, o.Size, len(objects[o.Key]))
		}
	}
	want := []string{"rules/CAPS.JSON", "rules/big.yaml", "rules/exactly-max.yaml", "rules/team a/ünïcode ☃.yml", "rules/web.yaml"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("List keys = %q, want %q", keys, want)
	}

	for _, k := range []string{"rules/web.yaml", "rules/team a/ünïcode ☃.yml", "rules/exactly-max.yaml"} {
		obj, err := src.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if string(obj.Body) != objects[k] || obj.Key != k || obj.ETag != etags[k] || obj.Size != int64(len(objects[k])) {
			t.Errorf("Get(%q) = key %q etag %q size %d body %d bytes", k, obj.Key, obj.ETag, obj.Size, len(obj.Body))
		}
		if obj.VersionID == "" || obj.VersionID != versions[k] {
			t.Errorf("Get(%q) version %q, want %q", k, obj.VersionID, versions[k])
		}
		if want := "c0ffee" + fmt.Sprint(len(k)); obj.Commit != want {
			t.Errorf("Get(%q) commit %q, want %q (metadata %s)", k, obj.Commit, want, s3source.CommitMetadata)
		}
	}
	big, err := src.Get(ctx, "rules/big.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if big.Body != nil || big.Size != rules.MaxFileSize+1 {
		t.Errorf("big object: body %d bytes, size %d", len(big.Body), big.Size)
	}
	if _, err := src.Get(ctx, "rules/missing.yaml"); !errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("missing: err = %v, want ErrNotFound", err)
	}
	// A new version changes etag and version id.
	out, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("rules/web.yaml"), Body: strings.NewReader("rules: [2]\n")})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := src.Get(ctx, "rules/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if obj.VersionID != aws.ToString(out.VersionId) || obj.VersionID == versions["rules/web.yaml"] || string(obj.Body) != "rules: [2]\n" {
		t.Errorf("after overwrite: version %q body %q", obj.VersionID, obj.Body)
	}
	// A deleted object (delete marker in a versioned bucket) is not found.
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("rules/web.yaml")}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Get(ctx, "rules/web.yaml"); !errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("deleted: err = %v, want ErrNotFound", err)
	}
}

// fakeS3 pages ListObjectsV2 two keys at a time and serves bodies that
// record how much was read.
type fakeS3 struct {
	keys  []string
	calls int
	size  int64
	read  int
}

func (f *fakeS3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	f.calls++
	start := 0
	if in.ContinuationToken != nil {
		fmt.Sscan(*in.ContinuationToken, &start)
	}
	end := min(start+2, len(f.keys))
	out := &s3.ListObjectsV2Output{IsTruncated: aws.Bool(end < len(f.keys))}
	if end < len(f.keys) {
		out.NextContinuationToken = aws.String(fmt.Sprint(end))
	}
	for _, k := range f.keys[start:end] {
		out.Contents = append(out.Contents, types.Object{Key: aws.String(k), ETag: aws.String(`"e"`), Size: aws.Int64(1)})
	}
	return out, nil
}

type countingReader struct {
	r io.Reader
	n *int
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += n
	return n, err
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	body := bytes.Repeat([]byte("x"), rules.MaxFileSize*2)
	out := &s3.GetObjectOutput{Body: io.NopCloser(countingReader{bytes.NewReader(body), &f.read}), ETag: aws.String(`"e"`)}
	if f.size >= 0 {
		out.ContentLength = aws.Int64(f.size)
	}
	return out, nil
}

func TestListPagingAndSizeLimit(t *testing.T) {
	f := &fakeS3{keys: []string{"p/a.yaml", "p/b.txt", "p/c.json", "p/d.yml", "p/e.md"}, size: rules.MaxFileSize * 2}
	src := s3source.New(f, "b", "p/")
	list, err := src.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[2].Key != "p/d.yml" || list[0].ETag != "e" {
		t.Errorf("List = %+v", list)
	}
	if f.calls != 3 {
		t.Errorf("List made %d calls, want 3", f.calls)
	}
	obj, err := src.Get(context.Background(), "p/a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if obj.Body != nil || f.read != 0 {
		t.Errorf("oversized object with ContentLength: body %d bytes, read %d", len(obj.Body), f.read)
	}
	f.size = -1 // no ContentLength
	obj, err = src.Get(context.Background(), "p/a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if obj.Body != nil || f.read != rules.MaxFileSize+1 || obj.Size != rules.MaxFileSize+1 {
		t.Errorf("oversized object without ContentLength: body %d bytes, read %d, size %d", len(obj.Body), f.read, obj.Size)
	}
}
