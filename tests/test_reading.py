"""The one reading loop (pools/reading.py): a position is saved only once its batch is durable, in
the same transaction when the landing is a database row, after it otherwise; a crash at any point
re-reads and stores once. And every reader in pools/ lands through it."""

from __future__ import annotations

import pathlib
import re

import pytest

from pools.ingest.records import encode_record as encode
from pools.models import Delivery
from pools.reading import Batch, into_pool, land_batches
from tests.helpers.firehose import change_record

pytestmark = pytest.mark.django_db(transaction=True)


def batches(n: int, per: int = 3, *, start: int = 0) -> list[Batch]:
    return [
        Batch(f"b{i}", [encode(change_record(f"o{i}-{j}")) for j in range(per)], position=i)
        for i in range(start, n)
    ]


class Kept:
    """A position kept in a Python list (saved in order, as a checkpoint row would be)."""

    def __init__(self, fail_at: int | None = None):
        self.saved: list[int] = []
        self.fail_at = fail_at

    def save(self, batch: Batch, stored: bool) -> None:
        if batch.position == self.fail_at:
            raise RuntimeError("killed while saving the position")
        self.saved.append(batch.position)


def test_each_batch_lands_once_and_its_position_follows(pool):
    kept = Kept()
    tally = land_batches(batches(4), land=into_pool(pool), save=kept.save)
    assert (tally.batches, tally.stored, tally.records) == (4, 4, 12)
    assert kept.saved == [0, 1, 2, 3]
    again = land_batches(batches(4), land=into_pool(pool), save=Kept().save)  # read again: stored before
    assert (again.stored, Delivery.objects.filter(pool=pool).count()) == (0, 4)


def test_a_crash_saving_the_position_takes_the_landing_back_with_it(pool):
    kept = Kept(fail_at=2)
    with pytest.raises(RuntimeError):
        land_batches(batches(4), land=into_pool(pool), save=kept.save)
    # Batch 2 was landed, then its position could not be saved: neither stays.
    assert sorted(Delivery.objects.filter(pool=pool).values_list("request_id", flat=True)) == ["b0", "b1"]
    assert kept.saved == [0, 1]
    # The next run reads from the saved position: batch 2 lands now, nothing twice.
    kept.fail_at = None
    land_batches(batches(4, start=2), land=into_pool(pool), save=kept.save)
    assert Delivery.objects.filter(pool=pool).count() == 4 and kept.saved == [0, 1, 2, 3]


def test_apart_the_position_moves_only_after_the_landing_and_a_failed_landing_keeps_it(pool):
    landed: list[str] = []
    kept = Kept()

    def land(batch: Batch) -> bool:
        if batch.position == 1:
            raise ConnectionError("the endpoint did not answer")
        landed.append(batch.request_id)
        return True

    with pytest.raises(ConnectionError):
        land_batches(batches(3), land=land, save=kept.save, together=False)
    assert (landed, kept.saved) == (["b0"], [0])


def test_a_batch_without_records_only_moves_the_position_and_never_waits_for_room(pool):
    asked: list[str] = []
    kept = Kept()
    empty = Batch("empty", [], position=7)
    tally = land_batches(
        [empty, *batches(1)], land=into_pool(pool), save=kept.save, room=lambda: asked.append("room")
    )
    assert kept.saved == [7, 0] and asked == ["room"]
    assert (tally.stored, Delivery.objects.filter(pool=pool).count()) == (1, 1)


def test_stop_is_asked_before_each_batch(pool):
    kept = Kept()
    tally = land_batches(batches(5), land=into_pool(pool), save=kept.save, stop=lambda: len(kept.saved) >= 2)
    assert tally.batches == 2 and kept.saved == [0, 1]


def test_every_reader_lands_through_the_one_loop():
    """Shoal's readers (the snapshot, the export, the S3 replay, the quarantine replay, the relay and
    the pull reader) land only through pools/reading.py: nothing else in the apps calls
    land_records, and each of them calls land_batches."""
    root = pathlib.Path(__file__).resolve().parent.parent
    callers = {
        str(p.relative_to(root))
        for app in ("pools", "console", "views_mv")
        for p in (root / app).rglob("*.py")
        if re.search(r"\bland_records\(", p.read_text()) and p.name != "landing.py"
    }
    assert callers == {"pools/reading.py"}
    for reader in (
        "pools/aws/snapshot.py",
        "pools/aws/export_snapshot.py",
        "pools/aws/monitoring.py",
        "pools/quarantine.py",
        "pools/aws/sandbox.py",
        "pools/pull/reader.py",
    ):
        assert "land_batches(" in (root / reader).read_text(), reader
