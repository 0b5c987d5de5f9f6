"""Articles: create, list with filters and paging, feed, get, update, delete, favourites, tags."""

from __future__ import annotations

from typing import Any

import pytest

from transom.testing import TestClient

from .conftest import check, error_messages, new_article, register


def slugs(body: dict[str, Any]) -> list[str]:
    return [a["slug"] for a in body["articles"]]


def test_create_and_get_an_article(client: TestClient) -> None:
    jake = register(client, "jake")
    article = new_article(client, jake, "How to train your dragon", ["training", "dragons"])
    assert article["slug"] == "how-to-train-your-dragon"
    assert article["title"] == "How to train your dragon"
    assert article["body"] == "How to train your dragon!"
    assert article["tagList"] == ["dragons", "training"]
    assert (article["favorited"], article["favoritesCount"]) == (False, 0)
    assert article["author"] == {"username": "jake", "bio": "", "image": "", "following": False}
    assert article["createdAt"] == article["updatedAt"] or article["createdAt"].endswith("Z")

    fetched = client.get("/api/articles/how-to-train-your-dragon")
    assert check(fetched, "GET", "/articles/{slug}", 200)["article"] == article


def test_slugs_are_unique_and_ascii(client: TestClient) -> None:
    jake = register(client, "jake")
    first = new_article(client, jake, "Crème brûlée, 100%!")
    assert first["slug"] == "creme-brulee-100"
    second = new_article(client, jake, "Crème brûlée 100")
    assert second["slug"].startswith("creme-brulee-100-")
    assert second["slug"] != first["slug"]
    assert new_article(client, jake, "¿¿??")["slug"] == "article"


def test_tags_are_deduplicated_and_shared(client: TestClient) -> None:
    jake = register(client, "jake")
    assert new_article(client, jake, "One", ["b", "a", "b", " a "])["tagList"] == ["a", "b"]
    assert new_article(client, jake, "Two", ["a", "c"])["tagList"] == ["a", "c"]
    assert new_article(client, jake, "Three")["tagList"] == []
    tags = check(client.get("/api/tags"), "GET", "/tags", 200)
    assert tags == {"tags": ["a", "b", "c"]}  # most used first, then by name


def test_tags_of_deleted_articles_are_not_listed(client: TestClient) -> None:
    jake = register(client, "jake")
    assert check(client.get("/api/tags"), "GET", "/tags", 200) == {"tags": []}
    new_article(client, jake, "One", ["gone"])
    check(client.delete("/api/articles/one", headers=jake), "DELETE", "/articles/{slug}", 204)
    assert client.get("/api/tags").json() == {"tags": []}


@pytest.mark.parametrize(
    ("article", "problem"),
    [
        ({"description": "d", "body": "b"}, "article.title: Field required"),
        ({"title": "t", "body": "b"}, "article.description: Field required"),
        ({"title": "t", "description": "d"}, "article.body: Field required"),
        ({"title": "", "description": "d", "body": "b"}, "article.title"),
        ({"title": "t", "description": "d", "body": "b", "tagList": "x"}, "article.tagList"),
        ({"title": "t", "description": "d", "body": "b", "tagList": [""]}, "article.tagList.0"),
        ({"title": ["t"], "description": "d", "body": "b"}, "article.title"),
    ],
)
def test_create_refuses_invalid_articles(
    client: TestClient, article: dict[str, Any], problem: str
) -> None:
    jake = register(client, "jake")
    response = client.post("/api/articles", json={"article": article}, headers=jake)
    check(response, "POST", "/articles", 422)
    assert any(m.startswith(problem) for m in error_messages(response)), response.json()


def test_create_needs_a_login(client: TestClient) -> None:
    data = {"article": {"title": "t", "description": "d", "body": "b"}}
    check(client.post("/api/articles", json=data), "POST", "/articles", 401)


