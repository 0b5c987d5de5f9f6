"""Races, out-of-range input and a database outage: spec-shaped 4xx/503, never a 500."""

from __future__ import annotations

import asyncio

import httpx

from transom import App
from transom.db import Database, DatabaseConfig
from transom.testing import TestClient

from .conftest import PASSWORD, check, error_messages, new_article, register


def test_racing_registrations_get_one_account_and_422s(app: App) -> None:
    """Whether the handler's check or the unique constraint stops them, the losers get 422."""
    body = {"user": {"username": "jake", "email": "jake@example.com", "password": PASSWORD}}

    async def race() -> list[httpx.Response]:
        async with app.async_test_client() as client:
            return await asyncio.gather(*(client.post("/api/users", json=body) for _ in range(4)))

    responses = asyncio.run(race())
    assert sorted(r.status_code for r in responses) == [201, 422, 422, 422]
    for response in responses:
        if response.status_code == 422:
            check(response, "POST", "/users", 422)
            taken = {"username has already been taken", "email has already been taken"}
            assert set(error_messages(response)) <= taken, response.json()


def test_out_of_range_ids_are_not_found(client: TestClient) -> None:
    jake = register(client, "jake")
    new_article(client, jake, "Talk")
    path = "/articles/{slug}/comments/{id}"
    for comment_id in ["99999999999999999999", "2147483648", "-1", "0"]:
        response = client.delete(f"/api/articles/talk/comments/{comment_id}", headers=jake)
        check(response, "DELETE", path, 404)


def test_a_database_outage_is_a_503_with_retry_after(app: App, client: TestClient) -> None:
    database = Database.of(app)
    working = database.config
    # Nothing listens on port 1: every connection is refused.
    database.configure(DatabaseConfig(url="postgresql://conduit@127.0.0.1:1/down"))
    try:
        response = client.get("/api/tags")
    finally:
        database.configure(working)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert error_messages(response)
    assert client.get("/api/tags").status_code == 200  # back once the database is
