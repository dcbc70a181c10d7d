from django.apps import AppConfig


class SyncSettingsConfig(AppConfig):
    name = "syncsettings"
    verbose_name = "Sync settings"
