"""Settings shared by every environment, read from the environment through django-environ.

Modules: `dev` (make run), `test` (pytest), `production` (wsgi, manage.py and Celery unless
DJANGO_SETTINGS_MODULE names another, check --deploy).
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

# A development key is offered only while DEBUG is on; production must bring its own.
_DEV_SECRET_KEY = "dev-only-not-secret-3f1c9e0a7b5d4e2f8a6c1b0d9e7f5a3c"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The admin, on the portal's own site: the dashboard on its home page, two-factor sign-in
    # when STAFF_REQUIRE_2FA says so (core/admin_site.py).
    "core.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "core",
    "products",
    "companies",
    "webhooks",
    "consent",
    "operations",
    "bankfeeds",
    "syncsettings",
    "audit",
    "approvals",
    "syncmigration",
    "django_otp",
    "core.apps.TotpDevicesConfig",  # django_otp.plugins.otp_totp
    "core.apps.RecoveryCodesConfig",  # django_otp.plugins.otp_static
    "django_otp_webauthn",
    "core.apps.SignInLockoutsConfig",  # axes
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Codat's deliveries stop here: the rest of the chain is for browsers.
    "portal.machine_endpoints.MachineEndpointsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'portal.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the worker and beat share the file without "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # No JIT compilation: PostgreSQL turns it on for queries it estimates as costly, which a
    # list over 100,000 companies is, and compiling then took longer than running (0.66 s of a
    # 1.2 s search in bench/admin_scale.py). Short OLTP queries never gain from it.
    if env.bool("DATABASE_JIT_OFF", default=True):
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = (options.get("options", "") + " -c jit=off").strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out account before a password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Sign-in with a passkey (a WebAuthn credential the staff member enrolled).
    "django_otp_webauthn.backends.WebAuthnBackend",
]

# --- Staff sign-in: throttling, lockout, two-factor --------------------------------------------
# Twenty wrong passwords for one account lock it (whatever the address they come from: an
# attacker spreads guesses over many), and twenty from one address lock that address, for
# AXES_COOLOFF_HOURS, or until an admin runs
# `manage.py axes_reset_username NAME`. Each lock is in the audit trail.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=20)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_COOLOFF_TIME = timedelta(hours=env.float("AXES_COOLOFF_HOURS", default=1.0))
AXES_RESET_ON_SUCCESS = True
# Without django-ipware, axes reads REMOTE_ADDR, which portal/proxies.py corrects behind proxies.
# Staff sign in with a password and a TOTP code (or one of their recovery codes) when this is
# on: production turns it on unless told otherwise, development and tests leave it off.
STAFF_REQUIRE_2FA = env.bool("STAFF_REQUIRE_2FA", default=False)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Codat portal")
# The admin never shows a device's secret or its QR code: `manage.py staff_2fa_enrol` prints
# them once, to the person enrolling.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Passkeys (WebAuthn, django-otp-webauthn) sign staff in beside the TOTP code: a passkey is a
# second factor in itself (the device and its PIN or fingerprint). The relying party id is the
# portal's domain (passkeys are bound to it: changing it makes staff enrol again); the allowed
# origins are the addresses staff open the portal at, https:// but for localhost.
OTP_WEBAUTHN_RP_ID = env.str("OTP_WEBAUTHN_RP_ID", default="localhost")
OTP_WEBAUTHN_RP_NAME = env.str("OTP_WEBAUTHN_RP_NAME", default="Codat portal")
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list(
    "OTP_WEBAUTHN_ALLOWED_ORIGINS", default=["http://localhost:8000"]
)
LOGIN_REDIRECT_URL = "/admin/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# E-mail (consent links): EMAIL_URL such as smtp+tls://user:pass@host:587. In development the
# mails are printed where `make run` runs.
vars().update(
    env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
)

# --- Codat -----------------------------------------------------------------------------------
CODAT_BASE_URL = env.str("CODAT_BASE_URL", default="http://127.0.0.1:8765")
CODAT_API_KEY = env.str("CODAT_API_KEY", default="")
# Several secrets, comma-separated, so a signing secret can be rotated without a gap.
CODAT_WEBHOOK_SECRETS = env.list("CODAT_WEBHOOK_SECRETS", default=[])
CODAT_CONNECT_TIMEOUT = env.float("CODAT_CONNECT_TIMEOUT", default=3.05)
CODAT_READ_TIMEOUT = env.float("CODAT_READ_TIMEOUT", default=30.0)

# --- The fleet rate limiter and durable operations (operations/) --------------------------------
# Budgets shared by every worker and process through Redis (operations/limiter.py). Codat allows
# 1,000 requests a minute per client, 1,000 x (1 + active connected companies) a day (reset
# 00:00 UTC) and 10 concurrent requests per company. PER_DAY 0 means "Codat's formula".
CODAT_RATE_LIMIT_PER_MINUTE = env.int("CODAT_RATE_LIMIT_PER_MINUTE", default=1000)
CODAT_RATE_LIMIT_PER_DAY = env.int("CODAT_RATE_LIMIT_PER_DAY", default=0)
CODAT_RATE_LIMIT_PER_COMPANY = env.int("CODAT_RATE_LIMIT_PER_COMPANY", default=10)
# The limiter spends this fraction less than the per-minute ceiling: requests reach Codat with a
# few milliseconds of jitter, and a budget spent exactly at the ceiling would cross Codat's window.
CODAT_RATE_LIMIT_HEADROOM = env.float("CODAT_RATE_LIMIT_HEADROOM", default=0.01)
# A read overdue by more than this is flagged stale (operations/selectors.py).
CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES = env.int(
    "CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES", default=120
)
CODAT_OPERATIONS_MAX_ATTEMPTS = env.int("CODAT_OPERATIONS_MAX_ATTEMPTS", default=8)
CODAT_OPERATIONS_RETRY_BASE_SECONDS = env.float("CODAT_OPERATIONS_RETRY_BASE_SECONDS", default=5.0)
CODAT_OPERATIONS_RETRY_MAX_SECONDS = env.float("CODAT_OPERATIONS_RETRY_MAX_SECONDS", default=3600.0)
# How often beat sweeps for due and stuck operations, and when a claimed row counts as stuck
# (its worker died): longer than any live task can run, i.e. the hard time limit.
CODAT_OPERATIONS_SWEEP_SECONDS = env.int("CODAT_OPERATIONS_SWEEP_SECONDS", default=15)
CODAT_OPERATIONS_MAX_ABANDONED_CLAIMS = env.int("CODAT_OPERATIONS_MAX_ABANDONED_CLAIMS", default=3)
CODAT_OPERATIONS_STUCK_SECONDS = env.int(
    "CODAT_OPERATIONS_STUCK_SECONDS",
    default=env.int("CELERY_TASK_TIME_LIMIT", default=150) + 30,
)
# A sync migration's step 2 waits an hour, or the most frequent previous client-level schedule's
# period if longer (syncmigration/services.py). A number of seconds here replaces that wait (tests
# and benchmarks); the check that no client-level read still runs is made whatever it is.
SYNC_MIGRATION_WAIT_SECONDS = env.int("SYNC_MIGRATION_WAIT_SECONDS", default=None)
# A bank-transactions push still Pending this long is asked about (a missed write webhook).
BANK_FEEDS_POLL_PENDING_SECONDS = env.int("BANK_FEEDS_POLL_PENDING_SECONDS", default=60)
# How long the SMB's link to the bank-feed mapping page works.
BANK_FEEDS_MAPPING_LINK_DAYS = env.int("BANK_FEEDS_MAPPING_LINK_DAYS", default=7)

# --- Redis and Celery ------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Work that must not be lost: acknowledge only after the task ran, and give a task back to the
# queue when its worker process dies under it (the task itself must be idempotent).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
# An unacknowledged message returns to the queue after this long when its worker vanished.
# It must exceed the hard time limit; long waits (Retry-After until midnight) live in
# PostgreSQL rows, never in countdowns longer than this.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_DEFAULT_QUEUE = "portal"
CELERY_TASK_TRACK_STARTED = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Cache (per-IP rate limits of the public consent pages) -----------------------------------
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "portal",
    }
}

# --- Consent (consent/) ----------------------------------------------------------------------
# The enterprise that asks for consent: named on every consent page and receipt.
CONSENT_CONTROLLER_NAME = env.str("CONSENT_CONTROLLER_NAME", default="Example Lender Ltd")
CONSENT_CONTROLLER_CONTACT = env.str("CONSENT_CONTROLLER_CONTACT", default="privacy@example.com")
CONSENT_POLICY_URL = env.str("CONSENT_POLICY_URL", default="")
CONSENT_JURISDICTION = env.str("CONSENT_JURISDICTION", default="GB")
CONSENT_DEFAULT_RETENTION = env.str(
    "CONSENT_DEFAULT_RETENTION",
    default="We keep this data while you use this service and delete it within 90 days "
    "after you withdraw consent or close your account, unless the law requires us to keep it.",
)
# The same retention in days, for texts published without one: consent evidence of an erased
# company is deleted this long after the erasure (six years: the limitation period for claims in
# England and Wales, within which the evidence may be needed).
CONSENT_DEFAULT_RETENTION_DAYS = env.int("CONSENT_DEFAULT_RETENTION_DAYS", default=2190)
# Links in e-mails and campaign CSVs are absolute: this is the public address of the portal.
# `make run` sets it to its own web server's address (PORT) when it is not given.
CONSENT_BASE_URL = env.str("CONSENT_BASE_URL", default="http://127.0.0.1:8000")
CONSENT_EMAIL_FROM = env.str("CONSENT_EMAIL_FROM", default="no-reply@example.com")
# How long a one-time consent link stays valid.
CONSENT_LINK_TTL = timedelta(days=env.float("CONSENT_LINK_TTL_DAYS", default=7))
# How long the "manage my consent" link in receipts and e-mails keeps working.
CONSENT_MANAGE_LINK_TTL = timedelta(days=env.float("CONSENT_MANAGE_LINK_TTL_DAYS", default=400))
# Consent older than this many days stops refreshes until the SMB reconfirms (90 suits UK open
# banking, FCA PS21/19). Unset: off.
CONSENT_RECONFIRM_AFTER_DAYS = env.int("CONSENT_RECONFIRM_AFTER_DAYS", default=None)
# Link exchanges per client IP: "N/s", "N/m" or "N/h".
CONSENT_RATE_LIMIT = env.str("CONSENT_RATE_LIMIT", default="20/m")
# Reverse proxies in front of the portal that append to X-Forwarded-For (portal/proxies.py).
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)

# Consent and manage links' tokens are cut out of every log line, the development server's
# request log included (portal/log_privacy.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"consent_tokens": {"()": "portal.log_privacy.ConsentTokenFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["consent_tokens"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["consent_tokens"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own console handler for these would print unfiltered; the root's filters.
        "django": {"handlers": [], "level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
}
# DEBUG error pages hide the broker's and other URLs with credentials in them.
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.log_privacy.PortalExceptionReporterFilter"

# --- REST API (api/) ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    # An API key first, so a request without credentials is answered 401 with its challenge;
    # staff sessions work too (the browsable API), with Django's CSRF check on writes.
    "DEFAULT_AUTHENTICATION_CLASSES": (
        "api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ),
    "DEFAULT_PERMISSION_CLASSES": ("api.permissions.HasApiScope",),
    "DEFAULT_THROTTLE_CLASSES": ("api.ratelimit.ApiRateThrottle",),
    "DEFAULT_RENDERER_CLASSES": (
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ),
    "DEFAULT_PARSER_CLASSES": ("api.parsers.StorableJSONParser",),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Codat portal API",
    "DESCRIPTION": (
        "Companies, their products and consent, the operations that change Codat, the webhook "
        "ledger and the product catalogue. Authenticate with `Authorization: Bearer <API key>`."
    ),
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OperationKindEnum": "operations.models.OperationKind.choices",
        "OperationStateEnum": "operations.models.OperationState.choices",
        "ProductKindEnum": "products.models.ProductKind.choices",
        "WebhookEventStateEnum": "webhooks.models.EventState.choices",
        "DataTypeEnum": "codat.data_types.ALL_DATA_TYPES",
        "BankFeedPlatformEnum": "bankfeeds.models.Platform.values",
    },
    "POSTPROCESSING_HOOKS": (
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_problems_and_idempotency",
    ),
    # Served from the portal's own static files, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Requests per API key (or staff session) per window: "600/m", "50/s", "10000/h".
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="600/m")
# How long a POST's Idempotency-Key is remembered with its first response.
API_IDEMPOTENCY_TTL_SECONDS = env.int("API_IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
# A new key expires after this many days unless the admin who makes it says otherwise.
API_KEY_DEFAULT_DAYS = env.int("API_KEY_DEFAULT_DAYS", default=90)
