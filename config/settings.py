"""
Settings come from the environment (twelve-factor). With nothing set, the project runs on SQLite
and an embedded filesystem Celery broker; production sets DATABASE_URL, CELERY_BROKER_URL and the
secrets. docs/operations.md lists every variable.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.envfile import read_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# The zero-config demo (`make run`) keeps the secrets it generated, and its demo API key, in this
# file (`demo_access` writes it). Only a DEBUG process reads it, and the environment always wins.
DEMO_ENV_FILE = VAR_DIR / "demo.env"
DEMO_SECRETS = ("INTERNAL_ADMIN_API_KEY", "STRIPE_WEBHOOK_SECRET")


DEMO_SECRETS_FROM_FILE = []  # which of them this process took from the file
if DEBUG:
    for _name, _value in read_env_file(DEMO_ENV_FILE).items():
        if _name in DEMO_SECRETS and not os.environ.get(_name):  # unset or blank (`KEY=` in .env)
            os.environ[_name] = _value
            DEMO_SECRETS_FROM_FILE.append(_name)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "core",
    "tenants",
    "proactive",
    "alerts",
    "marketplace",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# --- Database -----------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The laptop default: web, worker and beat share one file. WAL and IMMEDIATE transactions
    # make concurrent writers wait for each other instead of failing with "database is locked".
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["config.formats"]  # the admin shows times as 2026-11-26 14:00:00 UTC

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security (production values unless DEBUG) -------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health/?$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
X_FRAME_OPTIONS = "DENY"
# Request limits (core.middleware): larger bodies are a 413, longer URLs a 414, in the API's error shape.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
MAX_URL_LENGTH = 2048
APPEND_SLASH = False  # every route answers with and without the slash; see core.routing
CSRF_FAILURE_VIEW = "core.views.csrf_failure"

# --- Product secrets and switches --------------------------------------------------------------
INTERNAL_ADMIN_API_KEY = os.environ.get("INTERNAL_ADMIN_API_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300  # a signature's time may be this far in the past or the future
# Accept billing events WITHOUT verifying them when no STRIPE_WEBHOOK_SECRET is set: only for
# local experiments, only with DEBUG on (a production process refuses to start with it: core.E003).
STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED = env_bool("STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED", False)
POSTHOG_API_KEY = os.environ.get("POSTHOG_API_KEY", "")
POSTHOG_HOST = os.environ.get("POSTHOG_HOST", "https://us.i.posthog.com")
TELEMETRY_DISABLED_TENANTS = frozenset(env_list("TELEMETRY_DISABLED_TENANTS"))

# --- Outbound requests (core.outbound: what notification channels send with) -------------------
# Let channels send to loopback, private, link-local (cloud metadata) and other non-public
# addresses. Off in production: a tenant's webhook URL must not reach our own network. For local
# development with a receiver on this machine, and for the test suite (config/settings_test.py).
OUTBOUND_ALLOW_PRIVATE_ADDRESSES = env_bool("OUTBOUND_ALLOW_PRIVATE_ADDRESSES", False)

# --- REST framework and OpenAPI ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The first class's WWW-Authenticate header is what makes DRF answer 401, not 403.
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.AdminKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "core.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.JsonUnlessAskedOtherwise",
    "EXCEPTION_HANDLER": "core.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.openapi.ApiAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    "NON_FIELD_ERRORS_KEY": "nonFieldErrors",
    "COERCE_DECIMAL_TO_STRING": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Proactive Insights API",
    "DESCRIPTION": "Trigger rules, alerts, notifications, marketplace widgets and usage billing.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Docstrings are for the people who maintain the code; operations and fields are described for
    # API users with extend_schema(summary=, description=) and help_text.
    "DISABLE_DOCSTRING_DESCRIPTIONS": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["core.openapi.drop_slashed_duplicates"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "AlertStatusEnum": "alerts.models.AlertStatus",
        "SeverityEnum": "alerts.models.Severity",
        "RuleTypeEnum": "alerts.models.RuleType",
        "AlertTypeEnum": "alerts.models.AlertType",
        "RuleHealthEnum": "proactive.models.RuleHealth",
        "HealthStatusEnum": ["ok", "unavailable"],
        "AnomalyMethodEnum": "proactive.models.AnomalyMethod",
        "DirectionEnum": "proactive.models.Direction",
        "RobustMethodEnum": ["robust", "seasonal"],  # the methods whose evidence gives a median and MAD
        "FiringDirectionEnum": ["up", "down"],  # the direction an evidence names when it is not both
        "ChannelEventEnum": "alerts.models.ChannelEvent",
        "ChannelKindEnum": "alerts.models.ChannelKind",
        "ChannelDigestEnum": "alerts.models.ChannelDigest",
        "DeliveryEventEnum": "alerts.models.DeliveryEvent",
        "DeliveryStatusEnum": "alerts.models.DeliveryStatus",
    },
}

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "store_processed": False,
        # Exchange tables; kombu's default is ./control, which put broker state in the work tree.
        "control_folder": str(VAR_DIR / "celery" / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Logging -----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Everything goes through the root handler once: without this, Django's own DEBUG console
        # handler on "django" printed each line a second time.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # A 4xx is the client's mistake, answered in the error shape and written once by the
        # access log; 5xx (with their tracebacks) are logged here.
        "django.request": {"level": "ERROR"},
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Product ------------------------------------------------------------------------------------
# Where built-in metrics come from (proactive.metric_providers): each provider declares its namespace
# and metric names. Anything else a rule names is a tenant's custom metric.
METRIC_PROVIDERS = ["billing.metrics.UsageSnapshotMetricProvider"]
# Where alert news goes (alerts.channels). The in-app channel backs GET /notifications.
ALERT_NOTIFICATION_CHANNELS = [
    "alerts.channels.InAppChannel",
    "alerts.deliveries.TenantChannels",
    "proactive.alert_listeners.RulesWokenByResolves",
]
# A rule whose inputs did not change is still evaluated at least this often (minutes).
ENGINE_MAX_STALENESS_MINUTES = int(os.environ.get("ENGINE_MAX_STALENESS_MINUTES", "60"))
# How many chunks the Celery workers evaluate at once, all machines together (the sum of their
# --concurrency; the Procfile's WORKER_CONCURRENCY by default): a tick splits into a multiple of it.
# Celery's own "auto" or 0 mean a process per core, and so does anything here that is not a count.
_engine_concurrency = os.environ.get("ENGINE_CONCURRENCY", os.environ.get("WORKER_CONCURRENCY", "2")).strip()
ENGINE_CONCURRENCY = int(_engine_concurrency) if _engine_concurrency.isascii() and _engine_concurrency.isdigit() else 0
if ENGINE_CONCURRENCY < 1:
    ENGINE_CONCURRENCY = os.cpu_count() or 1
# Alerts a tenant's rules may raise per UTC hour (Tenant.alert_budget_per_hour overrides it): the
# firings over it are summed up in one overflow alert (alerts.services.alerts_raise).
ALERT_BUDGET_PER_HOUR = int(os.environ.get("ALERT_BUDGET_PER_HOUR", "1000"))
# A chunk that finds the database gone is retried after 5, 10, 20, 40 and 60 s (proactive.tasks.
# outage_retry_delays): the retries span 135 s, so a 60 s outage loses no evaluation.
ENGINE_RETRY_BACKOFF_SECONDS = int(os.environ.get("ENGINE_RETRY_BACKOFF_SECONDS", "5"))
ENGINE_RETRY_BACKOFF_MAX_SECONDS = int(os.environ.get("ENGINE_RETRY_BACKOFF_MAX_SECONDS", "60"))
ENGINE_MAX_RETRIES = int(os.environ.get("ENGINE_MAX_RETRIES", "5"))
# The tenants' own channels (alerts.deliveries): where a notice links to, where email comes from and
# goes through, and PagerDuty's Events API v2.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "alerts@localhost")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
PAGERDUTY_EVENTS_URL = os.environ.get("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue")
# Called in the transaction of a tenant's settings change (tenants.services.tenant_update) as
# hook(tenant=, changed=, now=): the apps above tenants that depend on a setting, which tenants cannot import.
TENANT_SETTINGS_CHANGED_HOOKS = [
    "proactive.services.trigger_rules_reschedule_for_tenant",
    "alerts.services.channels_reschedule_for_tenant",
]
# Called in the transaction of a change to a completed day's usage (billing.services.usage) as
# hook(keys=[(tenant id, day)]); today's running counts are not announced.
USAGE_CHANGED_HOOKS = ["proactive.services.usage_metric_wakes_record"]
