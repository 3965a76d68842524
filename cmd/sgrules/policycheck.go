package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgrules/sgrules/internal/adapters/ec2sg"
	"github.com/sgrules/sgrules/internal/fleetrt"
	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/policy"
	"github.com/sgrules/sgrules/pkg/rules"
)

// finding is one line of validate's output: a diagnostic, and for policy
// violations and skipped policy checks the clause id.
type finding struct {
	rules.Diagnostic
	policy string
}

// parsedFile is a valid rule file found by validate.
type parsedFile struct {
	ruleFile
	file *rules.File
}

// loadPolicy reads and parses a policy file; a file it cannot read is one
// located error.
func loadPolicy(path string) (*policy.Policy, rules.Diagnostics) {
	data, diags := readLimited(path)
	if data == nil {
		return nil, diags
	}
	return policy.Parse(path, data)
}

// withoutFile drops path (the policy file, when it lies in a directory
// being validated) from the rule files.
func withoutFile(files []ruleFile, path string) []ruleFile {
	abs, err := filepath.Abs(path)
	if err != nil {
		return files
	}
	out := files[:0:0]
	for _, f := range files {
		if a, err := filepath.Abs(f.path); err == nil && a == abs {
			continue
		}
		out = append(out, f)
	}
	return out
}

// onlineFacts is what EC2 reports about the groups the rule files name.
type onlineFacts struct {
	// ids resolves each reference (by String()) to the matching group ids.
	ids   map[string][]string
	facts policy.Facts
	// account is the caller's (the hub's): the account of a file that
	// names none; "" when no tenant restricts accounts.
	account string
}

// tenantAccounts tells whether a tenant restricts accounts (validate
// --online then asks who the caller is).
func tenantAccounts(pol *policy.Policy) bool {
	if pol == nil {
		return false
	}
	for _, t := range pol.Tenants {
		if len(t.Accounts) > 0 {
			return true
		}
	}
	return false
}

func (o *onlineFacts) resolve(g rules.GroupRef) []string { return o.ids[g.String()] }

// readOnlineFacts resolves every group reference of the files and
// describes every group they involve: one batched ResolveGroups and one
// batched DescribeGroups (read-only DescribeSecurityGroups calls); and it
// reads the entries of the prefix lists they name (one
// DescribeManagedPrefixLists, one GetManagedPrefixListEntries per
// customer-managed list). A list that does not exist or may not be read
// stays unknown: its checks are skipped, as offline. With needAccount it
// asks who the caller is (the account of files naming none).
func readOnlineFacts(ctx context.Context, w *wiring, files []parsedFile, needAccount bool) (*onlineFacts, error) {
	cfg, err := w.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	account := ""
	if needAccount {
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return nil, fmt.Errorf("who am I (sts:GetCallerIdentity): %w", err)
		}
		account = aws.ToString(id.Account)
	}
	client := ec2sg.New(ec2.NewFromConfig(cfg))
	seen := map[string]rules.GroupRef{}
	var refs []rules.GroupRef
	idSet := map[string]bool{}
	for _, pf := range files {
		for _, g := range pf.file.Refs() {
			if _, ok := seen[g.String()]; !ok {
				seen[g.String()] = g
				refs = append(refs, g)
			}
		}
		for _, r := range pf.file.Rules {
			for _, g := range append([]rules.GroupRef{r.SecurityGroup}, r.SourceSecurityGroups...) {
				if g.IsID() {
					idSet[g.ID] = true
				}
			}
		}
		for _, g := range pf.file.ExclusiveGroups {
			if g.IsID() {
				idSet[g.ID] = true
			}
		}
	}
	o := &onlineFacts{ids: map[string][]string{}, facts: policy.Facts{Groups: map[string]policy.Group{}}, account: account}
	if o.facts.PrefixLists, err = readPrefixLists(ctx, client, files); err != nil {
		return nil, err
	}
	if len(refs) > 0 {
		if o.ids, err = client.ResolveGroups(ctx, refs); err != nil {
			return nil, err
		}
	}
	for _, ids := range o.ids {
		for _, id := range ids {
			idSet[id] = true
		}
	}
	ids := make([]string, 0, len(idSet))
	for id := range idSet {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return o, nil
	}
	groups, err := client.DescribeGroups(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		o.facts.Groups[g.GroupID] = policy.Group{ID: g.GroupID, Name: g.Name, VPCID: g.VPCID, Tags: g.Tags, Complete: true}
	}
	return o, nil
}

