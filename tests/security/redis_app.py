"""App served by real server processes in test_redis.py (configured through the environment)."""

from __future__ import annotations

import os

from transom import App, Settings
from transom.security import Security, SecurityConfig, SessionConfig, SessionDataDep, limit
from transom.security.backends.redis import RedisRateLimitBackend, RedisSessionBackend

REDIS_URL = os.environ["TRANSOM_TEST_REDIS_URL"]
PREFIX = os.environ["TRANSOM_TEST_REDIS_PREFIX"]

app = App(Settings(secret_key=os.environ["TRANSOM_SECRET_KEY"]))
app.install(
    Security(
        SecurityConfig(
            sessions=SessionConfig(backend=RedisSessionBackend(REDIS_URL, prefix=PREFIX + "s:")),
            rate_limit_backend=RedisRateLimitBackend(REDIS_URL, prefix=PREFIX + "r:"),
        )
    )
)


@app.get("/limited")
@limit("5/minute")
async def limited() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/set")
async def set_value(session: SessionDataDep, value: str) -> dict[str, int]:
    session["value"] = value
    return {"pid": os.getpid()}


@app.get("/get")
async def get_value(session: SessionDataDep) -> dict[str, object]:
    return {"pid": os.getpid(), "value": session.get("value")}
