from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from portal.schedules import ensure_periodic_tasks_after_migrate

        post_migrate.connect(
            ensure_periodic_tasks_after_migrate, dispatch_uid="portal.ensure_periodic_tasks"
        )
