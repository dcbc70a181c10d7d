from django.core.management.base import BaseCommand, CommandError

from portal.demo import DemoConsumerNotRegistered, demo_webhook_consumer_wait, seed_demo
from webhooks.models import WebhookConsumer


class Command(BaseCommand):
    help = (
        "Seed the product catalogue (custom products read back from the sandbox's demo world) "
        "and import every company from Codat (the sandbox under make run); record demo consent "
        "as the named operator. Given --webhook-url, register that endpoint at Codat through "
        "an operation row and wait for a worker to run it. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operator", default="admin", help="staff account recording consent")
        parser.add_argument(
            "--webhook-url",
            default="",
            help="the portal's webhook endpoint to register at Codat (make run gives its own)",
        )
        parser.add_argument(
            "--webhook-wait",
            type=float,
            default=90.0,
            help="seconds to wait for a worker to register the endpoint at Codat",
        )

    def handle(self, *args, operator, webhook_url, webhook_wait, **options):
        counts = seed_demo(operator_username=operator, webhook_url=webhook_url)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {counts['products']} products, {counts['companies']} companies "
                f"imported from Codat, {counts['consents']} consents recorded."
            )
        )
        if "note" in counts:
            self.stdout.write(self.style.WARNING(counts["note"]))
        if "webhook_consumer" in counts:
            consumer = WebhookConsumer.objects.get(pk=counts["webhook_consumer"])
            try:
                consumer = demo_webhook_consumer_wait(consumer, seconds=webhook_wait)
            except DemoConsumerNotRegistered as error:
                raise CommandError(str(error)) from error
            # portal/devstack.py reads this line for the id the sandbox's secret is kept under.
            self.stdout.write(
                f"Webhook consumer {consumer.url} registered at Codat: {consumer.codat_id}"
            )
