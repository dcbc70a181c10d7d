"""Ports for the servers tests start on loopback."""

import socket


def free_port() -> int:
    """A loopback port nothing listens on now (the system's pick, so parallel runs differ)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
