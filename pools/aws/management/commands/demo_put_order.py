"""Put a sample taqueria order into a sandbox table (or move one on), to watch it reach the pool."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pools.aws import errors, sandbox
from pools.aws.clients import connect
from pools.aws.models import AwsConnection


class Command(BaseCommand):
    help = "SANDBOX: put a sample order into the emulator's `orders` table, or --update one."

    def add_arguments(self, parser):
        parser.add_argument("--connection", default=sandbox.CONNECTION_NAME, help="AWS connection name.")
        parser.add_argument("--table", default=sandbox.ORDERS_TABLE)
        parser.add_argument(
            "--update", action="store_true", help="Move an existing order to its next status (a MODIFY)."
        )
        parser.add_argument("--delete", action="store_true", help="Delete an existing order (a REMOVE).")

    def handle(self, *args, **opts):
        connection = AwsConnection.objects.filter(name=opts["connection"]).first()
        if connection is None:
            raise CommandError(
                f"No AWS connection named {opts['connection']!r} in {settings.DATA_DIR}: run it as "
                "`make demo-order` while `make demo` runs (it uses the demo's data folder)."
            )
        if not connection.is_emulator:
            raise CommandError("This command writes sample data; use it with an emulator connection only.")
        # Only ever an emulator connection (checked above): its endpoint is honoured here even when
        # the environment does not say AWS_ALLOW_EMULATOR, rather than aiming at real AWS.
        settings.AWS_ALLOW_EMULATOR = True
        aws = connect(connection)
        try:
            if opts["delete"]:
                order = sandbox.delete_sample_order(aws, opts["table"])
                if order is None:
                    raise CommandError(f"The table {opts['table']} is empty.")
                self.stdout.write(f"deleted order {order['order_id']}")
            elif opts["update"]:
                order = sandbox.update_sample_order(aws, opts["table"])
                if order is None:
                    raise CommandError(f"The table {opts['table']} is empty.")
                self.stdout.write(f"order {order['order_id']} is now {order['status']}")
            else:
                order = sandbox.put_sample_order(aws, opts["table"])
                self.stdout.write(
                    f"put order {order['order_id']} ({order['taqueria']}, {order['total_price']})"
                )
        except errors.AwsError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            raise CommandError(str(errors.describe(exc))) from exc
