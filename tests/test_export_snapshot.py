"""Initial load from DynamoDB's export to S3 (issue 23), against a real moto server and warehouse
worker. moto's ExportTableToPointInTime does not write AWS's documented layout, so these two calls
only (export_snapshot.exporter_for) are replaced by one that writes the layout
into moto's S3 (pools/aws/export_layout.write_export); point-in-time recovery, S3 and the whole
load are the real code path (docs/aws.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from console import warehouse_client
from console.tasks import run_sql
from pools import reading
from pools.aws import export_layout, export_snapshot
from pools.aws import snapshot as snapshots
from pools.aws.models import Snapshot
from pools.ingest import records
from pools.models import Delivery
from tests.helpers.aws import make_pipeline
from tests.helpers.waiting import wait_for

TABLE = "orders_export"
BUCKET = "shoal-exports"
EXPORT_TIME = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
EXPORT_MS = int(EXPORT_TIME.timestamp() * 1000)


def item(n: int, value: int | None = None) -> dict:
    return {
        "pk": {"S": f"order#{n:07d}"},
        "n": {"N": str(n if value is None else value)},
        "kind": {"S": "taco"},
    }


def partitions(count: int, files: int, empty_every: int = 8) -> list[list[dict]]:
    """`count` items spread over `files` files, every `empty_every`-th file empty."""
    out: list[list[dict]] = [[] for _ in range(files)]
    full = [i for i in range(files) if i % empty_every != empty_every - 1]
    for n in range(count):
        out[full[n % len(full)]].append(item(n))
    return out


@pytest.fixture
def table(aws):
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    aws.client("s3").create_bucket(Bucket=BUCKET)
    return ddb


@pytest.fixture
def stub_export(aws, monkeypatch):
    """The export AWS would write, in AWS's layout: `stub_export(parts)` sets what it holds."""
    state: dict = {"parts": [], "asked": 0, "described": 0}
    monkeypatch.setattr(export_snapshot, "POLL_SECONDS", 0.01)

    class Stub:
        def start(self, *, table, table_arn, bucket, prefix, token):
            state["asked"] += 1
            arn = f"{table_arn}/export/{uuid.uuid4().hex[:20]}"
            base = export_layout.write_export(
                aws.client("s3"),
                bucket=bucket,
                prefix=prefix,
                export_arn=arn,
                table_arn=table_arn,
                export_time=EXPORT_TIME,
                partitions=state["parts"],
            )
            state.update(arn=arn, bucket=bucket, prefix=prefix, base=base)
            return arn

        def describe(self, *, export_arn, bucket, prefix):
            state["described"] += 1
            status = "IN_PROGRESS" if state["described"] == 1 else "COMPLETED"  # AWS takes a while
            return {
                "ExportArn": export_arn,
                "ExportStatus": status,
                "S3Bucket": state["bucket"],
                "S3Prefix": state["prefix"],
                "ExportManifest": f"{state['base']}/manifest-summary.json",
            }

    monkeypatch.setattr(export_snapshot, "exporter_for", lambda snapshot: Stub())

    def configure(parts: list[list[dict]]):
        state["parts"] = parts
        return state

    return configure


def export_of(pipeline, **kwargs) -> Snapshot:
    return snapshots.start(pipeline, method="export", export_bucket=BUCKET, **kwargs)


def counts(pool) -> list:
    wait_for(
        lambda: not Delivery.objects.filter(pool=pool).exclude(status="loaded").exists(),
        timeout=120,
        message="every delivery loaded",
    )
    result = warehouse_client.call(
        run_sql,
        f"SELECT count(), uniqExact(event_id), min(approximate_creation_date_time), "
        f"max(approximate_creation_date_time) FROM {pool.name}",
    )
    assert "error" not in result, result
    return result["rows"][0]


def test_an_export_needs_point_in_time_recovery_and_can_turn_it_on(pool, aws, table, stub_export):
    stub_export(partitions(10, 4))
    pipeline = make_pipeline(pool, aws, TABLE)
    refused = snapshots.run_snapshot(export_of(pipeline).pk)
    assert refused.status == Snapshot.Status.FAILED and "Point-in-time recovery is off" in refused.error
    assert not export_snapshot.pitr_enabled(table, TABLE)

    done = snapshots.run_snapshot(export_of(pipeline, enable_pitr=True).pk)
    assert done.status == Snapshot.Status.DONE, done.error
    assert export_snapshot.pitr_enabled(table, TABLE)


