"""The Celery app. Its settings are the CELERY_* names in portal.settings."""

import os

from celery import Celery

# Whether the process named its settings itself. `python -m portal.devstack` (`make run`)
# imports this package, and so this module, before its own code runs: it reads this to tell a
# newcomer's shell (development settings) from one that chose its own.
SETTINGS_NAMED = "DJANGO_SETTINGS_MODULE" in os.environ
# As portal.wsgi does: production settings unless told otherwise (`make run` and the tests name
# theirs), so a worker started without the variable never runs with DEBUG and a public key.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.production")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
