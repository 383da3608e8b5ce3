"""Pull sources: Shoal reads a stream itself (DynamoDB Streams, or the table's Kinesis data
stream) instead of waiting for Firehose to push, so an install without a public endpoint can
replicate a table.

- lineage.py: which shards may be read now (a child only after its parents are finished).
- streams.py: the two streams behind one small interface (shards, iterators, pages).
- reader.py: one pass over a pipeline's shards; each page is landed through the one landing path
  and the shard's checkpoint is saved in the same transaction as its delivery.
"""
