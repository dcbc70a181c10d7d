from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API under /api/v1/: thin views over the apps' services and selectors."""

    name = "api"
    verbose_name = "API"
