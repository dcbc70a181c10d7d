from django.apps import AppConfig


class SyncMigrationConfig(AppConfig):
    name = "syncmigration"
    verbose_name = "Sync migration"
    default_auto_field = "django.db.models.BigAutoField"
