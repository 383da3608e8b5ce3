"""The Firehose HTTP endpoint of a Data Pool: the thin view in front of envelope and landing.

It checks who is sending (the pool's access key or Basic credentials), reads and validates the
body (envelope.py), refuses when the pool or the disk cannot take more, and lands the delivery
(landing.py). A 200 means the batch is durable in Django's database; any other status makes Firehose send it
again. Loading into the warehouse happens afterwards, in a `warehouse` worker.

Every path answers Firehose's JSON reply, faults included: 400 when the request is at fault (it
will not get better by itself), 503 when Shoal is (a full disk, a database that refuses the write,
any unexpected exception), so that Firehose keeps the data and retries.
"""

from __future__ import annotations

import errno
import json
import logging
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.views.decorators.csrf import csrf_exempt

from console import request_body
from console.ack_latency import ack_latency
from pools.ingest import auth, envelope, inflight, journal, pacing
from pools.ingest.landing import disk_short, land
from pools.models import DataPool

log = logging.getLogger(__name__)


def firehose_response(request_id: str, status: int = 200, error: str = "") -> HttpResponse:
    doc: dict = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
    if error:
        doc["errorMessage"] = error[:8192]
    payload = json.dumps(doc).encode()
    response = HttpResponse(payload, status=status, content_type="application/json")
    response["Content-Length"] = str(len(payload))
    return response


RETRY_LATER = "Shoal cannot store data right now, please retry"
INGEST_PREFIX = "/ingest/"


def fault_response(request_id: str, exc: BaseException) -> HttpResponse:
    """The Firehose reply for an exception raised while handling a delivery."""
    if isinstance(exc, RecursionError):
        return firehose_response(request_id, 400, "body is not a Firehose request: it nests too deeply")
    if isinstance(exc, UnreadablePostError):  # the client went away mid-body
        return firehose_response(request_id, 400, "the request body could not be read in full")
    if isinstance(exc, (BadRequest, SuspiciousOperation)):
        return firehose_response(request_id, 400, f"bad request: {exc}")
    if isinstance(exc, DatabaseError):
        log.warning("ingest: database unavailable: %s", exc)
        return firehose_response(request_id, 503, RETRY_LATER)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        log.error("ingest: the data folder's disk is full: %s", exc)
        return firehose_response(request_id, 503, "Shoal's disk is full; please retry later")
    if isinstance(exc, OSError):
        log.error("ingest: cannot write the delivery: %s", exc)
        return firehose_response(request_id, 503, RETRY_LATER)
    log.exception("ingest: unexpected error; answered 503 so that Firehose retries")
    return firehose_response(request_id, 503, RETRY_LATER)


@login_not_required  # Firehose signs in with the pool's access key or Basic credentials
@csrf_exempt
def firehose_endpoint(request: HttpRequest, public_id: str) -> HttpResponse:
    header_id = request.headers.get("X-Amz-Firehose-Request-Id", "")
    try:
        return _answer(request, public_id, header_id)
    except Exception as exc:  # every path answers Firehose's JSON, faults included
        return fault_response(header_id[:255], exc)


class FirehoseRepliesMiddleware:
    """A last net under the ingest URL: a reply that Django or another middleware produced there
    (a bad Host header, an exception outside the view) is turned into Firehose's JSON, 4xx kept as
    the request's fault and anything else answered 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(INGEST_PREFIX):
            return self.get_response(request)
        started = time.perf_counter()
        response = self._json(request, self.get_response(request))
        if request.method == "POST":
            # An answer given before the body was read (back-pressure, a refusal) still reaches
            # a sender that writes its whole body first (console/request_body.py).
            request_body.drain(request, settings.INGEST_MAX_BODY_BYTES)
            ack_latency.observe(response.status_code, time.perf_counter() - started)
        return response

    @staticmethod
    def _json(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        header_id = request.headers.get("X-Amz-Firehose-Request-Id", "")[:255]
        if 400 <= response.status_code < 500:
            reason = getattr(response, "reason_phrase", "") or "bad request"
            return firehose_response(header_id, response.status_code, f"the request was refused: {reason}")
        return firehose_response(header_id, 503, RETRY_LATER)


def _answer(request: HttpRequest, public_id: str, header_id: str) -> HttpResponse:
    if len(header_id) > 255:
        return firehose_response(
            header_id[:255], 400, "X-Amz-Firehose-Request-Id is longer than 255 characters"
        )
    if request.method != "POST":
        response = firehose_response(header_id, 405, "use POST")
        response["Allow"] = "POST"
        return response
    try:
        pool = DataPool.objects.get(public_id=public_id)
    except DataPool.DoesNotExist:
        return firehose_response(header_id, 404, "no Data Pool at this endpoint")
    if not pool.receives_deliveries:
        return firehose_response(header_id, 404, "this Data Pool is fed by a Materialized View")
    refused = auth.refusal(pool, request)  # pools/ingest/auth.py: key, Basic, throttling
    if refused:
        return firehose_response(header_id, refused.status, refused.message)
    if pool.status == DataPool.Status.DELETING:
        return firehose_response(header_id, 503, "this Data Pool is being deleted")
    busy = pacing.room(pool)  # waits a moment for the loader when it is only passing
    if busy:
        return firehose_response(header_id, 503, busy.reason)

    limit = settings.INGEST_MAX_BODY_BYTES
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > limit:
        return firehose_response(header_id, 400, f"body exceeds {limit} bytes")
    with inflight.permit(int(length) if length.isdigit() else None) as admitted:
        if not admitted:
            return firehose_response(header_id, 503, inflight.BUSY)
        return _receive(request, pool, header_id, limit)


def _receive(request: HttpRequest, pool: DataPool, header_id: str, limit: int) -> HttpResponse:
    raw = request_body.read(request, limit)
    encoding = request.headers.get("Content-Encoding", "")
    try:
        if len(raw) > limit:
            raise envelope.EnvelopeError(400, f"body exceeds {limit} bytes")
        data = envelope.decompress(raw, encoding, max_bytes=limit)
        env = envelope.parse(data, header_request_id=header_id)
    except envelope.EnvelopeError as exc:
        return firehose_response(header_id, exc.status, exc.message)
    short = disk_short(len(data) if journal.uses_files() else len(raw))
    if short:
        return firehose_response(env.request_id, 503, short)

    try:
        stored = land(
            pool, env, raw, encoding, request.headers.get("X-Amz-Firehose-Source-Arn", ""), data=data
        )
    except Exception as exc:
        log.warning("ingest: could not land %s for pool %s", env.request_id, pool.name)
        return fault_response(env.request_id, exc)
    if stored:
        log.debug("ingest: landed %s (%d records) for %s", env.request_id, env.record_count, pool.name)
    return firehose_response(env.request_id)
