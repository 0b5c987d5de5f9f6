"""Constraint violations answer 409/422 naming the field, on every engine; never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert

from transom import App, Settings
from transom.db import Database, Session, classify, setup

from .models import Author, Post

pytestmark = pytest.mark.anyio


def make_app(database: Database) -> App:
    app = App(Settings(secret_key="test-secret"))
    setup(app, database.config, metadata=database.metadatas)

    @app.post("/authors")
    async def create_author(body: dict[str, Any], db: Session) -> dict[str, int]:
        author = Author(**body)
        db.add(author)
        await db.flush()
        return {"id": author.id}

    @app.post("/authors-at-commit")
    async def create_author_lazily(body: dict[str, Any], db: Session) -> None:
        db.add(Author(**body))  # the violation surfaces at the request's commit

    @app.post("/posts")
    async def create_post(body: dict[str, Any], db: Session) -> None:
        db.add(Post(**body))
        await db.flush()

    @app.delete("/authors/{author_id:int}")
    async def delete_author(author_id: int, db: Session) -> None:
        await db.execute(delete(Author).where(Author.id == author_id))

    @app.post("/raw-author")
    async def raw_author(body: dict[str, Any]) -> None:
        # Outside the injected session: the app-level handler answers.
        async with app.extensions["transom.db"].engine.begin() as conn:
            await conn.execute(insert(Author).values(**body))

    return app


def loc(response: Any) -> list[Any]:
    return [e["loc"] for e in response.json()["detail"]]


async def test_unique_violation_is_409_naming_the_field(database: Database) -> None:
    app = make_app(database)
    async with app.async_test_client() as client:
        ok = await client.post("/authors", json={"email": "a@x", "name": "A"})
        assert ok.status_code == 200
        r = await client.post("/authors", json={"email": "a@x", "name": "B"})
        assert r.status_code == 409, r.text
        assert loc(r) == [["body", "email"]]
        assert r.json()["detail"][0]["type"] == "db.unique"
        r = await client.post("/authors-at-commit", json={"email": "a@x", "name": "C"})
        assert r.status_code == 409, r.text
        assert loc(r) == [["body", "email"]]
        r = await client.post("/raw-author", json={"email": "a@x", "name": "D"})
        assert r.status_code == 409, r.text
        assert loc(r) == [["body", "email"]]


async def test_not_null_violation_is_422_naming_the_field(database: Database) -> None:
    app = make_app(database)
    async with app.async_test_client() as client:
        r = await client.post("/authors", json={"email": "n@x", "name": None})
        assert r.status_code == 422, r.text
        assert loc(r) == [["body", "name"]]
        r = await client.post("/authors", json={"email": "m@x"})  # column omitted altogether
        assert r.status_code == 422, r.text
        assert loc(r) == [["body", "name"]]


async def test_foreign_key_violation_is_422_naming_the_field(database: Database) -> None:
    app = make_app(database)
    async with app.async_test_client() as client:
        r = await client.post("/posts", json={"slug": "s", "title": "T", "author_id": 4242})
        assert r.status_code == 422, r.text
        assert loc(r) == [["body", "author_id"]]
        assert r.json()["detail"][0]["type"] == "db.foreign_key"


async def test_deleting_a_referenced_row_is_409(database: Database) -> None:
    app = make_app(database)
    async with database.session() as s:
        author = Author(email="p@x", name="P")
        s.add(author)
        await s.flush()
        s.add(Post(slug="p", title="P", author_id=author.id))
        await s.commit()
        author_id = author.id
    async with app.async_test_client() as client:
        r = await client.delete(f"/authors/{author_id}")
        assert r.status_code == 409, r.text
        assert r.json()["detail"][0]["type"] == "db.restrict"


async def test_check_violation_is_422(database: Database) -> None:
    app = make_app(database)
    async with database.session() as s:
        author = Author(email="c@x", name="C")
        s.add(author)
        await s.commit()
    async with app.async_test_client() as client:
        body = {"slug": "c", "title": "C", "author_id": author.id, "score": -1}
        r = await client.post("/posts", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["type"] == "db.check"
        assert loc(r) in ([["body", "score"]], [["body"]])


async def test_programming_errors_stay_500(database: Database) -> None:
    from sqlalchemy import text

    app = make_app(database)

    @app.get("/bad-sql")
    async def bad_sql(db: Session) -> None:
        await db.execute(text("SELECT * FROM no_such_table_here"))

    async with app.async_test_client() as client:
        assert (await client.get("/bad-sql")).status_code == 500


def test_classify_ignores_unrelated_exceptions() -> None:
    assert classify(ValueError("x")) is None
    assert classify(KeyError("x")) is None
