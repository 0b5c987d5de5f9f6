"""Users and authentication, profiles and follows: every endpoint, its envelope and errors."""

from __future__ import annotations

import httpx
import pytest

from transom.testing import TestClient

from .conftest import PASSWORD, check, error_messages, register


def login(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/users/login", json={"user": {"email": email, "password": password}})


def test_register_returns_the_user_with_a_token(client: TestClient) -> None:
    response = client.post(
        "/api/users",
        json={"user": {"username": "jake", "email": "Jake@Jake.jake", "password": PASSWORD}},
    )
    user = check(response, "POST", "/users", 201)["user"]
    assert set(user) == {"email", "token", "username", "bio", "image"}
    assert user["email"] == "jake@jake.jake"  # stored in lower case
    assert (user["username"], user["bio"], user["image"]) == ("jake", "", "")
    me = client.get("/api/user", headers={"authorization": f"Token {user['token']}"})
    assert check(me, "GET", "/user", 200)["user"]["username"] == "jake"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "user: Field required"),
        ({"user": {"email": "a@b.c", "password": PASSWORD}}, "user.username: Field required"),
        ({"user": {"username": "a", "password": PASSWORD}}, "user.email: Field required"),
        ({"user": {"username": "a", "email": "a@b.c"}}, "user.password: Field required"),
        ({"user": {"username": "a", "email": "not-an-email", "password": PASSWORD}}, "user.email"),
        ({"user": {"username": "", "email": "a@b.c", "password": PASSWORD}}, "user.username"),
        ({"user": {"username": 7, "email": "a@b.c", "password": PASSWORD}}, "user.username"),
        ({"user": {"username": "a", "email": "a@b.c", "password": "12345678"}}, "too common"),
        ({"user": "jake"}, "user"),
        ([1, 2], ""),
    ],
)
def test_register_refuses_invalid_input(client: TestClient, body: object, problem: str) -> None:
    response = client.post("/api/users", json=body)
    check(response, "POST", "/users", 422)
    assert any(problem in m for m in error_messages(response)), response.json()


def test_register_refuses_a_taken_username_or_email(client: TestClient) -> None:
    register(client, "jake")
    same_name = {"username": "jake", "email": "other@example.com", "password": PASSWORD}
    response = client.post("/api/users", json={"user": same_name})
    check(response, "POST", "/users", 422)
    assert error_messages(response) == ["username has already been taken"]
    same_email = {"username": "other", "email": "JAKE@example.com", "password": PASSWORD}
    response = client.post("/api/users", json={"user": same_email})
    assert error_messages(response) == ["email has already been taken"]


def test_malformed_json_is_an_error_in_the_spec_shape(client: TestClient) -> None:
    response = client.post(
        "/api/users", content=b'{"user": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_messages(response)


def test_login(client: TestClient) -> None:
    register(client, "jake")
    response = login(client, "JAKE@example.com")  # emails are matched in lower case
    user = check(response, "POST", "/users/login", 200)["user"]
    assert user["username"] == "jake"
    assert client.get("/api/user", headers={"authorization": f"Token {user['token']}"}).is_success


def test_login_refuses_wrong_credentials(client: TestClient) -> None:
    register(client, "jake")
    wrong = login(client, "jake@example.com", "not the password")
    check(wrong, "POST", "/users/login", 401)
    assert error_messages(wrong) == ["email or password is invalid"]
    check(login(client, "nobody@example.com"), "POST", "/users/login", 401)
    missing = client.post("/api/users/login", json={"user": {"email": "jake@example.com"}})
    check(missing, "POST", "/users/login", 422)
    assert error_messages(missing) == ["user.password: Field required"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Token",
        "Token not-a-jwt",
        "Bearer {token}",  # the spec's scheme is Token
        "Token {token}x",  # a bad signature
    ],
)
def test_current_user_needs_a_valid_token(client: TestClient, authorization: str | None) -> None:
    token = register(client, "jake")["authorization"].removeprefix("Token ")
    headers = {} if authorization is None else {"authorization": authorization.format(token=token)}
    response = client.get("/api/user", headers=headers)
    check(response, "GET", "/user", 401)
    assert response.headers["www-authenticate"].startswith("Token")
    assert error_messages(response)


def test_current_user_returns_the_token_it_was_asked_with(client: TestClient) -> None:
    headers = register(client, "jake")
    user = check(client.get("/api/user", headers=headers), "GET", "/user", 200)["user"]
    assert headers["authorization"] == f"Token {user['token']}"
    assert user["email"] == "jake@example.com"