def test_every_listed_file_is_loaded_once_at_the_export_time(pool, aws, table, stub_export, warehouse_worker):
    parts = stub_export(partitions(500, 16))["parts"]
    assert sum(1 for p in parts if not p) == 2  # empty partitions have empty files
    pipeline = make_pipeline(pool, aws, TABLE)
    done = snapshots.run_snapshot(export_of(pipeline, enable_pitr=True).pk)
    assert done.status == Snapshot.Status.DONE, done.error
    assert done.items_done == 500 and done.export_files_total == 16 and done.export_status == "COMPLETED"
    assert done.export_time == EXPORT_TIME
    # Every item once, as an INSERT versioned at the export's time.
    assert counts(pool) == [500, 500, EXPORT_MS, EXPORT_MS]
    # Run again (a retried task): the export is not asked for twice and nothing is stored twice.
    assert snapshots.run_snapshot(done.pk).items_done == 500
    assert counts(pool)[0] == 500


def test_a_run_stopped_half_way_resumes_at_the_files_not_loaded(pool, aws, table, stub_export, monkeypatch):
    state = stub_export(partitions(300, 12))
    pipeline = make_pipeline(pool, aws, TABLE)
    snapshot = export_of(pipeline, enable_pitr=True)
    real_land = reading.land_records
    landed: list[str] = []

    def dies_after_seven(pool_, request_id, chunk, **kw):
        if len(landed) == 7:
            raise RuntimeError("the worker was killed")
        landed.append(request_id)
        return real_land(pool_, request_id, chunk, **kw)

    monkeypatch.setattr(reading, "land_records", dies_after_seven)
    failed = snapshots.run_snapshot(snapshot.pk)
    assert failed.status == Snapshot.Status.FAILED and 0 < failed.items_done < 300

    monkeypatch.setattr(reading, "land_records", real_land)
    done = snapshots.run_snapshot(snapshot.pk)
    assert done.status == Snapshot.Status.DONE and done.items_done == 300
    assert state["asked"] == 1  # the same export, resumed
    stored = Delivery.objects.filter(pool=pool)
    assert sum(d.record_count for d in stored) == 300  # no file's records stored twice


def test_a_file_that_does_not_match_its_manifest_fails_clearly(pool, aws, table, stub_export):
    state = stub_export(partitions(40, 4))
    pipeline = make_pipeline(pool, aws, TABLE)
    snapshot = export_of(pipeline, enable_pitr=True)
    original = export_layout.write_export

    def tampered(s3, **kwargs):
        base = original(s3, **kwargs)
        key = next(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=base + "/data/")["Contents"])
        s3.put_object(Bucket=BUCKET, Key=key, Body=export_layout.data_file([item(999)]))
        return base

    import pools.aws.export_layout as layout_module

    layout_module.write_export = tampered
    try:
        failed = snapshots.run_snapshot(snapshot.pk)
    finally:
        layout_module.write_export = original
    assert failed.status == Snapshot.Status.FAILED
    assert "MD5 is not the manifest's md5Checksum" in failed.error, failed.error
    assert state["asked"] == 1


def test_the_card_offers_both_methods_with_the_table_s_size(pool, aws, table, admin_client):
    from django.urls import reverse

    pipeline = make_pipeline(pool, aws, TABLE)
    page = admin_client.get(reverse("aws:snapshot", args=[pipeline.pk])).content.decode()
    assert "Export to S3" in page and "Point-in-time recovery" in page and 'id="snapshot-plan"' in page
    assert "DynamoDB JSON" in page


def _stream_change(n: int, event: str, value: int, created: int) -> dict:
    keys = {"pk": {"S": f"order#{n:07d}"}}
    image = {**keys, "n": {"N": str(value)}, "kind": {"S": "taco"}}
    return records.change_record(
        event,
        keys=keys,
        new_image=image if event != "REMOVE" else None,
        old_image=image if event == "REMOVE" else None,
        event_id=uuid.uuid4().hex,
        created=created,
        table_name=TABLE,
        region="us-east-1",
    )


MILLION = 1_000_000

ENTITY = """SELECT
  keys.pk.S AS pk,
  toInt64OrNull(new_image.n.N) AS n,
  if(event_name = 'REMOVE', true, false) AS deleted
FROM {pool}"""


