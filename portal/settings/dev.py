"""Development settings (make run, manage.py): DEBUG on unless the environment says otherwise."""

import os

os.environ.setdefault("DEBUG", "1")

from portal.settings.base import *  # noqa: F403
