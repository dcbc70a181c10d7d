from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from portal.roles import sync_role_permissions

        # Every migrate gives the roles the permissions of models added since, so a new app's
        # models are visible to viewers without another data migration.
        post_migrate.connect(sync_role_permissions, dispatch_uid="portal.sync_role_permissions")
