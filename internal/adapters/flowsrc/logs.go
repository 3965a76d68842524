package flowsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sgrules/sgrules/pkg/flowlog"
)

// S3API is the part of the S3 client Logs uses; *s3.Client satisfies it.
type S3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// Logs reads flow-log objects delivered to S3 in the standard layout
// PREFIX/AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/*.log.gz.
type Logs struct {
	api    S3API
	bucket string
	prefix string
	// Regions, when set, keeps only the logs of these regions.
	Regions []string
	// Accounts, when set, keeps only the logs of these accounts.
	Accounts []string
	// Workers is how many objects Read reads at once (0: 4).
	Workers int
}

// NewLogs returns the flow logs under prefix in bucket: the flow log's
// destination prefix (the part before AWSLogs/), or a deeper one down to
// …/vpcflowlogs/REGION/.
func NewLogs(api S3API, bucket, prefix string) *Logs {
	return &Logs{api: api, bucket: bucket, prefix: prefix}
}

// regionRoot matches a prefix that already names one account and region.
var regionRoot = regexp.MustCompile(`(^|/)AWSLogs/\d{12}/vpcflowlogs/[a-z0-9-]+/$`)

// Object is one log object.
type Object struct {
	Key  string
	Size int64
}

// List returns the log objects of the days from..to (UTC dates, both
// included), sorted by key: one listing per account, region and day
// (YYYY/MM/DD/ prefixes; hourly HH/ partitions below them are included).
func (l *Logs) List(ctx context.Context, from, to time.Time) ([]Object, error) {
	if to.Before(from) {
		return nil, fmt.Errorf("list flow logs: window ends (%s) before it starts (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	roots, err := l.roots(ctx)
	if err != nil {
		return nil, err
	}
	var out []Object
	first := time.Date(from.UTC().Year(), from.UTC().Month(), from.UTC().Day(), 0, 0, 0, 0, time.UTC)
	for _, root := range roots {
		for d := first; !d.After(to.UTC()); d = d.AddDate(0, 0, 1) {
			err := l.list(ctx, root+d.Format("2006/01/02/"), "", func(key string, size int64) {
				if IsLogKey(key) {
					out = append(out, Object{Key: key, Size: size})
				}
			}, nil)
			if err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// IsLogKey reports whether a key is a flow-log text object (.log.gz or
// .log; the per-flow-log manifest and Parquet objects are not).
func IsLogKey(key string) bool {
	return strings.HasSuffix(key, ".log.gz") || strings.HasSuffix(key, ".log")
}

// roots returns the …/vpcflowlogs/REGION/ prefixes under the prefix, for
// the accounts and regions kept.
func (l *Logs) roots(ctx context.Context) ([]string, error) {
	if regionRoot.MatchString(l.prefix) {
		return []string{l.prefix}, nil
	}
	base := l.prefix + "AWSLogs/"
	if strings.HasSuffix(l.prefix, "AWSLogs/") {
		base = l.prefix
	}
	var accounts []string
	if err := l.list(ctx, base, "/", nil, func(p string) { accounts = append(accounts, p) }); err != nil {
		return nil, err
	}
	var roots []string
	for _, acct := range accounts {
		id := strings.TrimSuffix(strings.TrimPrefix(acct, base), "/")
		if len(l.Accounts) > 0 && !contains(l.Accounts, id) {
			continue
		}
		err := l.list(ctx, acct+"vpcflowlogs/", "/", nil, func(p string) {
			region := strings.TrimSuffix(strings.TrimPrefix(p, acct+"vpcflowlogs/"), "/")
			if len(l.Regions) == 0 || contains(l.Regions, region) {
				roots = append(roots, p)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(roots)
	return roots, nil
}

// list pages through a listing, calling obj for each object and dir for
// each common prefix.
func (l *Logs) list(ctx context.Context, prefix, delim string, obj func(string, int64), dir func(string)) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(l.bucket), Prefix: aws.String(prefix)}
	if delim != "" {
		in.Delimiter = aws.String(delim)
	}
	for {
		page, err := l.api.ListObjectsV2(ctx, in)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", l.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			if obj != nil {
				obj(aws.ToString(o.Key), aws.ToInt64(o.Size))
			}
		}
		for _, p := range page.CommonPrefixes {
			if dir != nil {
				dir(aws.ToString(p.Prefix))
			}
		}
		if !aws.ToBool(page.IsTruncated) || aws.ToString(page.NextContinuationToken) == "" {
			return nil
		}
		in.ContinuationToken = page.NextContinuationToken
	}
}

// Open returns the body of one object.
func (l *Logs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := l.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(l.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", l.bucket, key, err)
	}
	return out.Body, nil
}

// DeliveryLag is how long after a record's capture window its object may
// land: Read lists the days up to the window's end plus this, so that
// records of the window's last minutes, delivered into the next day's
// folder, are read (the aggregator drops what falls outside the window).
const DeliveryLag = time.Hour

// Read lists the objects of the window and reads them into ag, each in
// one streaming pass, Workers at a time (default 4; each worker folds
// into its own aggregator, merged at the end). An object whose content
// cannot be read (no header, broken gzip) is counted by ag and the run
// goes on; an S3 error stops it and is returned. It returns the objects
// listed.
func (l *Logs) Read(ctx context.Context, ag *flowlog.Aggregator, from, to time.Time) ([]Object, error) {
	objs, err := l.List(ctx, from, to.Add(DeliveryLag))
	if err != nil {
		return nil, err
	}
	workers := l.Workers
	if workers <= 0 {
		workers = 4
	}
	workers = min(workers, max(len(objs), 1))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan Object)
	errs := make([]error, workers)
	forks := make([]*flowlog.Aggregator, workers)
	var wg sync.WaitGroup
	for i := range workers {
		forks[i] = ag.Fork()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range next {
				if err := l.readOne(ctx, forks[i], o.Key); err != nil {
					errs[i] = err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for _, o := range objs {
		select {
		case next <- o:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, f := range forks {
		ag.Merge(f)
	}
	return objs, nil
}

// readOne reads one object into ag.
func (l *Logs) readOne(ctx context.Context, ag *flowlog.Aggregator, key string) error {
	body, err := l.Open(ctx, key)
	if err != nil {
		return err
	}
	defer body.Close()
	_ = ag.AddObject("s3://"+l.bucket+"/"+key, body) // counted in ag's stats
	// Drain what a broken object left unread, so that the SDK can check
	// the body and reuse the connection.
	_, _ = io.Copy(io.Discard, body)
	return nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// logKey matches a log object's key in the standard layout:
// …AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/[HH/]NAME.
var logKey = regexp.MustCompile(`(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/vpcflowlogs/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/(?:\d{2}/)?[^/]+$`)

// KeyInfo is what a log object's key says: the account and region whose
// flow logs it holds and the day of its folder (midnight UTC).
type KeyInfo struct {
	Account, Region string
	Day             time.Time
}

// ParseLogKey reads the account, region and day of a log object's key
// (the standard layout, with or without an organisation id after AWSLogs/
// and hourly HH/ partitions); false when the key is not a flow-log text
// object (IsLogKey) in that layout.
func ParseLogKey(key string) (KeyInfo, bool) {
	if !IsLogKey(key) {
		return KeyInfo{}, false
	}
	m := logKey.FindStringSubmatch(key)
	if m == nil {
		return KeyInfo{}, false
	}
	day, err := time.Parse("2006/01/02", m[3]+"/"+m[4]+"/"+m[5])
	if err != nil {
		return KeyInfo{}, false
	}
	return KeyInfo{Account: m[1], Region: m[2], Day: day}, true
}
