"""Fixtures for the realtime tests (WebSockets, server-sent events, channels)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/_services.py


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
