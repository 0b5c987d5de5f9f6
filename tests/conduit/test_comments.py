"""Comments: list, add, delete, with their errors."""

from __future__ import annotations

from transom.testing import TestClient

from .conftest import check, error_messages, new_article, register

COMMENTS = "/articles/{slug}/comments"
COMMENT = "/articles/{slug}/comments/{id}"


def test_comments(client: TestClient) -> None:
    jake, jane = register(client, "jake"), register(client, "jane")
    new_article(client, jake, "Talk")
    empty = client.get("/api/articles/talk/comments")
    assert check(empty, "GET", COMMENTS, 200) == {"comments": []}

    first = client.post(
        "/api/articles/talk/comments", json={"comment": {"body": "One"}}, headers=jane
    )
    one = check(first, "POST", COMMENTS, 200)["comment"]  # the spec says 200, not 201
    assert one["body"] == "One"
    assert one["author"] == {"username": "jane", "bio": "", "image": "", "following": False}
    second = client.post(
        "/api/articles/talk/comments", json={"comment": {"body": "Two"}}, headers=jake
    )
    two = check(second, "POST", COMMENTS, 200)["comment"]

    listed = check(client.get("/api/articles/talk/comments"), "GET", COMMENTS, 200)["comments"]
    assert [c["id"] for c in listed] == [two["id"], one["id"]]  # newest first
    client.post("/api/profiles/jane/follow", headers=jake)
    seen = client.get("/api/articles/talk/comments", headers=jake).json()["comments"]
    assert {c["author"]["username"]: c["author"]["following"] for c in seen} == {
        "jane": True,
        "jake": False,
    }

    deleted = client.delete(f"/api/articles/talk/comments/{one['id']}", headers=jane)
    check(deleted, "DELETE", COMMENT, 204)
    remaining = client.get("/api/articles/talk/comments").json()["comments"]
    assert [c["id"] for c in remaining] == [two["id"]]


def test_comment_errors(client: TestClient) -> None:
    jake, jane = register(client, "jake"), register(client, "jane")
    new_article(client, jake, "Talk")
    new_article(client, jake, "Other")
    body = {"comment": {"body": "Hi"}}
    comment = client.post("/api/articles/talk/comments", json=body, headers=jake).json()["comment"]
    url = f"/api/articles/talk/comments/{comment['id']}"

    check(client.post("/api/articles/talk/comments", json=body), "POST", COMMENTS, 401)
    check(
        client.post("/api/articles/nope/comments", json=body, headers=jake), "POST", COMMENTS, 404
    )
    check(client.get("/api/articles/nope/comments"), "GET", COMMENTS, 404)
    for bad in [{}, {"comment": {}}, {"comment": {"body": ""}}, {"comment": {"body": 3}}]:
        response = client.post("/api/articles/talk/comments", json=bad, headers=jake)
        check(response, "POST", COMMENTS, 422)

    check(client.delete(url), "DELETE", COMMENT, 401)
    forbidden = client.delete(url, headers=jane)
    check(forbidden, "DELETE", COMMENT, 403)
    assert error_messages(forbidden) == ["only the author may delete this comment"]
    # The comment exists, but not under that article.
    other = client.delete(f"/api/articles/other/comments/{comment['id']}", headers=jake)
    check(other, "DELETE", COMMENT, 404)
    check(client.delete("/api/articles/talk/comments/999999", headers=jake), "DELETE", COMMENT, 404)
    not_a_number = client.delete("/api/articles/talk/comments/abc", headers=jake)
    check(not_a_number, "DELETE", COMMENT, 422)
    assert len(client.get("/api/articles/talk/comments").json()["comments"]) == 1
