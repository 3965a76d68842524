"""sgbench's patches of three quadratic spots of moto 5.x (moto_server only).

1. DynamoDB TransactWriteItems snapshots a table for rollback with
   copy.deepcopy once per *item* of the transaction, before any write, so
   all the copies are identical: a 100-item transaction on a 5000-item
   table deep-copies 500,000 items. Patched to copy each table once per
   transaction: the same snapshot, the same rollback.

2. EC2 TaggedEC2Resource.get_tags (used to render and filter the tags of
   every security group rule) calls describe_tags(resource-id=[id]), which
   copies and scans the tags of every resource of the region: describing
   R tagged rules costs R x R. Patched to read the resource's own entry of
   the same tag store and build the same list (same keys, same order);
   ids holding glob characters (never the case for sg-/sgr- ids) still go
   through describe_tags.

3. DynamoDB Table.query (no index) walks and sorts every item of the table
   (all_items) and keeps those of the partition: a Query per group costs
   the whole table, so reading G groups costs G x N. Patched to walk the
   partition's own items, keeping those the key condition on the range
   key matches (then the same sort, the same condition again and the same
   filter): with one partition per target (the ledger's layout), a Query
   of one group's items (begins_with) no longer sorts the whole target.

Nothing else changes; API behaviour and responses are identical. sgbench
has internal/dev/motoproc import this module in the moto_server it starts
(after motoproc's own patch, which makes each DynamoDB request atomic); if
moto's code no longer matches, moto_server exits with an error instead of
running unpatched.
"""

import inspect
import os
import re
import sys
import textwrap


def _fail(msg):
    sys.stderr.write("sgbench motopatch: %s; cannot patch\n" % msg)
    sys.exit(3)


def _patch_transact():
    from moto.dynamodb import models

    cls = models.DynamoDBBackend
    src = textwrap.dedent(inspect.getsource(cls.transact_write_items))
    old = "if table_name and table_name in self.tables:"
    new = "if table_name and table_name in self.tables and table_name not in original_table_state:"
    if src.count(old) != 1:
        _fail("moto's DynamoDB transact_write_items changed")
    ns = {}
    exec(compile(src.replace(old, new), inspect.getsourcefile(cls), "exec"), models.__dict__, ns)
    cls.transact_write_items = ns["transact_write_items"]


def _patch_tags():
    from moto.ec2.models import core
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    cls = core.TaggedEC2Resource
    src = inspect.getsource(cls.get_tags)
    if 'describe_tags(filters={"resource-id": [self.id]})' not in src:
        _fail("moto's EC2 TaggedEC2Resource.get_tags changed")
    original = cls.get_tags

    def get_tags(self):
        rid = getattr(self, "id", None)
        store = getattr(getattr(self, "ec2_backend", None), "tags", None)
        if not rid or not isinstance(rid, str) or any(c in rid for c in "*?[") or not isinstance(store, dict):
            return original(self)
        tags = store.get(rid)
        if not tags:
            return []
        rtype = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
        return [{"resource_id": rid, "key": k, "value": v, "resource_type": rtype} for k, v in tags.items()]

    cls.get_tags = get_tags


def _patch_query():
    from moto.dynamodb.models import table

    cls = table.Table
    src = textwrap.dedent(inspect.getsource(cls.query))
    pat = re.compile(r"for item in self\.all_items\(\)(\s+)if isinstance\(item, Item\) and item\.hash_key == hash_key")
    if len(pat.findall(src)) != 1:
        _fail("moto's DynamoDB Table.query changed")
    src = pat.sub(r"for item in self._sgbench_partition(hash_key, range_comparison, range_objs)\1if isinstance(item, Item) and item.hash_key == hash_key", src)

    def partition(self, hash_key, range_comparison=None, range_objs=None):
        if hash_key is None or hash_key not in self.items:
            return []
        part = self.items[hash_key]
        if not self.range_key_attr:
            return [part]
        if range_comparison:
            # The key condition on the range key, applied before the sort
            # rather than after it: the same predicate (query applies it
            # again), so the same items, pages and ScannedCount.
            return [it for it in part.values() if it.range_key is not None and it.range_key.compare(range_comparison, range_objs)]
        return list(part.values())

    ns = {}
    exec(compile(src, inspect.getsourcefile(cls), "exec"), table.__dict__, ns)
    cls._sgbench_partition = partition
    cls.query = ns["query"]


if os.path.basename(sys.argv[0] if sys.argv else "") == "moto_server":
    _patch_transact()
    _patch_tags()
    _patch_query()
    sys.stderr.write("sgbench motopatch: applied (TransactWriteItems snapshot once per table; get_tags by resource id; Query by partition)\n")
