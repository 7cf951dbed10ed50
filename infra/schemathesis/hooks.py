"""schemathesis hooks for `make test` (loaded through SCHEMATHESIS_HOOKS).

Three rules of the contract are beyond JSON Schema, and only those are bridged here. Besides,
the hooks hold the credentials: a real license key of the contract stack (issued by test.sh,
NECTAR_CONTRACT_LICENSE_KEY) stands in for every generated key given as a string, so the client
routes are exercised past authentication. (Headers themselves come from schemathesis.toml, which
schemathesis knows to be credentials and takes away in its authentication checks.)

The server refuses some timestamps for where they fall relative to *now*, which JSON Schema cannot
say: a usage event's `occurredAt` must lie within the last 35 days (and at most 5 minutes ahead),
and a license's `expiresAt` must be in the future and at most 3650 days ahead. The spec documents
both windows; schemathesis can only draw a date-time anywhere in the calendar. This hook moves each
well-formed timestamp of exactly those fields into its window, so a schema-valid case is a valid
request and every other part of it is still generated and checked. A timestamp that is not
well-formed is left alone: refusing it is part of the contract being tested.

The other: the `eventId`s of one usage request must differ (`DUPLICATE_EVENT_ID`); `uniqueItems`
can only compare whole events. Repeated well-formed ids get a distinct suffix (still matching
their pattern), so a batch is valid exactly when its schema says so. And an event's `metadata`
object is at most 1 KiB as serialized JSON, a size no keyword measures: members are dropped from
the end of a larger one until it fits.

Last, the fleet listings' `cursor` is opaque: only a `next` the server handed out is one, which no
pattern can say. A well-formed (base64url) generated cursor is dropped, so the rest of the query is
still tested; a malformed one is kept, and must get `400 INVALID_CURSOR`.
"""

import json
import os
import re
from datetime import datetime, timedelta, timezone

import schemathesis

# (method, path template) → how to move each field of the body that carries a time window.
_WINDOWS = {
    ("POST", "/api/usage"): "events",
    ("POST", "/api/admin/licenses"): "expiresAt",
    ("POST", "/api/admin/licenses/{licenseId}/renew"): "expiresAt",
}


_EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _well_formed(value):
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _serialized_size(value):
    # As the server measures it (serde_json: compact, UTF-8, non-ASCII unescaped).
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def _stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@schemathesis.hook
def before_call(context, case, kwargs):
    # Just before sending: every phase's cases pass here (the generation hooks miss some).
    _move_into_window(case)
    _credentials(case)
    _opaque_cursor(case)


_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,2400}$")


def _opaque_cursor(case):
    if not case.operation.path.startswith("/api/admin/fleet/"):
        return
    query = case.query
    if isinstance(query, dict) and isinstance(query.get("cursor"), str) and _CURSOR.match(query["cursor"]):
        del query["cursor"]


def _credentials(case):
    key = os.environ.get("NECTAR_CONTRACT_LICENSE_KEY")
    if not key:
        return
    if isinstance(case.body, dict) and isinstance(case.body.get("licenseKey"), str):
        case.body["licenseKey"] = key
    # Touch the headers only to swap a key: schemathesis tracks what it took away from them.
    value = (case.headers or {}).get("Authorization")
    if isinstance(value, str) and value.startswith("License "):
        case.headers["Authorization"] = f"License {key}"


def _move_into_window(case):
    field = _WINDOWS.get((case.method.upper(), case.operation.path))
    body = case.body
    if field is None or not isinstance(body, dict):
        return
    now = datetime.now(timezone.utc)
    if field == "events" and isinstance(body.get("events"), list):
        seen = set()
        for index, event in enumerate(body["events"]):
            if not isinstance(event, dict):
                continue
            if _well_formed(event.get("occurredAt")):
                event["occurredAt"] = _stamp(now - timedelta(minutes=1))
            metadata = event.get("metadata")
            if isinstance(metadata, dict):
                while metadata and _serialized_size(metadata) > 1024:
                    metadata.popitem()
            event_id = event.get("eventId")
            if isinstance(event_id, str) and _EVENT_ID.match(event_id):
                if event_id in seen:
                    event_id = f"{event_id[:120]}.{index}"
                    event["eventId"] = event_id
                seen.add(event_id)
    elif field == "expiresAt" and _well_formed(body.get("expiresAt")):
        body["expiresAt"] = _stamp(now + timedelta(days=30))
