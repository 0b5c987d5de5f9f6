"""Fixtures for the production tests (health, metrics, real servers): a throw-away PostgreSQL
database per test run, the shared servers' addresses, and a unique prefix for keys."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/_services.py

from _services import require_service

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test run (``transom_test_prod_<random>``), dropped after."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"transom_test_prod_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{POSTGRES}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"{POSTGRES}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_required() -> None:
    require_service("Redis", "127.0.0.1", 6379)


@pytest.fixture
def amqp_required() -> None:
    require_service("RabbitMQ", "127.0.0.1", 5672)


@pytest.fixture
def prefix() -> str:
    return f"transom-test-prod-{uuid.uuid4().hex[:10]}"
