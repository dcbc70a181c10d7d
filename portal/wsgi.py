import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.production")

application = get_wsgi_application()

# Both need the settings loaded.
from portal.machine_endpoints import with_machine_endpoints  # noqa: E402
from portal.proxies import behind_trusted_proxies  # noqa: E402

application = behind_trusted_proxies(with_machine_endpoints(application))
