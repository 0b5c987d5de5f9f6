"""Reachability checks for the live servers some tests need (databases now, Redis later).

``require_service("PostgreSQL", "127.0.0.1", 5432)`` skips the calling test with one clear line
when the server can't be reached, except under ``CI=true``, where a missing server is a broken
environment and fails the run instead of quietly skipping half the suite.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

__all__ = ["is_ci", "require_service", "service_fixture", "service_reachable"]

_probed: dict[tuple[str, int], bool] = {}


def is_ci() -> bool:
    """True when the ``CI`` environment variable says we run in continuous integration."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def service_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds (cached for the test session)."""
    key = (host, port)
    if key not in _probed:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                _probed[key] = True
        except OSError:
            _probed[key] = False
    return _probed[key]


def require_service(name: str, host: str, port: int) -> None:
    """Skip the current test (fail it under ``CI=true``) unless ``name`` answers on host:port.

    Args:
        name: Human name of the server, used in the message ("PostgreSQL").
        host: Host to connect to.
        port: TCP port.
    """
    if service_reachable(host, port):
        return
    message = f"{name} at {host}:{port} unreachable"
    if is_ci():
        pytest.fail(f"{message} (CI=true: required services must be running)", pytrace=False)
    pytest.skip(message)


def service_fixture(name: str, host: str, port: int) -> Callable[[], None]:
    """Make a fixture that requires the service, for ``conftest.py`` files.

    Example:
        >>> redis = service_fixture("Redis", "127.0.0.1", 6379)  # doctest: +SKIP
    """

    @pytest.fixture
    def _require() -> None:
        require_service(name, host, port)

    return _require
