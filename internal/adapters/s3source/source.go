package s3source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// API is the part of the S3 client the source uses; *s3.Client satisfies
// it.
type API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// CommitMetadata is the user metadata key (x-amz-meta-sgrules-commit) of
// the commit a rule file was uploaded from; the example sync workflow
// sets it (aws s3 sync --metadata sgrules-commit=$GITHUB_SHA), and the
// rules' history names it (ObjectInfo.Commit).
const CommitMetadata = "sgrules-commit"

var (
	_ API              = (*s3.Client)(nil)
	_ reconcile.Source = (*Source)(nil)
)

// Source is a bucket prefix of rule files.
type Source struct {
	api    API
	bucket string
	prefix string
}

// New returns the source of rule files under prefix in bucket (prefix ""
// means the whole bucket; include the trailing slash: "rules/").
func New(api API, bucket, prefix string) *Source {
	return &Source{api: api, bucket: bucket, prefix: prefix}
}

// IsRuleKey reports whether an object key is a rule file of the source
// with this prefix: under prefix, not a folder marker, and ending in
// .yaml, .yml or .json (any case).
func IsRuleKey(key, prefix string) bool {
	if !strings.HasPrefix(key, prefix) || strings.HasSuffix(key, "/") {
		return false
	}
	k := strings.ToLower(key)
	return strings.HasSuffix(k, ".yaml") || strings.HasSuffix(k, ".yml") || strings.HasSuffix(k, ".json")
}

// List returns every rule file under the prefix, sorted by key, over all
// pages. ListObjectsV2 carries no version ids: VersionID is empty.
func (s *Source) List(ctx context.Context) ([]reconcile.ObjectInfo, error) {
	var out []reconcile.ObjectInfo
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
	if s.prefix != "" {
		in.Prefix = aws.String(s.prefix)
	}
	for {
		page, err := s.api.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, s.prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !IsRuleKey(key, s.prefix) {
				continue
			}
			out = append(out, reconcile.ObjectInfo{Key: key, ETag: unquote(aws.ToString(o.ETag)), Size: aws.ToInt64(o.Size)})
		}
		if !aws.ToBool(page.IsTruncated) || aws.ToString(page.NextContinuationToken) == "" {
			break
		}
		in.ContinuationToken = page.NextContinuationToken
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Get reads one object. It returns an error wrapping reconcile.ErrNotFound
// when the object is absent, and Body nil (with Size set) when the object
// is larger than rules.MaxFileSize, reading no more than MaxFileSize+1
// bytes of it.
func (s *Source) Get(ctx context.Context, key string) (reconcile.Object, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return reconcile.Object{}, fmt.Errorf("get s3://%s/%s: %w: %w", s.bucket, key, reconcile.ErrNotFound, err)
		}
		return reconcile.Object{}, fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, err)
	}
	defer out.Body.Close()
	obj := reconcile.Object{ObjectInfo: reconcile.ObjectInfo{
		Key:       key,
		ETag:      unquote(aws.ToString(out.ETag)),
		VersionID: aws.ToString(out.VersionId),
		Size:      aws.ToInt64(out.ContentLength),
		Commit:    out.Metadata[CommitMetadata],
	}}
	if obj.Size > rules.MaxFileSize {
		return obj, nil
	}
	body, err := io.ReadAll(io.LimitReader(out.Body, rules.MaxFileSize+1))
	if err != nil {
		return reconcile.Object{}, fmt.Errorf("read s3://%s/%s: %w", s.bucket, key, err)
	}
	if len(body) > rules.MaxFileSize {
		// The length was unknown or wrong: refuse without reading more.
		obj.Size = max(obj.Size, int64(len(body)))
		return obj, nil
	}
	obj.Size = int64(len(body))
	obj.Body = body
	return obj, nil
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchVersion":
			return true
		}
	}
	return false
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }
