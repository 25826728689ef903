"""Schemathesis hooks for scripts/test.d/60-schemathesis.sh.

Signs every generated `POST /webhooks/github` body with the run's webhook secret
(STUDY_MODE_ST_WEBHOOK_SECRET), as GitHub does, so fuzzed deliveries reach the event handling
instead of all stopping at the signature check. A request generated without the header (the
`missing_required_header` check) is left unsigned.
"""

import hashlib
import hmac
import json
import os

import schemathesis

SECRET = os.environ["STUDY_MODE_ST_WEBHOOK_SECRET"].encode()
HEADER = "X-Hub-Signature-256"


def wire_body(body) -> bytes:
    """The bytes the requests transport sends for a JSON body (`requests`' `json=`)."""
    if isinstance(body, bytes):
        return body
    if body is None:
        return b"null"  # schemathesis sends `null` explicitly for a None body
    if not isinstance(body, (dict, list, str, int, float, bool)):
        return b""  # no body at all (schemathesis' NOT_SET)
    return json.dumps(body, allow_nan=False).encode("utf-8")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path != "/webhooks/github" or not case.headers or HEADER not in case.headers:
        return
    digest = hmac.new(SECRET, wire_body(case.body), hashlib.sha256).hexdigest()
    case.headers[HEADER] = f"sha256={digest}"
