"""No N+1: a page of 20 articles (or comments) costs the same queries as a page of 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from transom import App
from transom.db import Database
from transom.testing import TestClient

from .conftest import new_article, register


@contextmanager
def counting(app: App) -> Iterator[list[str]]:
    """The SQL statements run meanwhile."""
    statements: list[str] = []
    engine = Database.of(app).engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def queries(app: App, client: TestClient, url: str, headers: dict[str, str]) -> list[str]:
    with counting(app) as statements:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return statements


def test_lists_cost_the_same_for_1_and_20_items(app: App, client: TestClient) -> None:
    reader = register(client, "reader")
    authors = [register(client, f"author{n}") for n in range(4)]
    new_article(client, authors[0], "First", ["a", "b"])
    client.post("/api/profiles/author0/follow", headers=reader)
    client.post("/api/articles/first/comments", json={"comment": {"body": "c"}}, headers=reader)
    urls = ["/api/articles", "/api/articles?tag=a", "/api/articles/feed"]
    comments = "/api/articles/first/comments"
    before = {url: len(queries(app, client, url, reader)) for url in [*urls, comments]}
    anonymous_before = len(queries(app, client, "/api/articles", {}))

    for n in range(19):
        author = authors[n % 4]
        new_article(client, author, f"More {n}", ["a", f"t{n}", f"u{n}"])
        client.post(f"/api/articles/more-{n}/favorite", headers=reader)
        client.post(comments, json={"comment": {"body": f"c{n}"}}, headers=author)
    for n in range(1, 4):
        client.post(f"/api/profiles/author{n}/follow", headers=reader)

    listed = client.get("/api/articles", headers=reader).json()
    assert listed["articlesCount"] == 20
    assert len(listed["articles"]) == 20
    assert len(client.get(comments).json()["comments"]) == 20
    after = {url: len(queries(app, client, url, reader)) for url in [*urls, comments]}
    assert after == before
    # Anonymous: the count, the page (author, favourites and follows in it), the page's tags.
    assert len(queries(app, client, "/api/articles", {})) == anonymous_before == 3
    # With a token the auth battery adds one, the user: the revoked-token check ran on the
    # token's first request and its answer is cached (JWTConfig.revocation_cache_ttl).
    assert after["/api/articles"] == 4
