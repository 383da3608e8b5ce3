"""Ingest: how a Firehose delivery becomes durable in a Data Pool.

    endpoint.py   the HTTP view Firehose posts to (authentication, limits, Firehose's JSON replies)
    envelope.py   parsing and validation of the request body, free of Django and the database
    landing.py    land(): the one durable, idempotent path into a pool (the endpoint's; Shoal's own
                  readers reach it through pools/reading.py), and the backpressure checks
    journal.py    where a body waits between the 200 and the warehouse (fsync'ed files or the database)
    records.py    the shapes on the wire: a Firehose request body, a DynamoDB change record, an
                  item's size (standard library only, shared by the sender, samples, snapshot,
                  sandbox relay, replays, tests and benchmarks)

Loading into the warehouse happens afterwards, in pools/loader/.
"""
