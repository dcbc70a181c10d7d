"""The test database: its URL for the processes tests start, and its drop at the end, which no
stray session may hold up."""

import time
import warnings

import pytest


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and before it is dropped, a wait for the processes the
    tests started (Celery pool processes, gunicorn workers) to have left it.

    They disconnect a moment after they exit, and DROP DATABASE refuses to run while anyone is
    connected ("being accessed by other users"), which left the test database behind.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        others = _other_sessions(connection)
        deadline = time.monotonic() + 10
        while others and time.monotonic() < deadline:
            time.sleep(0.1)
            others = _other_sessions(connection)
        if others:
            # Still there after 10 s: something the tests started outlived them. Say what it
            # was, and end it, so that the database can go.
            warnings.warn(f"sessions left on the test database: {others}", stacklevel=1)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


def database_url_for_worker() -> str:
    """The URL of the test database that pytest-django created, for a process the tests start
    (a Celery worker, gunicorn)."""
    from django.db import connection

    config = connection.settings_dict
    if config["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{config['NAME']}"


def _other_sessions(connection) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, left(query, 80) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchall()
