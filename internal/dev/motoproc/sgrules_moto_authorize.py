"""sgrules' patch of moto_server: Authorize returns every rule it created.

EC2's AuthorizeSecurityGroupIngress and AuthorizeSecurityGroupEgress answer
with the rules they created (SecurityGroupRules: one per permission and
peer, with their ids). moto creates them all but answers with those of the
last IpPermission of the request only. sgrules reads the new rules' ids
from the answer when it holds every one (and describes the groups again
otherwise); this patch makes moto answer as EC2 does, after moto's own
handling of each permission.

internal/dev/motoproc loads it into every moto_server it starts, like
sgrules_moto_atomic.py; if moto's code no longer matches, moto_server
exits with an error instead of running unpatched.
"""

import os
import sys


def _fail(msg):
    sys.stderr.write("sgrules moto authorize: %s; cannot patch\n" % msg)
    sys.exit(3)


def _patch():
    try:
        from moto.core.responses import ActionResult
        from moto.ec2.responses.security_groups import SecurityGroups
    except Exception as e:  # noqa: BLE001 any import failure means "cannot patch"
        _fail("cannot import moto's SecurityGroups responses (%s)" % e)
    for name in ("authorize_security_group_ingress", "authorize_security_group_egress"):
        if not callable(SecurityGroups.__dict__.get(name)):
            _fail("moto's SecurityGroups has no %s" % name)
        if not hasattr(SecurityGroups, "_process_rules_from_querystring"):
            _fail("moto's SecurityGroups has no _process_rules_from_querystring")

    def make(name):
        def authorize(self):
            self.error_on_dryrun()
            backend = getattr(self.ec2_backend, name)
            created = []
            for kwargs in self._process_rules_from_querystring():
                rules, _ = backend(**kwargs)
                created.extend(rules)
            return ActionResult({"Return": True, "SecurityGroupRules": created})

        authorize.__name__ = name
        authorize.__doc__ = SecurityGroups.__dict__[name].__doc__
        return authorize

    for name in ("authorize_security_group_ingress", "authorize_security_group_egress"):
        setattr(SecurityGroups, name, make(name))


if os.path.basename(sys.argv[0] if sys.argv else "") == "moto_server":
    _patch()
    sys.stderr.write("sgrules moto authorize: applied (Authorize returns every rule it created)\n")
