"""The AWS emulator (moto server) with DynamoDB requests serialized.

DynamoDB applies every request atomically: a conditional write checks and writes as one step, and
transactions are isolated. moto checks conditions and applies updates in separate steps without a
lock, so concurrent requests interleave: we observed two conditional updates both passing, an
UpdateItem that creates an item replacing a concurrently created one, and a cancelled transaction
restoring a snapshot of the whole table over concurrent commits. One lock around DynamoDB requests
gives each request the atomicity DynamoDB guarantees; the other services stay concurrent (SQS long
polls must not block everything). Usage: moto_server.py HOST PORT
"""

import copy
import sys
import threading
import types

import moto.dynamodb.models as dynamodb_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
dynamodb = threading.Lock()

# moto backs up a table for a transaction's rollback by deep-copying the whole table once per
# *item* of the transaction, before applying any: a 100-item transaction copies the table 100 times
# (this made a usage batch cost seconds on a table of a few thousand items). The copies are all of
# the same unchanged table, so one per table is the same backup. Within `transact_write_items` only,
# the module's `copy` is a shim whose deepcopy returns the first copy made of each object; that is
# safe because DynamoDB requests run one at a time (the lock below).
_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def _transact_write_items_one_backup_per_table(self, transact_items):
    made = {}

    def deepcopy_once(obj, *args, **kwargs):
        if id(obj) not in made:
            made[id(obj)] = (obj, copy.deepcopy(obj, *args, **kwargs))
        return made[id(obj)][1]

    shim = types.SimpleNamespace(deepcopy=deepcopy_once, copy=copy.copy)
    dynamodb_models.copy = shim
    try:
        return _transact_write_items(self, transact_items)
    finally:
        dynamodb_models.copy = copy


dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items_one_backup_per_table


def serialized(environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with dynamodb:
            # Produce the whole body inside the lock: the work happens while it is iterated.
            return list(app(environ, start_response))
    return app(environ, start_response)


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serialized, threaded=True)
