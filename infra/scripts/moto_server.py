"""The AWS emulator (moto server) with DynamoDB requests serialized.

DynamoDB applies every request atomically: a conditional write checks and writes as one step, and
transactions are isolated. moto checks conditions and applies updates in separate steps without a
lock, so concurrent requests interleave: we observed two conditional updates both passing, an
UpdateItem that creates an item replacing a concurrently created one, and a cancelled transaction
restoring a snapshot of the whole table over concurrent commits. One lock around DynamoDB requests
gives each request the atomicity DynamoDB guarantees; the other services stay concurrent (SQS long
polls must not block everything). Usage: moto_server.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
dynamodb = threading.Lock()


def serialized(environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with dynamodb:
            # Produce the whole body inside the lock: the work happens while it is iterated.
            return list(app(environ, start_response))
    return app(environ, start_response)


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serialized, threaded=True)
