from django.core.management.base import BaseCommand

from portal.demo import seed_demo


class Command(BaseCommand):
    help = (
        "Seed the product catalogue (custom products read back from the sandbox's demo world) "
        "and import every company from Codat (the sandbox under make run); record demo consent "
        "as the named operator. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operator", default="admin", help="staff account recording consent")

    def handle(self, *args, operator, **options):
        counts = seed_demo(operator_username=operator)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {counts['products']} products, {counts['companies']} companies "
                f"imported from Codat, {counts['consents']} consents recorded."
            )
        )
        if "note" in counts:
            self.stdout.write(self.style.WARNING(counts["note"]))
