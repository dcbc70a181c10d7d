from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations (calls that change Codat)"

    def ready(self):
        from portal.schedules import ensure_periodic_tasks_after_migrate

        # The beat schedule lives in the database (django_celery_beat); every migrate brings the
        # portal's periodic tasks up to date. Same dispatch_uid as the webhooks app: one receiver.
        post_migrate.connect(
            ensure_periodic_tasks_after_migrate, dispatch_uid="portal.ensure_periodic_tasks"
        )
