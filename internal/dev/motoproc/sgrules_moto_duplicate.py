"""sgrules' patch of moto_server: a rule's description is not its identity.

EC2 identifies a security group rule by its permission (protocol, ports
and peer); authorizing a permission the group has, with any description,
fails with InvalidPermission.Duplicate. moto compares a referenced-group
peer as the whole dict it stored (GroupId, UserId and the Description), so
authorizing a group peer that is there with another description creates a
second rule for the same permission (a CIDR or prefix list peer is
compared without its description, as EC2 does). This patch compares a
referenced group without its description.

internal/dev/motoproc loads it into every moto_server it starts, like
sgrules_moto_atomic.py; if moto's code no longer matches, moto_server
exits with an error instead of running unpatched.
"""

import os
import sys


def _fail(msg):
    sys.stderr.write("sgrules moto duplicate: %s; cannot patch\n" % msg)
    sys.exit(3)


def _patch():
    try:
        import inspect

        from moto.ec2.models.security_groups import SecurityGroupRule
    except Exception as e:  # noqa: BLE001 any import failure means "cannot patch"
        _fail("cannot import moto.ec2.models.security_groups.SecurityGroupRule (%s)" % e)
    original = SecurityGroupRule.__dict__.get("__eq__")
    if original is None or not callable(original):
        _fail("moto's SecurityGroupRule has no __eq__")
    try:
        src = inspect.getsource(original)
    except Exception as e:  # noqa: BLE001
        _fail("cannot read moto's SecurityGroupRule.__eq__ (%s)" % e)
    # The comparison below is moto's, but for the referenced group; it
    # must compare what moto's does.
    for part in ("ip_protocol", '"CidrIp"', '"CidrIpv6"', "source_group", "prefix_list_id", "from_port", "to_port"):
        if part not in src:
            _fail("moto's SecurityGroupRule.__eq__ no longer compares %s" % part)

    def peer(group):
        return {k: v for k, v in (group or {}).items() if k != "Description"}

    def __eq__(self, other):
        if not isinstance(other, SecurityGroupRule):
            return NotImplemented
        if self.ip_protocol != other.ip_protocol:
            return False
        for k in ("CidrIp", "CidrIpv6"):
            if k in self.ip_range and self.ip_range.get(k) != other.ip_range.get(k):
                return False
        if peer(self.source_group) != peer(other.source_group):
            return False
        if self.prefix_list_id != other.prefix_list_id:
            return False
        if self.ip_protocol != "-1":
            if self.from_port != other.from_port or self.to_port != other.to_port:
                return False
        return True

    __eq__.__doc__ = original.__doc__
    SecurityGroupRule.__eq__ = __eq__

if os.path.basename(sys.argv[0] if sys.argv else "") == "moto_server":
    _patch()
    sys.stderr.write("sgrules moto duplicate: applied (a rule's description is not its identity)\n")
