package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/config"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/cli/importer"
	"github.com/sgrules/sgrules/internal/report/render"
	"github.com/sgrules/sgrules/pkg/rules"
)

func init() {
	register(&command{
		name:    "import",
		summary: "print a rule file declaring the current rules of security groups",
		usage: `Usage: sgrules import [--exclusive] [flags] GROUP_ID...

Reads the security groups and their rules and prints a rule file (YAML)
that declares exactly those rules. Permissions that share the group,
direction, protocol, ports and description become one rule with several
sources. Rule names read GROUP-DIRECTION-PROTOCOL[-PORTS], where GROUP is
the group's Name tag or group name: web-ingress-tcp-443, web-egress-all,
web-ingress-icmp-8, with -2, -3… when names would repeat. Groups (target
and peers) are referenced by id.

Applying the file to the same account adopts the existing rules and
changes nothing; from then on sgrules manages them as if it had created
them: deleting the file, or a rule in it, revokes those rules (a group's
default egress rule too, if imported). Delete from the file any rule you
do not want to hand over before applying it. With --exclusive the
groups are also declared exclusive: rules added outside sgrules later are
revoked.

With --account the groups are read in that account through the role
--target-role (unless the caller is in it), and the file says account:
(and, with --region, region:), so that it is applied there.

Only the AWS flags apply; no bucket or ledger is read.

Exit status: 0 success; 1 error (a group not found, an AWS error);
2 usage error.

Examples:
  sgrules import sg-0123456789abcdef0 > rules/web.yaml
  sgrules import --exclusive sg-0123456789abcdef0 sg-0fedcba9876543210 > rules/app.yaml
  sgrules import --region eu-west-1 sg-0123456789abcdef0 > web.yaml && sgrules validate web.yaml
  sgrules import --account 111122223333 --region eu-west-1 sg-0123456789abcdef0 > rules/team-b.yaml
`,
		run: runImport,
	})
}

var reGroupID = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(commands["import"], stderr)
	var w wiring
	w.addAWSFlags(fs)
	exclusive := fs.Bool("exclusive", false, "also declare the groups exclusive (exclusiveGroups)")
	account := fs.String("account", "", "the groups are in this account: read them through --target-role there (unless it is the caller's) and write account: into the file; with --region, region: too")
	targetRole := fs.String("target-role", config.DefaultTargetRole, "role assumed in --account (env TARGET_ROLE)")
	if v := os.Getenv(config.EnvTargetRole); v != "" {
		*targetRole = v
	}
	if code, done := parseFlags(fs, interleave(fs, args), stdout); done {
		return code
	}
	ids := fs.Args()
	if len(ids) == 0 {
		fmt.Fprintln(stderr, "sgrules import: missing GROUP_ID (sg-…) (run 'sgrules import --help' for the usage)")
		return exitUsage
	}
	seen := map[string]bool{}
	var uniq []string
	for _, id := range ids {
		if !reGroupID.MatchString(id) {
			fmt.Fprintf(stderr, "sgrules import: %q is not a security group id (sg- and 8 or 17 lower-case hex digits)\n", id)
			return exitUsage
		}
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	if *account != "" {
		if a, err := config.TargetAccounts(*account); err != nil || len(a) != 1 {
			fmt.Fprintf(stderr, "sgrules import: --account %s: want one 12-digit account id\n", *account)
			return exitUsage
		}
	}
	cfg, err := w.awsConfig(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules import: %v\n", err)
		return exitFail
	}
	var target rules.Target
	if *account != "" {
		target.Account = *account
		if w.region != "" {
			target.Region = cfg.Region
		}
		if cfg, err = assumeInto(ctx, cfg, *account, *targetRole); err != nil {
			fmt.Fprintf(stderr, "sgrules import: %v\n", err)
			return exitFail
		}
	}
	groups := ec2sg.New(ec2.NewFromConfig(cfg), ec2sg.WithAccount(target.Account))
	infos, err := groups.DescribeGroups(ctx, uniq)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules import: %v\n", err)
		return exitFail
	}
	found := map[string]bool{}
	for _, g := range infos {
		found[g.GroupID] = true
	}
	var missing []string
	for _, id := range uniq {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "sgrules import: security group not found: %s\n", strings.Join(missing, ", "))
		return exitFail
	}
	// Keep the order of the arguments: it orders the rules and the
	// exclusive groups.
	byID := map[string]int{}
	for i, g := range infos {
		byID[g.GroupID] = i
	}
	ordered := infos[:0:0]
	for _, id := range uniq {
		ordered = append(ordered, infos[byID[id]])
	}
	actual, err := groups.DescribeRules(ctx, uniq)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules import: %v\n", err)
		return exitFail
	}
	f, skipped := importer.Convert(ordered, actual, importer.Options{Exclusive: *exclusive})
	f.Target = target
	for _, s := range skipped {
		fmt.Fprintf(stderr, "sgrules import: warning: skipped rule %s (%s in %s): %s\n",
			s.Rule.RuleID, render.Options{}.Rule(s.Rule.Key), s.Rule.Key.GroupID, s.Reason)
	}
	out, err := rules.MarshalYAML(f)
	if err != nil {
		fmt.Fprintf(stderr, "sgrules import: %v\n", err)
		return exitFail
	}
	flagText := ""
	if *exclusive {
		flagText = " --exclusive"
	}
	if target.Account != "" {
		flagText += " --account " + target.Account
	}
	if target.Region != "" {
		flagText += " --region " + target.Region
	}
	fmt.Fprintf(stdout, "# Imported by \"sgrules import%s %s\".\n", flagText, strings.Join(uniq, " "))
	fmt.Fprintln(stdout, "# Applying it adopts the existing rules without changing them. From then on sgrules")
	fmt.Fprintln(stdout, "# manages them: removing a rule (or this file) revokes it in EC2.")
	_, _ = stdout.Write(out)
	return exitOK
}

// interleave moves flags after the group ids in front of them, so that
// "import sg-1 --exclusive" works like "import --exclusive sg-1".
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return append(append(flags, "--"), pos...)
}

// assumeInto returns cfg with the credentials of role in account, unless
// the caller is in that account already.
func assumeInto(ctx context.Context, cfg aws.Config, account, role string) (aws.Config, error) {
	stsc := sts.NewFromConfig(cfg)
	id, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return cfg, fmt.Errorf("who am I (sts:GetCallerIdentity): %w", err)
	}
	if aws.ToString(id.Account) == account {
		return cfg, nil
	}
	partition := "aws"
	if a, err := arn.Parse(aws.ToString(id.Arn)); err == nil {
		partition = a.Partition
	}
	cfg = cfg.Copy()
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsc,
		fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, role),
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "sgrules-cli" }))
	return cfg, nil
}
