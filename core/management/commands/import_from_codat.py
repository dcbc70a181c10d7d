from django.core.management.base import BaseCommand

from companies.codat_import import companies_import_with_details_from_codat


class Command(BaseCommand):
    help = (
        "Import every company at Codat (CODAT_BASE_URL) into the mirror, with its products, "
        "connections, data status and recent reads. Safe to run again."
    )

    def handle(self, *args, **options):
        count = companies_import_with_details_from_codat()
        self.stdout.write(self.style.SUCCESS(f"{count} companies imported from Codat."))
