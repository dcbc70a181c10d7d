import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.production")

application = get_wsgi_application()

# It needs the settings loaded.
from portal.proxies import behind_trusted_proxies  # noqa: E402

application = behind_trusted_proxies(application)
