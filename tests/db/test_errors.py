"""Constraint violations answer 409/422 naming the field, on every engine; never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from transom import App, Settings
from transom.db import Database, DbSessionDep, classify

from .models import Author, Post

pytestmark = pytest.mark.anyio


def make_app(database: Database) -> App:
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(database.config, metadata=database.metadatas))

    @app.post("/authors")
    async def create_author(body: dict[str, Any], db: DbSessionDep) -> dict[str, int]:
        author = Author(**body)
        db.add(author)
        await db.flush()
        return {"id": author.id}

    @app.post("/authors-at-commit")
    async def create_author_lazily(body: dict[str, Any], db: DbSessionDep) -> None:
        db.add(Author(**body))  # the violation surfaces at the request's commit

    @app.post("/posts")
    async def create_post(body: dict[str, Any], db: DbSessionDep) -> None:
        db.add(Post(**body))
        await db.flush()

    @app.delete("/authors/{author_id:int}")
    async def delete_author(author_id: int, db: DbSessionDep) -> None:
        await db.execute(delete(Author).where(Author.id == author_id))

    @app.get("/authors/{author_id:int}")
    async def get_author(author_id: int, db: DbSessionDep) -> dict[str, str]:
        return {"name": (await db.get_or_404(Author, author_id)).name}

    @app.get("/authors/{author_id:int}/posts")
    async def author_posts(author_id: int, db: DbSessionDep) -> list[str]:
        rows = await db.execute(select(Post.slug).where(Post.author_id == author_id))
        return list(rows.scalars())

    @app.get("/authors")
    async def find_authors(db: DbSessionDep, email: str = "") -> list[str]:
        rows = await db.execute(select(Author.name).where(Author.email == email))
        return list(rows.scalars())

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
    async def bad_sql(db: DbSessionDep) -> None:
        await db.execute(text("SELECT * FROM no_such_table_here"))

    async with app.async_test_client() as client:
        assert (await client.get("/bad-sql")).status_code == 500


def test_classify_ignores_unrelated_exceptions() -> None:
    assert classify(ValueError("x")) is None
    assert classify(KeyError("x")) is None


# Values the database refuses (out of its column's range, a NUL byte in text) come from the
# client: 4xx, never 500. What each engine refuses differs; none of them may answer 500.
BIG = {"int32": 2**31, "int64": 2**63, "huge": 10**20}


@pytest.mark.parametrize("size", list(BIG))
async def test_an_id_out_of_range_in_a_path_is_404(database: Database, size: str) -> None:
    """A primary-key lookup by a key no row can have finds nothing, as for any missing id."""
    app = make_app(database)
    async with app.async_test_client() as client:
        r = await client.get(f"/authors/{BIG[size]}")
        assert r.status_code == 404, r.text


async def test_an_unstorable_key_leaves_the_transaction_usable(database: Database) -> None:
    """The driver refused the key before sending it: the request's writes still commit."""
    async with database.session() as db:
        db.add(Author(email="kept@x", name="Kept"))
        await db.flush()
        assert await db.get(Author, 2**63) is None
        assert await db.get(Author, 2**31) is None
        await db.commit()
    async with database.session() as db:
        assert await db.get_one_or_404(Author, email="kept@x")


# backend -> status for a filter `WHERE author_id = <value>` (MariaDB compares any number).
_FILTER = {
    "sqlite": {"int32": 200, "int64": 422, "huge": 422},
    "postgresql": {"int32": 422, "int64": 422, "huge": 422},
    "mariadb": {"int32": 200, "int64": 200, "huge": 200},
}


@pytest.mark.parametrize("size", list(BIG))
async def test_a_number_out_of_range_in_a_filter_is_422(
    database: Database, backend: str, size: str
) -> None:
    app = make_app(database)
    async with app.async_test_client() as client:
        r = await client.get(f"/authors/{BIG[size]}/posts")
        assert r.status_code == _FILTER[backend][size], r.text
        if r.status_code == 422:
            [error] = r.json()["detail"]
            assert (error["loc"], error["type"]) == (["request"], "db.invalid")


@pytest.mark.parametrize("value", [2**31, 2**63])
async def test_a_number_out_of_range_in_an_insert_is_422(
    database: Database, backend: str, value: int
) -> None:
    app = make_app(database)
    async with database.session() as s:
        author = Author(email="r@x", name="R")
        s.add(author)
        await s.commit()
    async with app.async_test_client() as client:
        body = {"slug": "big", "title": "Big", "author_id": author.id, "score": value}
        r = await client.post("/posts", json=body)
        # SQLite's INTEGER holds 64 bits; PostgreSQL's and MariaDB's INT hold 32.
        fits = backend == "sqlite" and value < 2**63
        assert r.status_code == (204 if fits else 422), r.text


async def test_a_nul_byte_in_text_is_never_a_500(database: Database, backend: str) -> None:
    # PostgreSQL can't store or compare text with NUL; SQLite and MariaDB take it.
    refused = backend == "postgresql"
    app = make_app(database)
    async with app.async_test_client() as client:
        r = await client.get("/authors", params={"email": "a\x00b@x"})
        assert r.status_code == (422 if refused else 200), r.text
        r = await client.post("/authors", json={"email": "nul@x", "name": "A\x00B"})
        assert r.status_code == (422 if refused else 200), r.text
        r = await client.post("/authors-at-commit", json={"email": "nul2@x", "name": "A\x00B"})
        assert r.status_code == (422 if refused else 204), r.text
        # Outside the injected session, the app-level handler answers the same.
        r = await client.post("/raw-author", json={"email": "nul3@x", "name": "A\x00B"})
        assert r.status_code == (422 if refused else 204), r.text


async def test_a_data_error_that_is_a_bug_stays_500(database: Database, backend: str) -> None:
    """Only values the client could have sent map to 422; a division by zero is the app's."""
    from sqlalchemy import text

    app = make_app(database)

    @app.get("/divide")
    async def divide(db: DbSessionDep) -> None:
        await db.execute(text("SELECT 1 / 0"))  # NULL on SQLite and MariaDB

    async with app.async_test_client() as client:
        r = await client.get("/divide")
        assert r.status_code == (500 if backend == "postgresql" else 204)
