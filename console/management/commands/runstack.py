from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from console import setup_token, supervisor


class Command(BaseCommand):
    help = "Run Shoal in the foreground: web, warehouse worker, default worker and beat."

    def handle(self, *args, **opts):
        supervisor.require_redis(settings.REDIS_URL)
        self.stdout.write(
            f"Shoal on http://127.0.0.1:{settings.PORT}/  (Firehose endpoints under "
            f"{settings.PUBLIC_BASE_URL}/ingest/)  data: {settings.DATA_DIR}"
        )
        notice = setup_token.notice(self.style.WARNING)
        sys.exit(supervisor.run(supervisor.plan(settings.PORT), data_dir=settings.DATA_DIR, notice=notice))
