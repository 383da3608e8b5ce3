"""gunicorn settings of Shoal's web process (`-c python:console.gunicorn_conf`).

Firehose needs its JSON reply on every path, including the errors gunicorn answers itself before
Django sees the request (a request line or header over its limits, a malformed request): those
pages are JSON here instead of gunicorn's HTML. The limits are raised so that an unusual but
harmless header (a long request id) reaches Django, which answers it precisely.

Why a patch: gunicorn has no setting for the pages it writes itself; every worker class calls
`gunicorn.util.write_error` (looked up on the module at call time, gunicorn 23 to 27 alike), so
replacing that one function is the narrowest hook. A worker subclass would have to copy
`handle_error` (status mapping and access logging) to change only its last line.
tests/test_ingest_faults.py fails if an upgrade stops calling it.
"""

from __future__ import annotations

import json
import time

from gunicorn import util

# Largest header field gunicorn reads (its default is 8 KiB); beyond it, a 431 in JSON below.
limit_request_field_size = 128 * 1024
limit_request_line = 8190  # gunicorn's maximum
# Seconds an idle keep-alive connection stays open (gunicorn's default is 2). A client told to
# retry after a 429's Retry-After reuses its connection after waiting: at 2 s, gunicorn had closed
# it by then and the client's next request met a reset (seen in bench/isolation.py). Idle
# connections wait in gthread's poller, not on a thread, so a longer wait costs no capacity.
keepalive = 65


def _json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps(
        {
            "requestId": "",
            "timestamp": int(time.time() * 1000),
            "errorMessage": f"{reason}: {mesg}"[:8192] if mesg else reason,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


# gunicorn's workers call util.write_error for every error page they write themselves.
util.write_error = _json_error