@pytest.mark.slow
def test_a_million_items_load_while_the_stream_changes_some_of_them(
    pool, aws, table, stub_export, warehouse_worker, monkeypatch
):
    """1,000,000 items in 64 files (8 empty), a worker killed half way and resumed, while the
    stream delivers changes to some of the same items, before and after the export's time: the
    entity pool ends as the table is."""
    import threading

    from pools.ingest.landing import land_records
    from views_mv import services

    stub_export(partitions(MILLION, 64))
    pipeline = make_pipeline(pool, aws, TABLE)
    mv = services.create_mv(
        f"orders_{pool.name}",
        ENTITY.format(pool=pool.name),
        target_pool=f"e_{pool.name}",
        mutable=True,
        unique=["pk"],
    )
    wait_for(lambda: type(mv).objects.get(pk=mv.pk).status == "active", message="view attached")
    snapshot = export_of(pipeline, enable_pitr=True)

    # The worker dies after 20 files' worth of deliveries; the next run resumes.
    real_land, landed = reading.land_records, []

    def dies(pool_, request_id, chunk, **kw):
        if len(landed) == 90:
            raise RuntimeError("killed")
        landed.append(request_id)
        return real_land(pool_, request_id, chunk, **kw)

    monkeypatch.setattr(reading, "land_records", dies)
    stream = [
        *[_stream_change(n, "MODIFY", -n, EXPORT_MS + 1000) for n in range(0, 1000)],  # after: wins
        *[_stream_change(n, "MODIFY", -n, EXPORT_MS - 1000) for n in range(1000, 2000)],  # before: loses
        *[_stream_change(n, "REMOVE", 0, EXPORT_MS + 2000) for n in range(2000, 2500)],  # after: gone
        *[_stream_change(n, "INSERT", n, EXPORT_MS + 3000) for n in range(MILLION, MILLION + 100)],
    ]

    def deliver_stream() -> None:
        for start in range(0, len(stream), 250):
            chunk = [records.encode_record(r) for r in stream[start : start + 250]]
            land_records(pool, f"stream-{start}", chunk, timestamp_ms=EXPORT_MS + 5000)

    streamer = threading.Thread(target=deliver_stream)
    streamer.start()
    assert snapshots.run_snapshot(snapshot.pk).status == Snapshot.Status.FAILED
    monkeypatch.setattr(reading, "land_records", real_land)
    done = snapshots.run_snapshot(snapshot.pk)
    streamer.join()
    assert done.status == Snapshot.Status.DONE, done.error
    assert done.items_done == MILLION and done.export_files_total == 64

    rows, distinct = counts(pool)[:2]
    assert rows == distinct and rows == MILLION + len(stream)  # nothing stored twice
    entity = f"e_{pool.name}"
    result = warehouse_client.call(
        run_sql,
        f"SELECT count(), countIf(n < 0), sumIf(n, pk < 'order#0001000'), "
        f"countIf(pk >= 'order#0001000' AND pk < 'order#0002000' AND n > 0) FROM {entity}",
    )
    assert "error" not in result, result
    total, negative, first_thousand, before_export = result["rows"][0]
    assert total == MILLION - 500 + 100
    assert negative == 999  # the stream's later values (item 0's -0 is 0)
    assert first_thousand == -sum(range(1000))
    assert before_export == 1000  # the export's values won over the older changes


def test_a_cancelled_export_stops_at_its_next_file_and_keeps_what_it_loaded(
    pool, aws, table, stub_export, monkeypatch, admin_client
):
    from django.urls import reverse

    stub_export(partitions(200, 8, empty_every=100))
    pipeline = make_pipeline(pool, aws, TABLE)
    snapshot = export_of(pipeline, enable_pitr=True)
    real_land = reading.land_records

    def cancel_after_first(pool_, request_id, chunk, **kw):
        stored = real_land(pool_, request_id, chunk, **kw)
        # The user presses Cancel on the card while the first file loads.
        Snapshot.objects.filter(pk=snapshot.pk).update(status=Snapshot.Status.RUNNING)
        assert admin_client.post(reverse("aws:snapshot_cancel", args=[pipeline.pk])).status_code == 302
        return stored

    monkeypatch.setattr(reading, "land_records", cancel_after_first)
    ended = snapshots.run_snapshot(snapshot.pk)
    assert ended.status == Snapshot.Status.CANCELLED
    assert ended.pages_done == 1 and ended.items_done == 25
    card = admin_client.get(reverse("aws:snapshot", args=[pipeline.pk])).content.decode()
    assert "Cancelled" in card and 'id="snapshot-resume"' not in card
