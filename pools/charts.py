"""The ingestion chart of a pool page: records per interval, drawn as inline SVG on the server
(no JavaScript library), from the delivery rows Django already has."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from pools.models import Delivery


@dataclass(frozen=True)
class Bucket:
    start: datetime
    records: int


def ingestion_series(pool_id: int, *, hours: int = 3, minutes_per_bucket: int = 5, now=None) -> list[Bucket]:
    """Records received per bucket over the last `hours`, oldest first, empty buckets included."""
    now = now or timezone.now()
    size = timedelta(minutes=minutes_per_bucket)
    end = now.replace(second=0, microsecond=0)
    end -= timedelta(minutes=end.minute % minutes_per_bucket) - size
    start = end - timedelta(hours=hours)
    per_minute = (
        Delivery.objects.filter(pool_id=pool_id, received_at__gte=start)
        .annotate(minute=TruncMinute("received_at"))
        .values("minute")
        .annotate(records=Sum("record_count"))
    )
    counts = [0] * int((end - start) / size)
    for row in per_minute:
        index = int((row["minute"] - start) / size)
        if 0 <= index < len(counts):
            counts[index] += row["records"]
    return [Bucket(start + i * size, n) for i, n in enumerate(counts)]


def svg_bars(series: list[Bucket], *, width: int = 900, height: int = 120) -> str:
    """A bar chart with an axis label for the peak and the time span; a11y title per bar."""
    if not series:
        return ""
    most = max(b.records for b in series)
    peak = most or 1
    gap = 2
    bar = max(1.0, (width - gap * len(series)) / len(series))
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" rx="1"><title>{} · {} records</title></rect>',
        (
            (
                round(i * (bar + gap), 1),
                round(height - max(1, b.records / peak * (height - 4)) if b.records else height - 1, 1),
                round(bar, 1),
                round(max(1, b.records / peak * (height - 4)) if b.records else 1, 1),
                timezone.localtime(b.start).strftime("%H:%M"),
                f"{b.records:,}",
            )
            for i, b in enumerate(series)
        ),
    )
    first = timezone.localtime(series[0].start).strftime("%H:%M")
    last = timezone.localtime(series[-1].start).strftime("%H:%M")
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" preserveAspectRatio="none" role="img" '
        'aria-label="Records received per interval">{bars}</svg>'
        '<div class="chart-axis"><span>{first}</span><span>{peak}</span>'
        "<span>{last} UTC</span></div>",
        w=width,
        h=height,
        bars=bars,
        first=first,
        last=last,
        peak=_peak_label(most, len(series)),
    )


def _peak_label(most: int, buckets: int) -> str:
    if not most:
        return "no records received in this period"
    return f"peak {most:,} record{'' if most == 1 else 's'} per interval"
