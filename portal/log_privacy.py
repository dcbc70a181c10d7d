"""What logs and error pages must not show: consent links' tokens and every credential.

A consent link (`/consent/link/<token>/`) and a manage link (`/consent/manage/link/<signed>/`)
each let whoever holds them act for a customer. The development server logs every request
line, and Django logs each 404 ("Not Found: <path>"), so both reach the console unless the
logging filter below cuts the token out. Django's DEBUG error page lists the settings and, under
`runserver`, the process environment: the reporter filter below hides the broker's, the
cache's and the database's URLs (a Redis password rides in them) besides what Django hides.
"""

import logging
import re
from urllib.parse import urlsplit

from django.views.debug import SafeExceptionReporterFilter

CONSENT_TOKEN_IN_PATH = re.compile(r"(/consent/(?:manage/)?link/)[^/\s\"'?#]+")
REDACTED = "[redacted]"


def redact_consent_tokens(text: str) -> str:
    return CONSENT_TOKEN_IN_PATH.sub(r"\1" + REDACTED, text)


class ConsentTokenFilter(logging.Filter):
    """Rewrites a record whose message holds a consent or manage link, token cut out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_consent_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class PortalExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding URLs (REDIS_URL, CELERY_BROKER_URL, DATABASE_URL, the
    environment's too), result backends and cache locations, and any password written into
    a URL elsewhere."""

    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|BROKER|BACKEND|LOCATION|DSN",
        flags=re.I,
    )

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str) and "@" in cleansed and "://" in cleansed:
            try:
                if urlsplit(cleansed).password:
                    return self.cleansed_substitute
            except ValueError:
                return self.cleansed_substitute
        return cleansed
