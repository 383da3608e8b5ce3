"""Reading a request's body, and discarding what an early answer left unread (the Firehose
endpoint and the ClickHouse interface, whose clients may send their bodies chunked).

Django reads a body by its Content-Length; a body sent chunked (no Content-Length) reads as empty
through `request.read()`, so it is read from the server's input stream, which decodes the chunks
(gunicorn's does). Either way at most `limit + 1` bytes are read, so the caller can tell a body
over the limit.

An answer sent before the body is read (a 503 for Firehose's back-pressure, a 401, a 404) reaches a sender
that writes the whole body before it reads as a broken pipe when the server closes the connection:
`drain` reads and drops the rest, up to the limit, before the answer goes out.
"""

from __future__ import annotations

from django.http import HttpRequest

CHUNK = 1 << 16


def _chunked(request: HttpRequest) -> bool:
    return (
        not request.META.get("CONTENT_LENGTH")
        and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def read(request: HttpRequest, limit: int) -> bytes:
    """The body, at most limit + 1 bytes."""
    if not _chunked(request):
        return request.read(limit + 1)
    stream, parts, size = request.META["wsgi.input"], [], 0
    while size <= limit:
        part = stream.read(min(CHUNK, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def drain(request: HttpRequest, limit: int) -> bool:
    """Read and drop what is left of the body, up to `limit` bytes; False if more was left (the
    server then closes the connection: a body over the limit is not Firehose's)."""
    stream = request.META.get("wsgi.input") if _chunked(request) else request
    if stream is None:
        return True
    dropped = 0
    while dropped <= limit:
        try:
            part = stream.read(CHUNK)
        except Exception:  # the sender went away: nothing to answer
            return False
        if not part:
            return True
        dropped += len(part)
    return False
