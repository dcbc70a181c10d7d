"""The Celery app. Its settings are the CELERY_* names in portal.settings."""

import os

from celery import Celery

# As portal.wsgi does: production settings unless told otherwise (`make run` and the tests name
# theirs), so a worker started without the variable never runs with DEBUG and a public key.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.production")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
