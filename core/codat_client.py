"""The one Codat client of each process, for every app that calls Codat (through operations)."""

import os

from django.conf import settings

from codat.client import CodatClient

_clients: dict[tuple, CodatClient] = {}


def codat_client() -> CodatClient:
    """One client, with its connection pool, per process, base URL and key: a forked worker gets
    its own, and tests that point the settings at another sandbox get a client for it."""
    key = (os.getpid(), settings.CODAT_BASE_URL, settings.CODAT_API_KEY)
    client = _clients.get(key)
    if client is None:
        client = CodatClient(
            settings.CODAT_BASE_URL,
            settings.CODAT_API_KEY,
            timeout=(settings.CODAT_CONNECT_TIMEOUT, settings.CODAT_READ_TIMEOUT),
        )
        _clients[key] = client
    return client
