"""The production settings, checked the way an operator meets them: in a fresh process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k" * 20 + "-production-like-secret-key-with-enough-entropy-0123456789",
    "ALLOWED_HOSTS": "insights.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "INTERNAL_ADMIN_API_KEY": "an-internal-admin-key",
    "STRIPE_WEBHOOK_SECRET": "whsec_production",
}


def run(args, **overrides):
    # Only what a process needs to run: nothing of the test run's own settings leaks in.
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(PRODUCTION_ENV)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("missing", "check_id"),
    [("INTERNAL_ADMIN_API_KEY", "core.E001"), ("STRIPE_WEBHOOK_SECRET", "core.E002")],
)
def test_missing_secret_stops_management_commands(missing, check_id):
    result = run(["manage.py", "check"], **{missing: None})

    assert result.returncode != 0
    assert check_id in result.stderr
    assert f"{missing} is not set and DEBUG is off." in result.stderr


def test_missing_secret_stops_the_web_process():
    result = run(["-c", "import config.wsgi"], INTERNAL_ADMIN_API_KEY=None)

    assert result.returncode != 0
    assert "core.E001" in result.stderr


def test_missing_secrets_are_fine_in_debug():
    result = run(["manage.py", "check"], DEBUG="1", INTERNAL_ADMIN_API_KEY=None, STRIPE_WEBHOOK_SECRET=None)

    assert result.returncode == 0, result.stderr


def test_the_insecure_webhook_setting_stops_a_production_process():
    result = run(["manage.py", "check"], STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED="1")

    assert result.returncode != 0
    assert "core.E003" in result.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (
            "postgres://postgres@127.0.0.1:5432/no_such_database_here",
            'database "no_such_database_here" does not exist'
            " — create it (createdb -h 127.0.0.1 -U postgres no_such_database_here)",
        ),
        ("postgres://postgres@127.0.0.1:1/x", "Connection refused — is the server running there?"),
    ],
)
def test_a_database_that_cannot_be_reached_is_one_clear_line(url, says):
    result = run(["manage.py", "migrate"], DATABASE_URL=url)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot use the PostgreSQL database")
    assert says in result.stderr


def test_a_missing_secret_key_is_one_clear_line():
    result = run(["manage.py", "migrate"], SECRET_KEY=None)

    assert result.returncode == 1
    assert result.stderr == (
        "error: SECRET_KEY must be set when DEBUG is off. Locally, run with DEBUG=1; in production, "
        "see docs/operations.md.\n"
    )


def test_check_deploy_refuses_private_outbound_addresses_in_production():
    result = run(["manage.py", "check", "--deploy"], OUTBOUND_ALLOW_PRIVATE_ADDRESSES="1")

    assert result.returncode != 0
    assert "core.E004" in result.stderr
    assert "OUTBOUND_ALLOW_PRIVATE_ADDRESSES is on and DEBUG is off." in result.stderr


def test_private_outbound_addresses_are_fine_for_development():
    result = run(["manage.py", "check", "--deploy"], OUTBOUND_ALLOW_PRIVATE_ADDRESSES="1", DEBUG="1")

    assert "core.E004" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "2"),
        ({"WORKER_CONCURRENCY": "8"}, "8"),
        ({"WORKER_CONCURRENCY": "8", "ENGINE_CONCURRENCY": "16"}, "16"),
        ({"WORKER_CONCURRENCY": "auto"}, str(os.cpu_count())),  # Celery's own: a process per core
        ({"WORKER_CONCURRENCY": "0"}, str(os.cpu_count())),
    ],
)
def test_the_engine_cuts_a_tick_for_the_workers_concurrency(environment, expected):
    result = run(
        ["-c", "import django; django.setup(); from django.conf import settings; print(settings.ENGINE_CONCURRENCY)"],
        **{"WORKER_CONCURRENCY": None, "ENGINE_CONCURRENCY": None, **environment},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
