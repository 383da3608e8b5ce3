"""Template helpers for showing warehouse values."""

from __future__ import annotations

import json

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def cell(value):
    """A result value: JSON objects as collapsible, pretty-printed blocks; NULL marked."""
    if value is None:
        return mark_safe('<span class="null">NULL</span>')
    if isinstance(value, (dict, list)):
        compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if len(compact) <= 40:
            return format_html("<code>{}</code>", compact)
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
        return format_html(
            '<details class="json"><summary><code>{}</code></summary><pre>{}</pre></details>',
            compact[:200],
            pretty,
        )
    return value


@register.filter
def zip_types(columns, types):
    return list(zip(columns, types, strict=False))
