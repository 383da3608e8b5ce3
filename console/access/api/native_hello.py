"""clickhouse-go's first question over HTTP, answered in the Native layout it reads then.

clickhouse-go (Grafana's driver) sends `client_protocol_version` with every request and first
asks `SELECT displayName(), version(), revision(), timezone()`. A ClickHouse server writes Native
at the revision a client names: a block-info header, and after each column's type a byte saying
whether it has a custom serialization. chDB writes Native at revision 0 (neither), whatever the
client names. So this one answer is written here at the client's layout, and it reports revision
0: clickhouse-go then reads every later answer as the plain Native chDB writes.
"""

from __future__ import annotations

import re
import struct

QUESTION = re.compile(
    r"^\s*SELECT\s+displayName\(\),\s*version\(\),\s*revision\(\),\s*timezone\(\)\s*;?\s*$", re.I
)


def asked(text: str, fmt: str, params: dict[str, str]) -> bool:
    return fmt == "Native" and bool(params.get("client_protocol_version")) and bool(QUESTION.match(text))


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def string(value: str) -> bytes:
    data = value.encode()
    return uvarint(len(data)) + data


def block(version: str, timezone: str) -> bytes:
    """One row: Shoal's name, the engine's version, revision 0, the time zone."""
    # Block info: field 1 (is_overflows) = 0, field 2 (bucket_num) = -1, then the end marker 0.
    info = uvarint(1) + b"\x00" + uvarint(2) + struct.pack("<i", -1) + uvarint(0)
    columns = [
        ("displayName()", "String", string("shoal")),
        ("version()", "String", string(version)),
        ("revision()", "UInt32", struct.pack("<I", 0)),
        ("timezone()", "String", string(timezone)),
    ]
    # Each column: name, type, "no custom serialization" (0), then its one value.
    body = b"".join(string(name) + string(kind) + b"\x00" + data for name, kind, data in columns)
    return info + uvarint(len(columns)) + uvarint(1) + body