def test_list_filters_and_pages(client: TestClient) -> None:
    jake, jane = register(client, "jake"), register(client, "jane")
    for n in range(3):
        new_article(client, jake, f"Jake {n}", ["jake", "odd" if n % 2 else "even"])
    new_article(client, jane, "Jane 0", ["even"])
    client.post("/api/articles/jake-1/favorite", headers=jane)
    client.post("/api/articles/jane-0/favorite", headers=jane)

    def listed(query: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = client.get(f"/api/articles{query}", headers=headers or {})
        body: dict[str, Any] = check(response, "GET", "/articles", 200)
        return body

    everything = listed("")
    assert slugs(everything) == ["jane-0", "jake-2", "jake-1", "jake-0"]  # newest first
    assert everything["articlesCount"] == 4
    assert "body" not in everything["articles"][0]  # the spec's list items have no body
    assert slugs(listed("?tag=even")) == ["jane-0", "jake-2", "jake-0"]
    assert slugs(listed("?author=jake")) == ["jake-2", "jake-1", "jake-0"]
    assert slugs(listed("?favorited=jane")) == ["jane-0", "jake-1"]
    assert slugs(listed("?author=jake&tag=odd")) == ["jake-1"]
    assert listed("?author=nobody") == {"articles": [], "articlesCount": 0}
    assert listed("?tag=nothing") == {"articles": [], "articlesCount": 0}

    page = listed("?limit=2&offset=1")
    assert slugs(page) == ["jake-2", "jake-1"]
    assert page["articlesCount"] == 4  # the count ignores limit and offset
    assert listed("?offset=10") == {"articles": [], "articlesCount": 4}
    assert len(listed("?limit=1000")["articles"]) == 4  # lowered to the maximum, not refused

    mine = {a["slug"]: a for a in listed("", jane)["articles"]}
    assert (mine["jake-1"]["favorited"], mine["jake-1"]["favoritesCount"]) == (True, 1)
    assert (mine["jake-0"]["favorited"], mine["jake-0"]["favoritesCount"]) == (False, 0)
    anonymous = {a["slug"]: a for a in everything["articles"]}
    assert (anonymous["jake-1"]["favorited"], anonymous["jake-1"]["favoritesCount"]) == (False, 1)


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=-1", "?offset=-1", "?limit=ten", "?offset=99999999999999999999"]
)
def test_list_refuses_bad_paging(client: TestClient, query: str) -> None:
    response = client.get(f"/api/articles{query}")
    check(response, "GET", "/articles", 422)
    assert error_messages(response)[0].startswith(("limit", "offset"))
    feed = client.get(f"/api/articles/feed{query}", headers=register(client, "jake"))
    check(feed, "GET", "/articles/feed", 422)


def test_feed(client: TestClient) -> None:
    jake, jane, joe = register(client, "jake"), register(client, "jane"), register(client, "joe")
    new_article(client, jane, "Jane 0")
    new_article(client, joe, "Joe 0")
    new_article(client, jane, "Jane 1")
    new_article(client, jake, "Jake 0")  # one's own articles are not in one's feed

    empty = client.get("/api/articles/feed", headers=jake)
    assert check(empty, "GET", "/articles/feed", 200) == {"articles": [], "articlesCount": 0}
    client.post("/api/profiles/jane/follow", headers=jake)
    feed = check(client.get("/api/articles/feed", headers=jake), "GET", "/articles/feed", 200)
    assert slugs(feed) == ["jane-1", "jane-0"]
    assert feed["articlesCount"] == 2
    assert all(a["author"]["following"] for a in feed["articles"])
    paged = client.get("/api/articles/feed?limit=1&offset=1", headers=jake).json()
    assert (slugs(paged), paged["articlesCount"]) == (["jane-0"], 2)
    check(client.get("/api/articles/feed"), "GET", "/articles/feed", 401)


def test_following_shows_on_articles(client: TestClient) -> None:
    jake, jane = register(client, "jake"), register(client, "jane")
    new_article(client, jane, "Jane 0")
    client.post("/api/profiles/jane/follow", headers=jake)
    article = client.get("/api/articles/jane-0", headers=jake).json()["article"]
    assert article["author"]["following"] is True
    assert client.get("/api/articles/jane-0").json()["article"]["author"]["following"] is False


