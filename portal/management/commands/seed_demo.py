from django.core.management.base import BaseCommand

from portal.demo import seed_demo


class Command(BaseCommand):
    help = "Seed the product catalogue and a few dozen demo companies (safe to run again)."

    def handle(self, *args, **options):
        counts = seed_demo()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {counts['products']} products, {counts['companies']} companies."
            )
        )
