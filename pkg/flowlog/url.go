package flowlog

import (
	"fmt"
	"net/url"
	"strings"
)

// ParseURL splits "s3://BUCKET/PREFIX" (PREFIX optional), where the flow
// logs are delivered (FLOW_LOGS_URL, the CLI's --flow-logs), into the
// bucket and the prefix, which ends in "/" when not empty.
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%q: want s3://BUCKET or s3://BUCKET/PREFIX", s)
	}
	prefix = strings.TrimPrefix(u.Path, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return u.Host, prefix, nil
}