// readPrefixLists reads the entries of the prefix lists the files name:
// none for an AWS-managed list (AWS service ranges, see docs/policy.md);
// a list that does not exist or may not be read is left out (unknown).
func readPrefixLists(ctx context.Context, client *ec2sg.Client, files []parsedFile) (map[string][]netip.Prefix, error) {
	set := map[string]bool{}
	for _, pf := range files {
		for _, r := range pf.file.Rules {
			for _, id := range r.PrefixListIDs {
				set[id] = true
			}
		}
	}
	out := map[string][]netip.Prefix{}
	if len(set) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	infos, err := client.DescribePrefixLists(ctx, ids)
	if errors.Is(err, reconcile.ErrAccessDenied) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, pl := range infos {
		if pl.AWSManaged {
			out[pl.ID] = nil
			continue
		}
		entries, err := client.PrefixListEntries(ctx, pl.ID)
		switch {
		case errors.Is(err, reconcile.ErrNotFound), errors.Is(err, reconcile.ErrAccessDenied):
		case err != nil:
			return nil, err
		default:
			out[pl.ID] = entries
		}
	}
	return out, nil
}

// checkPolicy expands one file (offline: each reference stands for
// itself; online: as EC2 resolves it) and checks it against the policy
// (nil: only the expansion is checked).
func checkPolicy(pol *policy.Policy, pf parsedFile, online *onlineFacts) []finding {
	resolve, facts := policy.Offline(pf.file)
	if online != nil {
		resolve, facts = online.resolve, online.facts
	}
	now := time.Now()
	facts.Now = now // allowIfExpiresWithin and maxDuration are measured from now
	perms, _, diags := rules.ExpandAt(pf.file, pf.path, resolve, now)
	var out []finding
	for _, d := range diags {
		out = append(out, finding{Diagnostic: d})
	}
	if diags.HasErrors() || pol == nil {
		return out
	}
	src := policy.Source{File: pf.file, Perms: perms, Resolve: resolve, Path: pf.rel}
	if online != nil && pf.file.Target.Account == "" {
		src.Account = online.account // a file naming no account applies to the caller's
	}
	res := pol.Check(src, facts)
	for _, v := range res.Violations {
		out = append(out, finding{Diagnostic: v.Diagnostic, policy: v.Policy})
	}
	for _, s := range res.Skipped {
		out = append(out, finding{Diagnostic: s.Diagnostic, policy: s.Policy})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return out
}

// checkRegionsOnline returns a located error for each file naming a
// region that does not exist (fleetrt.RegionCheck: one DescribeRegions
// call at most), as plan and apply find it.
func checkRegionsOnline(ctx context.Context, w *wiring, files []parsedFile) ([]finding, error) {
	var out []finding
	var check *fleetrt.RegionCheck
	for _, pf := range files {
		r := pf.file.Target.Region
		if r == "" {
			continue
		}
		if check == nil {
			cfg, err := w.awsConfig(ctx)
			if err != nil {
				return nil, err
			}
			check = fleetrt.NewRegionCheck(cfg)
		}
		ok, err := check.Exists(ctx, r)
		if err != nil {
			return nil, err
		}
		for _, d := range rules.CheckRegion(pf.file, func(string) bool { return ok }, "") {
			out = append(out, finding{Diagnostic: d})
		}
	}
	return out, nil
}
