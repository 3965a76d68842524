"""sgrules' patch of moto_server: ModifySecurityGroupRules changes the peer.

EC2's ModifySecurityGroupRules rewrites a rule in place, by id: protocol,
ports, description and its peer (CidrIpv4, CidrIpv6, PrefixListId or
ReferencedGroupId). moto applies protocol, ports, description and an IPv4
CIDR, and leaves a TODO for the rest: a changed IPv6 CIDR, prefix list or
referenced group is silently ignored, so the rule keeps its old peer.
sgrules modifies rules in place within one peer kind only; this patch
makes moto do what EC2 does for those (the new IPv6 CIDR, prefix list id
or referenced group id), after moto's own handling.

internal/dev/motoproc loads it into every moto_server it starts, like
sgrules_moto_atomic.py; if moto's code no longer matches, moto_server
exits with an error instead of running unpatched.
"""

import os
import sys


def _fail(msg):
    sys.stderr.write("sgrules moto modify: %s; cannot patch\n" % msg)
    sys.exit(3)


def _patch():
    try:
        from moto.ec2.models.security_groups import SecurityGroupBackend
    except Exception as e:  # noqa: BLE001 any import failure means "cannot patch"
        _fail("cannot import moto.ec2.models.security_groups.SecurityGroupBackend (%s)" % e)
    original = SecurityGroupBackend.__dict__.get("modify_security_group_rules")
    if original is None or not callable(original):
        _fail("moto's SecurityGroupBackend has no modify_security_group_rules")

    def modify_security_group_rules(self, group_id, rules):
        result = original(self, group_id, rules)
        group = self.get_security_group_by_name_or_id(group_id)
        for rule_id, new_rule in rules.items():
            rule = group.get_rule(rule_id)
            if rule is None:
                continue
            cidr_ipv6 = new_rule.get("CidrIpv6")
            prefix_list_id = new_rule.get("PrefixListId")
            group_ref = new_rule.get("ReferencedGroupId")
            if cidr_ipv6 is not None and "CidrIpv6" in rule.ip_range:
                rule.ip_range["CidrIpv6"] = cidr_ipv6
            if prefix_list_id is not None and rule.prefix_list_id is not None:
                rule.prefix_list_id = prefix_list_id
            if group_ref is not None and rule.source_group:
                rule.source_group = dict(rule.source_group, GroupId=group_ref)
        return result

    modify_security_group_rules.__doc__ = original.__doc__
    SecurityGroupBackend.modify_security_group_rules = modify_security_group_rules


if os.path.basename(sys.argv[0] if sys.argv else "") == "moto_server":
    _patch()
    sys.stderr.write("sgrules moto modify: applied (ModifySecurityGroupRules changes the peer)\n")
