from django.apps import AppConfig


class BankFeedsConfig(AppConfig):
    name = "bankfeeds"
    verbose_name = "Bank feeds"
