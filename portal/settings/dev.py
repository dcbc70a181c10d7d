"""Development settings (make run; elsewhere DJANGO_SETTINGS_MODULE=portal.settings.dev): DEBUG on
unless the environment says otherwise."""

import os

os.environ.setdefault("DEBUG", "1")

from portal.settings.base import *  # noqa: F403
