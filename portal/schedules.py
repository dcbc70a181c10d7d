"""Every periodic task of the portal, in one place (django_celery_beat rows, by name).

`ensure_periodic_tasks` creates or updates the rows below; it runs after every migrate
(`ensure_periodic_tasks_after_migrate`, connected by the apps that own periodic tasks under one
dispatch_uid), and beat's DatabaseScheduler reads the rows. Each entry expires before its next
run, so a backlog after an outage does not run the same sweep many times over.

To add a periodic task, add an entry to `periodic_tasks()` in your app's section.
"""

from django.conf import settings


def periodic_tasks() -> list[dict]:
    sweep = settings.CODAT_OPERATIONS_SWEEP_SECONDS
    return [
        # -- core/ ---------------------------------------------------------------------------
        {
            # The dashboard's read freshness and consent coverage, whole-book counts too slow
            # for every page (core/dashboard_counts.py).
            "name": "core: count the dashboard's whole-book figures",
            "task": "core.tasks.count_dashboard_figures",
            "every": 60,
            "expires": 60,
        },
        # -- operations/ ----------------------------------------------------------------------
        {
            "name": "operations: re-send due and stuck operations",
            "task": "operations.tasks.sweep",
            "every": sweep,
            "expires": sweep,
        },
        {
            "name": "operations: reconcile the mirror with Codat",
            "task": "companies.tasks.reconcile",
            "every": 30 * 60,
            "expires": 25 * 60,
        },
        # -- webhooks/ ------------------------------------------------------------------------
        {
            "name": "webhooks: re-queue events not yet processed",
            "task": "webhooks.tasks.requeue_unprocessed_events",
            "every": 60,
            "expires": 60,
        },
        {
            "name": "webhooks: reconcile missed events with Codat's data status",
            "task": "webhooks.tasks.reconcile_missed_events",
            # One Codat call per company (50 a run, round-robin) from the shared daily quota.
            "every": 60 * 60,
            "expires": 50 * 60,
        },
        {
            # Codat disables an endpoint after 5 days of failed deliveries and says so only in
            # its consumer list; one call an hour from the shared quota.
            "name": "webhooks: list webhook consumers at Codat",
            "task": "webhooks.tasks.import_webhook_consumers",
            "every": 60 * 60,
            "expires": 50 * 60,
        },
        # -- bankfeeds/ -----------------------------------------------------------------------
        {
            # Accounts whose next batch was not started by a submission or an outcome (a lost
            # message, a mapping that came later), and pushes left Pending (a missed webhook).
            "name": "bankfeeds: push waiting transactions and check pending pushes",
            "task": "bankfeeds.tasks.pushes_round",
            "every": 30,
            "expires": 30,
        },
        # -- consent/ -------------------------------------------------------------------------
        {
            # Removals and stopped refreshes happen at once on withdrawal; this repairs a
            # removal that was lost or failed and records consents that lapsed.
            "name": "consent: reconcile lapses and removals",
            "task": "consent.tasks.consent_reconcile",
            "every": 5 * 60,
            "expires": 4 * 60,
        },
        {
            # Consent evidence of erased companies, once each text's retention has passed
            # (GDPR; companies/erasure.py). Retention is counted in days: daily is on time.
            "name": "consent: delete evidence of erased companies past its retention",
            "task": "consent.tasks.consent_evidence_retention",
            "every": 24 * 60 * 60,
            "expires": 23 * 60 * 60,
        },
        # -- syncmigration/ -------------------------------------------------------------------
        {
            # A run whose advancing task was lost (a worker killed holding it) goes on.
            "name": "syncmigration: drive migration runs",
            "task": "syncmigration.tasks.redrive",
            "every": 30,
            "expires": 30,
        },
    ]


# Beat rows an earlier version made, for tasks that no longer exist: removed on migrate.
RETIRED = (
    # Consumer changes are operation rows now; the operations sweeper re-sends them.
    "webhooks: re-drive webhook consumer changes",
)


def ensure_periodic_tasks() -> None:
    """Create or update the portal's beat rows, and remove retired ones (idempotent)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    PeriodicTask.objects.filter(name__in=RETIRED).delete()

    for entry in periodic_tasks():
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=entry["every"], period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.update_or_create(
            name=entry["name"],
            defaults={
                "task": entry["task"],
                "interval": interval,
                "crontab": None,
                "expire_seconds": entry["expires"],
                "queue": entry.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE),
                "enabled": True,
            },
        )


def ensure_periodic_tasks_after_migrate(sender=None, **kwargs) -> None:
    """post_migrate receiver: post_migrate fires once per app with models; act once, for the
    app that owns the beat tables (the `core` app has no models, so it gets no signal)."""
    if sender is not None and sender.label != "django_celery_beat":
        return
    ensure_periodic_tasks()
