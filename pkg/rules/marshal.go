package rules

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// MarshalYAML renders a File as a rule file that Parse reads back to an
// equal File (positions aside, rules in name order). The output is stable:
// account and region first when set (the account quoted), rules sorted by name, fields in the documented order (securityGroup, type,
// protocol, fromPort, toPort, cidrBlocks, ipv6CidrBlocks,
// sourceSecurityGroups, prefixListIds, description, expiresAt in UTC), empty fields left out,
// ports always written, group references in flow style, no comments. It
// returns an error when the output would not parse back without errors
// (the File was not valid).
func MarshalYAML(f *File) ([]byte, error) {
	if f == nil {
		return nil, fmt.Errorf("marshal rule file: nil file")
	}
	rs := append([]Rule(nil), f.Rules...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	rules := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if len(rs) == 0 {
		rules.Style = yaml.FlowStyle
	}
	for _, r := range rs {
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		add := func(k string, v *yaml.Node) { m.Content = append(m.Content, strNode(k), v) }
		add("securityGroup", refNode(r.SecurityGroup))
		add("type", strNode(string(r.Direction)))
		if n, err := strconv.Atoi(r.Protocol); err == nil && r.Protocol != ProtoAll {
			add("protocol", intNode(int64(n)))
		} else {
			add("protocol", strNode(r.Protocol))
		}
		add("fromPort", intNode(int64(r.FromPort)))
		add("toPort", intNode(int64(r.ToPort)))
		if len(r.CIDRBlocks) > 0 {
			s := seqNode()
			for _, c := range r.CIDRBlocks {
				s.Content = append(s.Content, strNode(c.String()))
			}
			add("cidrBlocks", s)
		}
		if len(r.IPv6CIDRBlocks) > 0 {
			s := seqNode()
			for _, c := range r.IPv6CIDRBlocks {
				s.Content = append(s.Content, strNode(c.String()))
			}
			add("ipv6CidrBlocks", s)
		}
		if len(r.SourceSecurityGroups) > 0 {
			s := seqNode()
			for _, g := range r.SourceSecurityGroups {
				s.Content = append(s.Content, refNode(g))
			}
			add("sourceSecurityGroups", s)
		}
		if len(r.PrefixListIDs) > 0 {
			s := seqNode()
			for _, pl := range r.PrefixListIDs {
				s.Content = append(s.Content, strNode(pl))
			}
			add("prefixListIds", s)
		}
		if r.Description != "" {
			add("description", strNode(r.Description))
		}
		if !r.ExpiresAt.IsZero() {
			add("expiresAt", strNode(FormatExpiresAt(r.ExpiresAt)))
		}
		rules.Content = append(rules.Content, strNode(r.Name), m)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if f.Target.Account != "" {
		root.Content = append(root.Content, strNode("account"), quotedNode(f.Target.Account))
	}
	if f.Target.Region != "" {
		root.Content = append(root.Content, strNode("region"), strNode(f.Target.Region))
	}
	root.Content = append(root.Content, strNode("rules"), rules)
	if len(f.ExclusiveGroups) > 0 {
		s := seqNode()
		for _, g := range f.ExclusiveGroups {
			s.Content = append(s.Content, refNode(g))
		}
		root.Content = append(root.Content, strNode("exclusiveGroups"), s)
	}
	if len(f.AllowUsedRemoval) > 0 {
		s := seqNode()
		for _, n := range f.AllowUsedRemoval {
			s.Content = append(s.Content, strNode(n))
		}
		root.Content = append(root.Content, strNode("allowUsedRemoval"), s)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("marshal rule file %s: %w", f.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal rule file %s: %w", f.Name, err)
	}
	if _, diags := Parse("marshal.yaml", buf.Bytes()); diags.HasErrors() {
		return nil, fmt.Errorf("marshal rule file %s: output does not validate: %w", f.Name, diags.Err())
	}
	return buf.Bytes(), nil
}

func intNode(v int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
}

func seqNode() *yaml.Node { return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"} }

func refNode(g GroupRef) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
	if g.ID != "" && g.Account != "" {
		m.Content = append(m.Content, strNode("groupId"), strNode(g.ID), strNode("account"), quotedNode(g.Account))
		return m
	}
	if g.ID != "" || (g.Name == "" && len(g.Tags) == 0) {
		return strNode(g.ID)
	}
	if g.Name != "" {
		m.Content = append(m.Content, strNode("groupName"), strNode(g.Name), strNode("vpcId"), strNode(g.VPCID))
		return m
	}
	m.Content = append(m.Content, strNode("tags"), mapNode(g.Tags, strNode))
	m.Content[1].Style = yaml.FlowStyle
	return m
}
