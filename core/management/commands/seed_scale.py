from django.core.management.base import BaseCommand, CommandError

from portal.scale_book import BookNotEmpty, NotPostgres, scale_book_build


class Command(BaseCommand):
    help = (
        "Build a bank-sized book for benchmarks and trying the admin at scale: per 100,000 "
        "companies, 120,000 connections, 200,000 company products, 1.2 million data-type "
        "statuses, 500,000 pulls, 300,000 operations in jobs of up to 100,000, 300,000 webhook "
        "events and 110,000 consent events, written set-based (PostgreSQL only). Refuses a "
        "database that already has companies unless --allow-non-empty."
    )

    def add_arguments(self, parser):
        parser.add_argument("--companies", type=int, required=True, help="how many companies")
        parser.add_argument(
            "--allow-non-empty",
            action="store_true",
            help="add the book to a database that already has companies",
        )

    def handle(self, *args, companies, allow_non_empty, **options):
        try:
            figures = scale_book_build(
                companies=companies, allow_non_empty=allow_non_empty, log=self.stdout.write
            )
        except (NotPostgres, BookNotEmpty, ValueError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Scale book: {figures.companies:,} companies and "
                f"{sum(figures.rows.values()):,} rows in {figures.seconds:.0f} s."
            )
        )