def test_update_user(client: TestClient) -> None:
    headers = register(client, "jake")
    change = {
        "email": "jake@jake.jake",
        "bio": "I like to skateboard",
        "image": "https://i.x/j.jpg",
    }
    response = client.put("/api/user", json={"user": change}, headers=headers)
    user = check(response, "PUT", "/user", 200)["user"]
    assert {k: user[k] for k in change} == change
    assert user["username"] == "jake"
    # A null bio or image clears it (the spec's fields are strings).
    cleared = client.put("/api/user", json={"user": {"image": None}}, headers=headers)
    assert check(cleared, "PUT", "/user", 200)["user"]["image"] == ""
    renamed = client.put("/api/user", json={"user": {"username": "jacob"}}, headers=headers)
    assert check(renamed, "PUT", "/user", 200)["user"]["username"] == "jacob"
    assert client.get("/api/profiles/jacob").status_code == 200
    assert login(client, "jake@jake.jake").status_code == 200


def test_a_new_password_revokes_the_old_token(client: TestClient) -> None:
    headers = register(client, "jake")
    new_password = "orange bicycle lantern"
    response = client.put("/api/user", json={"user": {"password": new_password}}, headers=headers)
    token = check(response, "PUT", "/user", 200)["user"]["token"]
    assert f"Token {token}" != headers["authorization"]
    check(client.get("/api/user", headers=headers), "GET", "/user", 401)
    assert client.get("/api/user", headers={"authorization": f"Token {token}"}).is_success
    check(login(client, "jake@example.com"), "POST", "/users/login", 401)
    check(login(client, "jake@example.com", new_password), "POST", "/users/login", 200)


def test_update_user_errors(client: TestClient) -> None:
    headers = register(client, "jake")
    register(client, "jane")
    check(client.put("/api/user", json={"user": {"bio": "x"}}), "PUT", "/user", 401)
    for body, message in [
        ({"user": {}}, "user: at least one field is required"),
        ({"user": {"username": "jane"}}, "username has already been taken"),
        ({"user": {"email": "jane@example.com"}}, "email has already been taken"),
        ({"user": {"password": "short"}}, "too short"),
        ({"user": {"email": "nope"}}, "user.email"),
        ({}, "user: Field required"),
    ]:
        response = client.put("/api/user", json=body, headers=headers)
        check(response, "PUT", "/user", 422)
        assert any(message in m for m in error_messages(response)), (body, response.json())
    # Taking back one's own email is no clash.
    same = client.put("/api/user", json={"user": {"email": "jake@example.com"}}, headers=headers)
    check(same, "PUT", "/user", 200)


def test_profiles_and_follows(client: TestClient) -> None:
    jake = register(client, "jake")
    register(client, "celeb")
    profile = check(client.get("/api/profiles/celeb"), "GET", "/profiles/{username}", 200)
    assert profile == {"profile": {"username": "celeb", "bio": "", "image": "", "following": False}}

    path = "/profiles/{username}/follow"
    followed = client.post("/api/profiles/celeb/follow", headers=jake)
    assert check(followed, "POST", path, 200)["profile"]["following"] is True
    again = client.post("/api/profiles/celeb/follow", headers=jake)  # changes nothing
    assert check(again, "POST", path, 200)["profile"]["following"] is True
    seen = client.get("/api/profiles/celeb", headers=jake)
    assert check(seen, "GET", "/profiles/{username}", 200)["profile"]["following"] is True
    # Anonymous viewers and others see following: false.
    assert client.get("/api/profiles/celeb").json()["profile"]["following"] is False

    unfollowed = client.delete("/api/profiles/celeb/follow", headers=jake)
    assert check(unfollowed, "DELETE", path, 200)["profile"]["following"] is False
    assert client.get("/api/profiles/celeb", headers=jake).json()["profile"]["following"] is False
    again = client.delete("/api/profiles/celeb/follow", headers=jake)
    assert check(again, "DELETE", path, 200)["profile"]["following"] is False


def test_profile_errors(client: TestClient) -> None:
    jake = register(client, "jake")
    path = "/profiles/{username}/follow"
    check(client.get("/api/profiles/nobody"), "GET", "/profiles/{username}", 404)
    check(client.post("/api/profiles/nobody/follow", headers=jake), "POST", path, 404)
    check(client.delete("/api/profiles/nobody/follow", headers=jake), "DELETE", path, 404)
    check(client.post("/api/profiles/jake/follow"), "POST", path, 401)
    check(client.delete("/api/profiles/jake/follow"), "DELETE", path, 401)
    yourself = client.post("/api/profiles/jake/follow", headers=jake)
    check(yourself, "POST", path, 422)
    assert error_messages(yourself) == ["you cannot follow yourself"]
    bad = {"authorization": "Token nope"}  # optional auth: a bad token is still refused
    check(client.get("/api/profiles/jake", headers=bad), "GET", "/profiles/{username}", 401)
