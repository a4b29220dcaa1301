"""Settings for the test suite: the real local PostgreSQL and Redis unless the environment says otherwise."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/proactive_insights")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("INTERNAL_ADMIN_API_KEY", "test-internal-admin-key")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_test_secret")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")  # threads of the live server close theirs
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")  # the test client and live_server
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_ADDRESSES", "1")  # channels' tests send to receivers on 127.0.0.1

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True  # serve from the finders; the suite does not run collectstatic
