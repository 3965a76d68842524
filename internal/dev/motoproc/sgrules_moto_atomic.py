"""sgrules' patch of moto_server: every DynamoDB request runs alone.

DynamoDB runs each request atomically and serialisably: a conditional
PutItem/UpdateItem/DeleteItem checks and writes in one step, and a
TransactWriteItems either applies every item or none, with no other write
in between. moto_server serves requests on threads and guards nothing:
transact_write_items deep-copies each table it touches, then checks and
writes item by item, and on a failed condition puts the copies back. Two
concurrent transactions can both pass their conditions (two holders of
one lease), and a failed transaction's rollback can undo a write that
committed meanwhile (a released lease comes back). Tests that take leases
concurrently then see moto's race, not sgrules'.

This patch wraps DynamoHandler.call_action, which serves every DynamoDB
API call, in one lock, so each DynamoDB request runs alone: the guarantee
DynamoDB gives. Other services are untouched.

It also gives TransactWriteItems DynamoDB's idempotency: a request
carrying a ClientRequestToken already served successfully (the SDK fills
one in and sends it again when it retries, e.g. after a response lost to a
slow or reset connection on a loaded machine) returns the first response
instead of running again, where moto would check the conditions a second
time and fail them against its own first write.

internal/dev/motoproc puts this module on the PYTHONPATH of every moto_server
it starts (through a generated sitecustomize.py) and checks the line this
module writes to stderr; if moto's code no longer matches, moto_server
exits with an error instead of running unpatched.
"""

import collections
import json
import os
import sys
import threading


def _fail(msg):
    sys.stderr.write("sgrules moto atomic: %s; cannot patch\n" % msg)
    sys.exit(3)


def _patch():
    try:
        from moto.dynamodb.responses import DynamoHandler
    except Exception as e:  # noqa: BLE001 any import failure means "cannot patch"
        _fail("cannot import moto.dynamodb.responses.DynamoHandler (%s)" % e)
    original = DynamoHandler.__dict__.get("call_action")
    if original is None or not callable(original):
        _fail("moto's DynamoHandler has no call_action of its own")
    lock = threading.RLock()
    # ClientRequestToken -> (request body, response) of the transactions
    # served, the most recent 10,000 (DynamoDB keeps a token 10 minutes).
    served = collections.OrderedDict()

    def call_action(self):
        with lock:
            # The raw request body (call_action replaces self.body with
            # the parsed parameters).
            token, body = None, self.body
            if self._get_action() == "TransactWriteItems":
                try:
                    token = json.loads(body or "{}").get("ClientRequestToken")
                except (ValueError, TypeError, AttributeError):
                    token = None
                if token and token in served and served[token][0] == body:
                    return served[token][1]
            response = original(self)
            if token and response[0] == 200:
                served[token] = (body, response)
                while len(served) > 10000:
                    served.popitem(last=False)
            return response

    call_action.__doc__ = original.__doc__
    DynamoHandler.call_action = call_action


if os.path.basename(sys.argv[0] if sys.argv else "") == "moto_server":
    _patch()
    sys.stderr.write("sgrules moto atomic: applied (one DynamoDB request at a time, idempotent transactions)\n")
