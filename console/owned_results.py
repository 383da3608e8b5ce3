"""A task's result belongs to the user and the page that asked for it.

A page that starts a warehouse task and polls for its result (Preview Data) never puts the bare
task id in a URL: task ids appear in logs, and whoever read one could fetch the result and, by
reading it, make it disappear for its owner. The page gets a token instead, the task id signed
with Django's signing key for one user and one page (e.g. `preview:<pool id>`); any other user or
page, or a changed token, answers 404 and leaves the result alone. The SQL Console keeps the same
rule through its QueryRun rows, which belong to their user.
"""

from __future__ import annotations

from django.core import signing
from django.http import Http404

SALT = "shoal.owned-result"
MAX_AGE_SECONDS = 24 * 3600  # Celery keeps results for a day


def _salt(user, page: str) -> str:
    return f"{SALT}:{user.pk}:{page}"


def token(task_id: str, user, page: str) -> str:
    """What the page puts in its polling URL instead of `task_id`."""
    return signing.dumps(task_id, salt=_salt(user, page))


def task_id(token: str, user, page: str) -> str:
    """The task id behind `token` when `user` on `page` was given it; Http404 otherwise."""
    try:
        return signing.loads(token, salt=_salt(user, page), max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        raise Http404("There is no such result.") from None
