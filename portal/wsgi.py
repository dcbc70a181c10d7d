import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.production")

application = get_wsgi_application()

from portal.proxies import behind_trusted_proxies  # noqa: E402  (needs the settings loaded)

application = behind_trusted_proxies(application)
