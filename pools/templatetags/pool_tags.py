"""Template helpers that know about Data Pools."""

from __future__ import annotations

from django import template

from pools.tables import INTERNAL_COLUMNS

register = template.Library()


@register.filter
def internal_column(name: str) -> str:
    """What a column Shoal adds of its own holds ('' for the user's columns)."""
    return INTERNAL_COLUMNS.get(name, "")
