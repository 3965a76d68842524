package ec2sg_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/pkg/rules"
)

func TestRegionsOnMoto(t *testing.T) {
	e := setup(t)
	got, err := ec2sg.Regions(context.Background(), ec2.NewFromConfig(e.cfg))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, "eu-west-1") || !slices.Contains(got, "us-east-1") || slices.Contains(got, "eu-west-9") {
		t.Errorf("Regions = %v", got)
	}
	if !slices.IsSorted(got) {
		t.Errorf("Regions not sorted: %v", got)
	}
}

// rules.Regions knows every region of the partition data of the AWS SDK
// pinned in go.mod (internal/endpoints/awsrulesfn/partitions.go of
// github.com/aws/aws-sdk-go-v2), so a new SDK brings its regions to the
// did-you-mean list and the schema's pattern accepts them.
func TestKnownRegionsCoverTheSDKs(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "internal", "endpoints", "awsrulesfn", "partitions.go")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var sdk []string
	for _, m := range regexp.MustCompile(`(?m)^\t\t\t"([a-z0-9-]+)": \{`).FindAllStringSubmatch(string(src), -1) {
		if !strings.HasSuffix(m[1], "-global") {
			sdk = append(sdk, m[1])
		}
	}
	if len(sdk) < 30 {
		t.Fatalf("found %d regions in %s: has the file's layout changed?", len(sdk), path)
	}
	for _, r := range sdk {
		if !rules.IsRegion(r) {
			t.Errorf("the SDK knows region %s, rules.Regions does not", r)
		}
		if !rules.IsRegionName(r) {
			t.Errorf("the SDK's region %s is not of rules.RegionPattern", r)
		}
	}
}
