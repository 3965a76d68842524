"""sgrules' patch of moto_server: DescribeStaleSecurityGroups.

moto does not implement DescribeStaleSecurityGroups. EC2 answers, for the
groups of one VPC, the rules that reference a group which no longer
exists or a group in another VPC that no active peering connection joins
to it (the peering was deleted), as StaleIpPermissions (ingress) and
StaleIpPermissionsEgress, each with the stale UserIdGroupPairs; groups
with no stale rule are left out; MaxResults (5-255) and NextToken page.
This patch adds that action to moto's EC2 responses, answering from
moto's own groups and peering connections.

internal/dev/motoproc loads it into every moto_server it starts, like
sgrules_moto_modify.py; if moto's code no longer matches, moto_server
exits with an error instead of running unpatched.
"""

import os
import sys


def _fail(msg):
    sys.stderr.write("sgrules moto stale: %s; cannot patch\n" % msg)
    sys.exit(3)


def _patch():
    try:
        from moto.core.responses import ActionResult
        from moto.ec2.responses.security_groups import SecurityGroups
    except Exception as e:  # noqa: BLE001 any import failure means "cannot patch"
        _fail("cannot import moto's EC2 SecurityGroups responses (%s)" % e)
    if "describe_stale_security_groups" in SecurityGroups.__dict__:
        _fail("moto implements describe_stale_security_groups now: drop this patch")

    def _peered(backend, a, b):
        for pcx in getattr(backend, "vpc_pcxs", {}).values():
            ends = {pcx.vpc.id, pcx.peer_vpc.id}
            if ends == {a, b} and pcx._status.code == "active":
                return True
        return False

    def _stale(backend, group, rules):
        out = []
        for rule in rules:
            ref = rule.source_group or {}
            gid = ref.get("GroupId")
            if not gid:
                continue
            target = backend.get_security_group_from_id(gid)
            if target is not None and (target.vpc_id == group.vpc_id or _peered(backend, group.vpc_id, target.vpc_id)):
                continue
            pair = {"GroupId": gid, "UserId": ref.get("UserId") or backend.account_id}
            if target is not None:
                pair["VpcId"] = target.vpc_id
                pair["PeeringStatus"] = "deleted"
            perm = {"IpProtocol": rule.ip_protocol, "UserIdGroupPairs": [pair]}
            if rule.from_port is not None:
                perm["FromPort"] = rule.from_port
                perm["ToPort"] = rule.to_port
            out.append(perm)
        return out

    def describe_stale_security_groups(self):
        vpc_id = self._get_param("VpcId")
        max_results = int(self._get_param("MaxResults") or 255)
        start = int(self._get_param("NextToken") or 0)
        backend = self.ec2_backend
        stale = []
        groups = sorted(backend.groups.get(vpc_id, {}).values(), key=lambda g: g.id)
        for g in groups:
            ingress = _stale(backend, g, g.ingress_rules)
            egress = _stale(backend, g, g.egress_rules)
            if ingress or egress:
                stale.append({"GroupId": g.id, "GroupName": g.name, "Description": g.description, "VpcId": g.vpc_id,
                              "StaleIpPermissions": ingress, "StaleIpPermissionsEgress": egress})
        result = {"StaleSecurityGroupSet": stale[start:start + max_results]}
        if start + max_results < len(stale):
            result["NextToken"] = str(start + max_results)
        return ActionResult(result)

    SecurityGroups.describe_stale_security_groups = describe_stale_security_groups


if os.path.basename(sys.argv[0] if sys.argv else "") == "moto_server":
    _patch()
    sys.stderr.write("sgrules moto stale: applied (DescribeStaleSecurityGroups)\n")
