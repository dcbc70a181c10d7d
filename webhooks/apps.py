from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def refresh_roles_after_migrate(sender=None, **kwargs) -> None:
    """Give the staff roles every permission once the last app's permissions exist.

    post_migrate fires once per app, in INSTALLED_APPS order, and each app's permissions are
    created by its own signal. The portal app's refresh runs before those of the apps listed
    after it (webhooks' replay_event and manage_consumers among them) exist on a fresh database.
    """
    last_app = list(apps.get_app_configs())[-1]
    if sender is None or sender.name != last_app.name:
        return
    from portal.roles import sync_role_permissions

    sync_role_permissions()


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from portal.schedules import ensure_periodic_tasks_after_migrate

        # The same dispatch_uid as the other apps with periodic tasks: one receiver.
        post_migrate.connect(
            ensure_periodic_tasks_after_migrate, dispatch_uid="portal.ensure_periodic_tasks"
        )
        post_migrate.connect(refresh_roles_after_migrate, dispatch_uid="webhooks.refresh_roles")
