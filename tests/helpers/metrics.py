"""Prometheus /metrics as a test reads it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-token-0123456789"  # set it as settings.METRICS_TOKEN


def scrape(client) -> dict[tuple[str, tuple], float]:
    reply = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert reply.status_code == 200
    out = {}
    for family in text_string_to_metric_families(reply.content.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out
