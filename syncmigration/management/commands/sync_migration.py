"""`manage.py sync_migration plan|start|status|continue|rollback`: the run page's services, for
operators who work from a shell. Every action is taken in the name of `--user` (a staff member
allowed to run migrations), so the audit trail and four-eyes apply as on the page."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from approvals.models import ApprovalRequest
from products.models import Product
from syncmigration import selectors, services
from syncmigration.models import MigrationRun, ScopeKind


class Command(BaseCommand):
    help = "Plan, start, follow, continue or roll back a sync migration run."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        plan = sub.add_parser("plan", help="plan a run (the dry run); nothing is sent")
        plan.add_argument("--products", required=True, help="product identifiers, comma-separated")
        scope = plan.add_mutually_exclusive_group()
        scope.add_argument("--companies", default="", help="company ids, comma-separated")
        scope.add_argument("--tag", default="", help="companies with this tag (key=value)")
        scope.add_argument("--name-contains", default="")
        plan.add_argument("--canary-companies", default="", help="company ids, comma-separated")
        plan.add_argument("--canary-percent", type=int, default=None)
        plan.add_argument("--receiver-url", required=True, help="the portal's webhook address")
        plan.add_argument("--user", required=True)
        plan.add_argument("--json", action="store_true", help="print the plan as JSON")
        for name in ("start", "continue", "rollback"):
            action = sub.add_parser(name)
            action.add_argument("run", type=int)
            action.add_argument("--user", required=True)
            if name == "rollback":
                action.add_argument("--reason", default="")
        status = sub.add_parser("status")
        status.add_argument("run", type=int)
        status.add_argument("--json", action="store_true")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except services.MigrationRefused as refused:
            raise CommandError(str(refused)) from None

    # -- actions --------------------------------------------------------------------------

    def _user(self, username):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"--user: no active staff member {username!r}.")
        if not user.has_perm("syncmigration.run_sync_migration"):
            raise CommandError(f"--user: {username} may not run sync migrations (admins only).")
        return user

    def _run(self, pk) -> MigrationRun:
        run = MigrationRun.objects.filter(pk=pk).first()
        if run is None:
            raise CommandError(f"run: no sync migration #{pk}.")
        return run

    @staticmethod
    def _ids(text: str, option: str) -> list[int]:
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise CommandError(f"{option}: company ids are whole numbers, comma-separated.")
        return [int(part) for part in parts]

    def _plan(self, **options):
        user = self._user(options["user"])
        identifiers = [i.strip() for i in options["products"].split(",") if i.strip()]
        products = list(Product.objects.filter(identifier__in=identifiers))
        missing = sorted(set(identifiers) - {product.identifier for product in products})
        if missing:
            raise CommandError(f"--products: unknown product(s): {', '.join(missing)}.")
        company_ids = self._ids(options["companies"], "--companies")
        scope_filter = {}
        if options["tag"]:
            scope_filter = {"tag": options["tag"]}
        elif options["name_contains"]:
            scope_filter = {"name_contains": options["name_contains"]}
        scope_kind = (
            ScopeKind.COMPANIES if company_ids else ScopeKind.FILTER if scope_filter else "all"
        )
        run = services.migration_run_create(
            scope_kind=scope_kind,
            company_ids=company_ids,
            scope_filter=scope_filter,
            products=products,
            canary_company_ids=self._ids(options["canary_companies"], "--canary-companies"),
            canary_percent=options["canary_percent"],
            receiver_url=options["receiver_url"],
            created_by=user,
        )
        if options["json"]:
            self.stdout.write(json.dumps({"run": run.pk, **run.plan}, default=str))
            return
        self.stdout.write(
            f"Planned {run} (nothing sent). Start it with: sync_migration start {run.pk}"
        )
        self._print_plan(run.plan)

    def _print_plan(self, plan: dict):
        self.stdout.write(
            f"  companies in scope: {plan['company_count']}, canary: {plan['canary_count']}"
        )
        for stage, calls in plan["calls"].items():
            self.stdout.write(f"  {stage}: {calls} call(s)")
        minutes = plan["total_calls"] / plan["calls_per_minute"]
        self.stdout.write(
            f"  total: {plan['total_calls']} calls, {minutes:.1f} min at "
            f"{plan['calls_per_minute']:.0f}/min; step 2 waits {plan['wait_seconds']} s; "
            f"estimated {selectors.format_seconds(plan['estimated_seconds'])}"
        )
        quota = plan["quota_limit"]
        self.stdout.write(
            f"  daily quota: {plan['quota_used']} of {quota} used"
            if quota
            else "  daily quota: unknown"
        )
        self.stdout.write(
            f"  webhooks: disable {len(plan['consumers_to_disable'])} consumer(s), keep "
            f"{plan['consumers_kept']}, register one for "
            + ", ".join(plan["new_consumer_event_types"])
        )
        for product in plan["products"]:
            self.stdout.write(
                f"  {product['identifier']}: {product['canary_adds']} canary adds, "
                f"{product['adds']} after; {product['already_held']} hold it; "
                f"{len(product['lacking_consent'])} lack consent; "
                f"{len(product['dual_sync_risks'])} dual-sync risk(s) removed"
            )

    def _outcome(self, outcome):
        if isinstance(outcome, ApprovalRequest):
            self.stdout.write(
                f"Waits for a second person: approval #{outcome.pk} ({outcome.summary})."
            )
        else:
            self.stdout.write(f"{outcome}: {outcome.get_state_display()}.")

    def _start(self, **options):
        user = self._user(options["user"])
        self._outcome(services.migration_run_start(run=self._run(options["run"]), user=user))

    def _continue(self, **options):
        user = self._user(options["user"])
        self._outcome(services.migration_run_continue(run=self._run(options["run"]), user=user))

    def _rollback(self, **options):
        user = self._user(options["user"])
        run = services.migration_run_rollback(
            run=self._run(options["run"]), user=user, reason=options["reason"]
        )
        self._outcome(run)

    def _status(self, **options):
        run = self._run(options["run"])
        progress = selectors.run_progress(run=run)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "run": run.pk,
                        "state": run.state,
                        "stage": run.stage,
                        "steps": [step.__dict__ for step in progress],
                    },
                    default=str,
                )
            )
            return
        self.stdout.write(f"{run}: {run.get_state_display()}")
        if run.last_error:
            self.stdout.write(f"  stopped: {run.last_error}")
        for step in progress:
            line = f"  {step.label}: planned {step.planned_calls} call(s)"
            if step.forward:
                line += (
                    f"; {step.forward['calls']} written, {step.forward['succeeded']} done, "
                    f"{step.forward['failed']} failed, {step.forward['live']} running"
                )
                if step.forward["outcome"]:
                    line += f" — {step.forward['outcome']}"
            if step.rollback:
                line += f"; rolled back: {step.rollback['outcome'] or 'under way'}"
            self.stdout.write(line)
        wait = selectors.run_wait_status(run=run)
        if wait:
            self.stdout.write(
                f"  waiting {selectors.format_seconds(wait.seconds_left)} more; "
                f"{wait.reads_running_count} client-level read(s) running"
            )
        canary = selectors.canary_outcome(run=run)
        if canary:
            self.stdout.write(
                f"  canary: {canary.companies} companies, {canary.adds_done} added, "
                f"{canary.adds_failed} failed, {canary.awaiting_consent} awaiting consent, "
                f"{canary.reads_completed} product reads completed"
            )