def test_update_an_article(client: TestClient) -> None:
    jake = register(client, "jake")
    created = new_article(client, jake, "Old title", ["kept"])
    path = "/articles/{slug}"
    response = client.put(
        "/api/articles/old-title", json={"article": {"body": "New body"}}, headers=jake
    )
    updated = check(response, "PUT", path, 200)["article"]
    assert (updated["slug"], updated["body"], updated["tagList"]) == (
        "old-title",
        "New body",
        ["kept"],
    )
    assert updated["updatedAt"] >= created["updatedAt"]
    assert updated["createdAt"] == created["createdAt"]

    change = {"title": "New title", "description": "New description"}
    renamed = check(
        client.put("/api/articles/old-title", json={"article": change}, headers=jake),
        "PUT",
        path,
        200,
    )["article"]
    assert (renamed["slug"], renamed["title"]) == ("new-title", "New title")
    assert renamed["description"] == "New description"
    check(client.get("/api/articles/old-title"), "GET", path, 404)
    assert client.get("/api/articles/new-title").json()["article"]["body"] == "New body"
    # The same title keeps the slug; an empty update changes nothing but updatedAt.
    same = client.put(
        "/api/articles/new-title", json={"article": {"title": "New title"}}, headers=jake
    )
    assert check(same, "PUT", path, 200)["article"]["slug"] == "new-title"
    assert client.put("/api/articles/new-title", json={"article": {}}, headers=jake).is_success


def test_update_and_delete_errors(client: TestClient) -> None:
    jake, jane = register(client, "jake"), register(client, "jane")
    new_article(client, jake, "Mine")
    path = "/articles/{slug}"
    change = {"article": {"body": "x"}}
    check(client.put("/api/articles/mine", json=change), "PUT", path, 401)
    check(client.delete("/api/articles/mine"), "DELETE", path, 401)
    forbidden = client.put("/api/articles/mine", json=change, headers=jane)
    check(forbidden, "PUT", path, 403)
    assert error_messages(forbidden) == ["only the author may change this article"]
    check(client.delete("/api/articles/mine", headers=jane), "DELETE", path, 403)
    check(client.put("/api/articles/nope", json=change, headers=jake), "PUT", path, 404)
    check(client.delete("/api/articles/nope", headers=jake), "DELETE", path, 404)
    check(client.get("/api/articles/nope"), "GET", path, 404)
    empty_title = client.put("/api/articles/mine", json={"article": {"title": ""}}, headers=jake)
    check(empty_title, "PUT", path, 422)
    check(client.put("/api/articles/mine", json={}, headers=jake), "PUT", path, 422)
    assert client.get("/api/articles/mine").json()["article"]["body"] == "Mine!"  # unchanged


def test_delete_an_article_with_its_comments_and_favourites(client: TestClient) -> None:
    jake, jane = register(client, "jake"), register(client, "jane")
    new_article(client, jake, "Doomed", ["t"])
    client.post("/api/articles/doomed/favorite", headers=jane)
    client.post("/api/articles/doomed/comments", json={"comment": {"body": "hi"}}, headers=jane)
    response = client.delete("/api/articles/doomed", headers=jake)
    check(response, "DELETE", "/articles/{slug}", 204)
    check(client.get("/api/articles/doomed"), "GET", "/articles/{slug}", 404)
    assert client.get("/api/articles?favorited=jane").json() == {"articles": [], "articlesCount": 0}
    # The slug is free again.
    assert new_article(client, jake, "Doomed")["slug"] == "doomed"


def test_favourites(client: TestClient) -> None:
    jake, jane = register(client, "jake"), register(client, "jane")
    new_article(client, jake, "Liked")
    path = "/articles/{slug}/favorite"
    for headers, count in [(jane, 1), (jane, 1), (jake, 2)]:  # twice changes nothing
        response = client.post("/api/articles/liked/favorite", headers=headers)
        article = check(response, "POST", path, 200)["article"]
        assert (article["favorited"], article["favoritesCount"]) == (True, count)
    response = client.delete("/api/articles/liked/favorite", headers=jane)
    article = check(response, "DELETE", path, 200)["article"]
    assert (article["favorited"], article["favoritesCount"]) == (False, 1)
    again = check(client.delete("/api/articles/liked/favorite", headers=jane), "DELETE", path, 200)
    assert again["article"]["favoritesCount"] == 1

    check(client.post("/api/articles/liked/favorite"), "POST", path, 401)
    check(client.delete("/api/articles/liked/favorite"), "DELETE", path, 401)
    check(client.post("/api/articles/nope/favorite", headers=jane), "POST", path, 404)
    check(client.delete("/api/articles/nope/favorite", headers=jane), "DELETE", path, 404)
