"""Shard lineage, as AWS's Kinesis Client Library follows it: after a split or merge, the records
of a key are in the parent until it closes and in the children after, so a child is read only
once every parent it has is finished (or has aged out of the stream: no longer listed)."""

from __future__ import annotations


def readable(shards: list[dict], finished: set[str]) -> list[str]:
    """The ids of the shards to read now, in the stream's order."""
    listed = {s["ShardId"] for s in shards}
    out = []
    for shard in shards:
        if shard["ShardId"] in finished:
            continue
        parents = [shard.get("ParentShardId"), shard.get("AdjacentParentShardId")]
        if all(p is None or p in finished or p not in listed for p in parents):
            out.append(shard["ShardId"])
    return out
