"""Production settings pass Django's deployment checks; a missing secret stops the start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent

PRODUCTION_ENV = {
    "SECRET_KEY": "a-long-random-production-key-for-the-check-only-7Qk2mZ9pXw4rT8vY1nB6",
    "ALLOWED_HOSTS": "portal.bank.example",
    "DATABASE_URL": "sqlite:///:memory:",
    "CODAT_BASE_URL": "https://api.codat.io",
    "CODAT_API_KEY": "a-codat-api-key-for-the-check-only",
    "CONSENT_BASE_URL": "https://portal.bank.example",
}
# Variables a developer's or the tests' shell may hold that would decide these tests' outcome.
NOT_INHERITED = (
    "DEBUG",
    "SECRET_KEY",
    "DJANGO_SETTINGS_MODULE",
    "CODAT_BASE_URL",
    "CODAT_API_KEY",
    "CONSENT_BASE_URL",
)


def run_manage(*args, env_overrides):
    return run_python("manage.py", *args, env_overrides=env_overrides)


def run_python(*args, env_overrides):
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        "--settings=portal.settings.production",
        env_overrides=PRODUCTION_ENV,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_check_deploy_flags_the_development_settings():
    """The check is real: the development settings, with DEBUG on, do not pass it."""
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        "--settings=portal.settings.dev",
        env_overrides={"DATABASE_URL": "sqlite:///:memory:"},
    )
    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "SECRET_KEY"}
    result = run_manage("check", "--settings=portal.settings.production", env_overrides=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_production_serves_only_https_with_secure_cookies():
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_HSTS_SECONDS >= 31536000, s.ALLOWED_HOSTS)"
    )
    result = run_manage(
        "shell", "-c", code, "--settings=portal.settings.production", env_overrides=PRODUCTION_ENV
    )
    assert result.stdout.strip().splitlines()[-1] == (
        "False True True True True ['portal.bank.example']"
    )


@pytest.mark.parametrize(
    "variable, value, refusal",
    [
        ("CODAT_BASE_URL", None, "CODAT_BASE_URL is 'http://127.0.0.1:8765', the local sandbox"),
        ("CODAT_BASE_URL", "https://localhost:8765", "the local sandbox"),
        ("CODAT_BASE_URL", "http://api.codat.io", "Codat is called over HTTPS only"),
        ("CODAT_API_KEY", None, "CODAT_API_KEY is empty"),
        ("CODAT_API_KEY", "  ", "CODAT_API_KEY is empty"),
        ("CONSENT_BASE_URL", None, "CONSENT_BASE_URL is 'http://127.0.0.1:8000'"),
        ("CONSENT_BASE_URL", "http://portal.bank.example", "public HTTPS address"),
        ("CONSENT_BASE_URL", "https://127.0.0.1:8443", "public HTTPS address"),
    ],
)
def test_production_refuses_to_start_with_a_development_value(variable, value, refusal):
    env = {key: v for key, v in PRODUCTION_ENV.items() if key != variable}
    if value is not None:
        env[variable] = value
    result = run_manage("check", "--settings=portal.settings.production", env_overrides=env)
    assert result.returncode != 0
    assert "Production settings refuse to start" in result.stderr
    assert refusal in result.stderr


SETTINGS_IN_USE = (
    "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"
)


def test_manage_py_without_a_settings_module_runs_the_production_settings():
    result = run_manage("shell", "-c", SETTINGS_IN_USE, env_overrides=PRODUCTION_ENV)
    assert result.stdout.strip().splitlines()[-1] == "portal.settings.production False"


def test_manage_py_without_a_settings_module_or_configuration_refuses_to_start():
    result = run_manage("check", env_overrides={"DATABASE_URL": "sqlite:///:memory:"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_the_celery_app_without_a_settings_module_loads_the_production_settings():
    code = "import portal.celery; " + SETTINGS_IN_USE
    started = run_python("-c", code, env_overrides=PRODUCTION_ENV)
    assert started.stdout.strip() == "portal.settings.production False", started.stderr
    refused = run_python("-c", code, env_overrides={"SECRET_KEY": "x" * 50})
    assert refused.returncode != 0
    assert "Production settings refuse to start" in refused.stderr
