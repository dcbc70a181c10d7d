"""Sync settings tests run the operation worker's function in this process, over HTTP to the
sandbox; the consent gate is the operations suite's stand-in (every company consents unless a
test refuses it), since consent has its own suite."""

from tests.operations.conftest import no_celery, refuse_consent  # noqa: F401
