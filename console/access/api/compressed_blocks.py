"""ClickHouse's own compressed framing, which clients ask for with `compress=1` over HTTP.

The Java client (clickhouse-java client-v2, and so Metabase's ClickHouse driver) sends `compress=1`
by default and reads the answer as ClickHouse's compressed blocks: each block is a 16-byte
CityHash128 (version 1.0.2, as ClickHouse uses it) of what follows, then a 9-byte header (method
0x82 for LZ4, the block's size with its header, the uncompressed size, both little-endian UInt32),
then the LZ4 block. The client checks the hash and refuses a block that does not match.

CityHash128 1.0.2 comes from clickhouse-cityhash (maintained for clickhouse-driver, which reads
the same framing); LZ4 from python-lz4, which clickhouse-connect already brings.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import lz4.block
from clickhouse_cityhash.cityhash import CityHash128

LZ4 = 0x82
HEADER = struct.Struct("<BII")
BLOCK_BYTES = 1024 * 1024  # ClickHouse's own blocks are at most 1 MiB uncompressed


def block(data: bytes) -> bytes:
    """One compressed block of `data`."""
    compressed = lz4.block.compress(data, store_size=False)
    body = HEADER.pack(LZ4, HEADER.size + len(compressed), len(data)) + compressed
    digest = CityHash128(body)
    return struct.pack("<QQ", digest & 0xFFFFFFFFFFFFFFFF, digest >> 64) + body


def frames(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks as compressed blocks of at most BLOCK_BYTES each."""
    for chunk in chunks:
        for start in range(0, len(chunk), BLOCK_BYTES):
            yield block(chunk[start : start + BLOCK_BYTES])


def read(data: bytes) -> bytes:
    """The bytes of a framed answer (what a client does; the tests use it), hashes checked."""
    out, offset = [], 0
    while offset < len(data):
        low, high = struct.unpack_from("<QQ", data, offset)
        method, size, raw = HEADER.unpack_from(data, offset + 16)
        body = data[offset + 16 : offset + 16 + size]
        if CityHash128(body) != (high << 64) | low:
            raise ValueError("checksum mismatch")
        if method != LZ4:
            raise ValueError(f"method {method:#x}")
        out.append(lz4.block.decompress(body[HEADER.size :], uncompressed_size=raw))
        offset += 16 + size
    return b"".join(out)
