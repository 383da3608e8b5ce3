"""Moving landed deliveries into the warehouse. Runs only in `warehouse` workers.

Group commit: one INSERT loads a batch of landed deliveries (one when the pool is idle, many under
load). The batch's members are saved before the insert and never change, and the insert carries a
deduplication token derived from the batch, so a load repeated after a crash inserts the same rows
under the same token and ClickHouse writes nothing the second time. Quarantine rows are unique per
(delivery, position), and the counters move only when the deliveries move to `loaded`, all of a
batch in one transaction.

What a 200 promised is checked against the data: after the insert, each delivery's rows in the
pool are counted; with the records quarantined they must make up its record count. A record the
warehouse refuses (a content error, see pools/faults.py) is found by splitting the batch in
halves, then the delivery by positions, deterministically, so that a repeated load makes the same
inserts with the same tokens; it is quarantined with ClickHouse's reason and the rest is loaded.
Any other fault is retried with back-off for as long as it takes. Then the pool's Materialized
Views run over the batch, through the hooks the apps above register (hooks.py; views_mv/apply.py).

    claims.py   which deliveries make the next batch; giving them back; the sweep and the journal's
                recovery; re-queueing held deliveries
    batch.py    loading one claimed batch: the insert, isolating refused records, the accounting
    hooks.py    what the apps above run over each loaded batch (views_mv registers its views)
    run.py      load_pool: one loader per pool and process, batch after batch until none is left
"""

from pools.loader.batch import ONE_BLOCK, ensure_table, finish, forget_table, load_batch
from pools.loader.claims import claim, recover_journal, release, requeue, sweep
from pools.loader.run import LoadOutcome, load_pool

__all__ = [
    "ONE_BLOCK",
    "LoadOutcome",
    "claim",
    "ensure_table",
    "finish",
    "forget_table",
    "load_batch",
    "load_pool",
    "recover_journal",
    "release",
    "requeue",
    "sweep",
]
