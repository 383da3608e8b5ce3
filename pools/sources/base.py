"""What a source type is: everything Shoal needs to know about one kind of source, in one value.

See pools/sources/__init__.py for the registry and how to add a source type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# (file name, delivery id, reception time in epoch ms) of each landed body a load reads.
LoadFiles = list[tuple[str, int, int]]


@dataclass(frozen=True)
class SourceType:
    """One kind of source: its pool table, how the warehouse loads a landed body into it, and the
    steps that set it up (in the Create Data Pool wizard and in AWS), referred to by name."""

    key: str  # stored on the pool (DataPool.kind) and in the wizard's answers
    label: str
    description: str  # what the wizard's "Select your data source" step says about it
    # The pool table's columns: (name, ClickHouse type, what it holds), Shoal's own included.
    columns: tuple[tuple[str, str, str], ...]
    # SELECT of the valid records of some landed bodies as rows of `columns` (files, first, last).
    load_select: Callable[[LoadFiles, int | None, int | None], str]
    # SELECT position, data, reason of a body's records that are not valid (to quarantine them).
    rejected_select: Callable[[], str]
    # SELECT position, data of one record of a body (to quarantine a record the warehouse refused).
    record_select: Callable[[int], str]
    # The order Preview Data shows the columns in.
    preview_columns: tuple[str, ...]
    # The Create Data Pool wizard's steps for this source, by name, in order (pools/wizard.py).
    wizard_steps: tuple[str, ...]
    # The AWS provisioning steps that connect the source to a pool, by key, in the order they run
    # (the pipeline's steps, pools/aws/); teardown removes what they made. Empty: nothing in AWS.
    aws_steps: tuple[str, ...] = ()
    # What the source's records allow, asked by the apps above instead of testing the kind:
    # each record carries the time of its change, by which a Mutable view orders an item's
    # versions (views_mv/targets.py); without it a view keeps arrival order.
    versions_by_change_time: bool = False

    def column_types(self) -> dict[str, str]:
        """{name: ClickHouse type} of the pool table's columns."""
        return {name: type_ for name, type_, _ in self.columns}
