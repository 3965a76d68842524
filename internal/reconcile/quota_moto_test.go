package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgrules/sgrules/internal/adapters/ddbledger"
	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/adapters/s3source"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// awsWeights answers DescribeManagedPrefixLists as EC2 does for
// AWS-managed lists: MaxEntries is the list's weight (moto leaves it
// empty). Everything else is moto's answer.
type awsWeights struct {
	*ec2.Client
	weight map[string]int32 // list name -> weight
}

func (a awsWeights) DescribeManagedPrefixLists(ctx context.Context, in *ec2.DescribeManagedPrefixListsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeManagedPrefixListsOutput, error) {
	out, err := a.Client.DescribeManagedPrefixLists(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	for i, pl := range out.PrefixLists {
		if w, ok := a.weight[aws.ToString(pl.PrefixListName)]; ok && aws.ToString(pl.OwnerId) == "AWS" && pl.MaxEntries == nil {
			out.PrefixLists[i].MaxEntries = aws.Int32(w)
		}
	}
	return out, nil
}

// EC2 counts a rule referencing an AWS-managed prefix list as the list's
// weight (CloudFront origin-facing: 55): 10 CIDR rules and that list are
// 65 rules, over the default quota of 60, and the plan says so before
// apply.
func TestQuotaCountsAWSManagedListsByWeight(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const cf = "com.amazonaws.global.cloudfront.origin-facing"
	pls, err := w.ec2.DescribeManagedPrefixLists(ctx, &ec2.DescribeManagedPrefixListsInput{
		Filters: []ec2types.Filter{{Name: aws.String("prefix-list-name"), Values: []string{cf}}}})
	if err != nil || len(pls.PrefixLists) != 1 {
		t.Fatalf("moto's %s: %v %v", cf, pls, err)
	}
	list := aws.ToString(pls.PrefixLists[0].PrefixListId)
	eng, err := reconcile.New(reconcile.Config{
		Source:   s3source.New(w.s3, w.bucket, "rules/"),
		Groups:   ec2sg.New(awsWeights{w.ec2, map[string]int32{cf: 55}}),
		Ledger:   ddbledger.New(dynamodb.NewFromConfig(w.cfg), "ledger"),
		LedgerID: "ledger",
	})
	if err != nil {
		t.Fatal(err)
	}
	web := w.groups["web"]
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  r%d:\n    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: %d\n    toPort: %d\n    cidrBlocks: [10.1.0.0/16]\n", i, web, 1000+i, 1000+i)
	}
	w.put("rules/web.yaml", []byte(b.String()))
	res, err := eng.Reconcile(ctx, reconcile.Request{Keys: []string{"rules/web.yaml"}})
	if err != nil || len(res.Quota) != 0 {
		t.Fatalf("10 rules: quota %+v, err %v", res.Quota, err)
	}
	fmt.Fprintf(&b, "  cdn:\n    securityGroup: %s\n    type: ingress\n    protocol: tcp\n    fromPort: 443\n    toPort: 443\n    prefixListIds: [%s]\n", web, list)
	w.put("rules/web.yaml", []byte(b.String()))
	res, err = eng.Reconcile(ctx, reconcile.Request{Keys: []string{"rules/web.yaml"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []reconcile.QuotaWarning{{Group: web, Direction: rules.Ingress, Family: "IPv4", Rules: 65}}
	if fmt.Sprint(res.Quota) != fmt.Sprint(want) {
		t.Errorf("quota = %+v, want %+v", res.Quota, want)
	}
}
