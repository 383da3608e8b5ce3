from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from pools.services import create_pool, pool_as_dict


class Command(BaseCommand):
    help = "Create a DynamoDB Data Pool and print its Firehose endpoint and access key."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Pool name; also its table name in SQL.")
        parser.add_argument("--description", default="")
        parser.add_argument("--basic-auth-user", default="")
        parser.add_argument("--basic-auth-password", default="")
        parser.add_argument("--json", action="store_true", help="Print the pool as JSON.")

    def handle(self, *args, **opts):
        try:
            pool = create_pool(
                opts["name"],
                description=opts["description"],
                basic_auth_user=opts["basic_auth_user"],
                basic_auth_password=opts["basic_auth_password"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        data = pool_as_dict(pool)
        if opts["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(self.style.SUCCESS(f"Created Data Pool {pool.name}"))
        self.stdout.write(f"  HTTP endpoint URL          {data['endpoint_url']}")
        self.stdout.write(f"  X-Amz-Firehose-Access-Key  {data['access_key']}")
