"""Initial snapshot by DynamoDB's export to S3, for tables too big to Scan.

The table's stream is on before the export is asked for (as for a Scan), so every change after
the export's time arrives on the stream. Each exported item becomes an INSERT change event whose
time is the export's time: a streamed change made after it wins, one made before it loses,
whatever order they arrive in.

    run(run)    # from pools.aws.snapshot.run_snapshot, for a snapshot whose method is "export"

1. ExportTableToPointInTime into the pipeline's bucket (or the one the user named), once: its
   ARN is saved, so a restart waits for the same export instead of asking for another.
2. DescribeExport until COMPLETED (the card shows AWS's progress meanwhile).
3. The manifests are read and checked against their .checksum files; each data file listed is
   loaded once: its MD5 and item count are checked against the manifest, its items are landed as
   deliveries whose request ids name the export, file and chunk (a file loaded again after a
   crash is stored once), and the file is marked loaded. A restart resumes at the files not yet
   loaded; the count loaded must equal the manifests'.

Only ExportTableToPointInTime and DescribeExport are behind `exporter_for`, which the tests
replace: moto's export does not write AWS's layout (docs/aws.md). For an emulator connection
(`make demo`) the sandbox stands in for those two (pools/aws/sandbox_export.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from pools.aws import export_layout, sandbox_export
from pools.aws.clients import connect
from pools.aws.models import Snapshot
from pools.aws.snapshot_pages import now_ms
from pools.reading import Batch, into_pool, land_batches

log = logging.getLogger(__name__)

POLL_SECONDS = 10.0  # between DescribeExport calls while AWS exports
DELIVERY_BYTES = 1024 * 1024  # records of a file landed per delivery


class Stopped(Exception):
    """Paused or cancelled by the user: the run ends here and resumes (or not) later."""


# --- the two calls moto does not emulate as AWS does ------------------------------------------------


class AwsExport:
    """ExportTableToPointInTime and DescribeExport against AWS."""

    def __init__(self, ddb):
        self.ddb = ddb

    def start(self, *, table: str, table_arn: str, bucket: str, prefix: str, token: str) -> str:
        """Returns the export's ARN. ClientToken makes a retry of this call (a crash between the
        request and saving its ARN) the same export."""
        params = {
            "TableArn": table_arn,
            "S3Bucket": bucket,
            "ExportFormat": export_layout.FORMAT,
            "ClientToken": token,
        }
        if prefix:
            params["S3Prefix"] = prefix
        return self.ddb.export_table_to_point_in_time(**params)["ExportDescription"]["ExportArn"]

    def describe(self, *, export_arn: str, bucket: str, prefix: str) -> dict:
        return self.ddb.describe_export(ExportArn=export_arn)["ExportDescription"]


def exporter_for(snapshot: Snapshot):
    """AWS's export, or for an emulator connection (`make demo`) the sandbox's stand-in, since moto
    writes no AWS layout (pools/aws/sandbox_export.py). The tests replace this one function."""
    aws = connect(snapshot.pipeline.connection)
    if snapshot.pipeline.connection.is_emulator:
        return sandbox_export.SandboxExport(aws)
    return AwsExport(aws.client("dynamodb"))


# --- point-in-time recovery ------------------------------------------------------------------------


def pitr_enabled(ddb, table: str) -> bool:
    found = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    return found.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") == "ENABLED"


def enable_pitr(ddb, table: str) -> None:
    ddb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )


# --- the run ---------------------------------------------------------------------------------------


def run(snapshot: Snapshot, wait_for_room) -> None:
    """Ask for the export (once), wait for it, load the files not loaded yet. Stopped when the
    user paused or cancelled; ExportError (or AWS's errors) when it cannot go on."""
    pipeline = snapshot.pipeline
    session = connect(pipeline.connection)
    ddb, s3 = session.client("dynamodb"), session.client("s3")
    if not snapshot.export_arn:
        _request(ddb, snapshot)
    description = _wait_for_export(ddb, snapshot)
    summary, files = _manifests(s3, snapshot, description)
    _save(snapshot, export_time=summary.export_time, export_files_total=len(files))
    if sum(f.item_count for f in files) != summary.item_count:
        raise export_layout.ExportError(
            "the files manifest's item counts do not add up to the summary's itemCount"
        )
    for index, data_file in enumerate(files):
        if snapshot.export_files.get(data_file.key, {}).get("loaded"):
            continue
        _check_stop(snapshot)
        _load_file(s3, snapshot, summary, index, data_file, wait_for_room)
    loaded = sum(state.get("items", 0) for state in snapshot.export_files.values() if state.get("loaded"))
    if loaded != summary.item_count:
        raise export_layout.ExportError(
            f"{loaded} items loaded; the export's manifests list {summary.item_count}"
        )


def finished(snapshot: Snapshot) -> bool:
    files = snapshot.export_files
    return bool(snapshot.export_files_total) and sum(1 for s in files.values() if s.get("loaded")) == (
        snapshot.export_files_total
    )


def _request(ddb, snapshot: Snapshot) -> None:
    pipeline = snapshot.pipeline
    if not pitr_enabled(ddb, snapshot.table_name) and snapshot.enable_pitr:
        enable_pitr(ddb, snapshot.table_name)
    if not pitr_enabled(ddb, snapshot.table_name):
        raise export_layout.ExportError(
            f"Point-in-time recovery is off on {snapshot.table_name}: an export to S3 needs it. "
            "Turn it on from the backfill card, or choose Scan."
        )
    table_arn = pipeline.table_arn or ddb.describe_table(TableName=snapshot.table_name)["Table"]["TableArn"]
    bucket = snapshot.export_bucket or pipeline.bucket_name
    arn = exporter_for(snapshot).start(
        table=snapshot.table_name,
        table_arn=table_arn,
        bucket=bucket,
        prefix=snapshot.export_prefix,
        token=snapshot.uid,
    )
    _save(snapshot, export_arn=arn, export_bucket=bucket, export_status="IN_PROGRESS")


def _wait_for_export(ddb, snapshot: Snapshot) -> dict:
    exporter = exporter_for(snapshot)
    while True:
        description = exporter.describe(
            export_arn=snapshot.export_arn, bucket=snapshot.export_bucket, prefix=snapshot.export_prefix
        )
        status = description.get("ExportStatus", "")
        _save(snapshot, export_status=status)
        if status == "COMPLETED":
            return description
        if status == "FAILED":
            code, message = description.get("FailureCode", ""), description.get("FailureMessage", "")
            raise export_layout.ExportError(f"AWS's export failed: {code} {message}".strip())
        _check_stop(snapshot)
        time.sleep(POLL_SECONDS)


def _read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _read_checked(s3, bucket: str, stem: str) -> bytes:
    body = _read(s3, bucket, f"{stem}.json")
    try:
        checksum = _read(s3, bucket, f"{stem}.checksum")
    except s3.exceptions.NoSuchKey:
        checksum = None
    export_layout.check_manifest(stem.rsplit("/", 1)[-1] + ".json", body, checksum)
    return body


def _manifests(s3, snapshot: Snapshot, description: dict):
    bucket = description.get("S3Bucket") or snapshot.export_bucket
    prefix = description.get("S3Prefix") or snapshot.export_prefix
    summary_key = description.get("ExportManifest") or (
        export_layout.folder(prefix, snapshot.export_arn) + "/manifest-summary.json"
    )
    summary = export_layout.read_summary(_read_checked(s3, bucket, summary_key.removesuffix(".json")))
    files_key = export_layout.object_key(prefix, summary.manifest_files_key)
    files = export_layout.read_manifest_files(_read_checked(s3, bucket, files_key.removesuffix(".json")))
    return summary, files


def _load_file(s3, snapshot: Snapshot, summary, index: int, data_file, wait_for_room) -> None:
    pipeline = snapshot.pipeline
    data = _read(
        s3, summary.bucket or snapshot.export_bucket, export_layout.object_key(summary.prefix, data_file.key)
    )
    records = export_layout.change_records(
        data,
        data_file,
        key_names=snapshot.key_names,
        table=snapshot.table_name,
        region=pipeline.connection.region,
        export_ms=int(summary.export_time.timestamp() * 1000),
    )
    source_arn = pipeline.table_arn or f"dynamodb-table:{snapshot.table_name}"

    def save(batch: Batch, stored: bool) -> None:
        fields: dict[str, object] = {"deliveries_stored": snapshot.deliveries_stored + int(stored)}
        if batch.position is not None:  # the file's last delivery: the file is loaded with it
            fields.update(
                export_files={
                    **snapshot.export_files,
                    data_file.key: {"items": batch.position, "loaded": True},
                },
                items_done=snapshot.items_done + batch.position,
                pages_done=snapshot.pages_done + 1,
            )
        _save(snapshot, **fields)

    land_batches(
        _file_batches(snapshot, index, records),
        land=into_pool(pipeline.pool, source_arn=source_arn),
        save=save,
        room=wait_for_room,
    )


def _file_batches(snapshot: Snapshot, index: int, records: list[bytes]) -> Iterator[Batch]:
    """The file's records in deliveries of at most DELIVERY_BYTES; the last one carries the file's
    item count as its position (a file without items is one batch without records)."""
    chunks = list(export_layout.chunks(records, DELIVERY_BYTES)) or [[]]
    for chunk_index, chunk in enumerate(chunks):
        close_old_connections()
        last = chunk_index == len(chunks) - 1
        yield Batch(
            f"export-{snapshot.uid}-{index}-{chunk_index}",
            chunk,
            position=len(records) if last else None,
            timestamp_ms=now_ms(),
        )


def _check_stop(snapshot: Snapshot) -> None:
    asked = Q(pause_requested=True) | Q(cancel_requested=True)
    if Snapshot.objects.filter(asked, pk=snapshot.pk).exists():
        raise Stopped()


def _save(snapshot: Snapshot, **fields) -> None:
    for name, value in fields.items():
        setattr(snapshot, name, value)
    Snapshot.objects.filter(pk=snapshot.pk).update(heartbeat_at=timezone.now(), **fields)
