"""Sessions: cookie flags, persistence, tampering, expiry, fixation, rotation, failed requests."""

from __future__ import annotations

import asyncio
import importlib
import logging
import secrets
import time
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from transom import App, Request, Settings
from transom.security import (
    CSRFToken,
    MemorySessionBackend,
    Security,
    SessionConfig,
    SessionData,
    SessionDataDep,
    get_session_data,
)

from .conftest import SECRET, AppFactory, build_app, fetch_token

KEY = "A" * 43


def sign(payload: Any, *, kind: str = "cookie", keys: list[str] | None = None, age: int = 0) -> str:
    """Sign like the battery does, optionally ``age`` seconds in the past."""
    serializer = URLSafeTimedSerializer(keys or [SECRET], salt=f"transom.session.{kind}")
    original = TimestampSigner.get_timestamp
    TimestampSigner.get_timestamp = lambda self: int(time.time()) - age  # type: ignore[method-assign]
    try:
        return str(serializer.dumps(payload))
    finally:
        TimestampSigner.get_timestamp = original  # type: ignore[method-assign]


def record(data: dict[str, Any], created: float | None = None) -> dict[str, Any]:
    return {"i": KEY, "c": created if created is not None else time.time(), "d": data}


def set_cookie_headers(response: Any) -> list[str]:
    return [str(v) for v in response.headers.get_list("set-cookie")]


def test_cookie_flags_over_http(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        response = client.get("/set", params={"key": "a", "value": "1"})
    [cookie] = set_cookie_headers(response)
    assert cookie.startswith("session=")
    attributes = [part.strip() for part in cookie.split(";")]
    assert "HttpOnly" in attributes
    assert "SameSite=Lax" in attributes
    assert "Path=/" in attributes
    assert "Max-Age=86400" in attributes
    assert "Secure" not in attributes
    assert not any(a.lower().startswith("domain") for a in attributes)
    assert response.headers["vary"] == "Cookie"


def test_cookie_over_https_uses_host_prefix_and_secure(make_app: AppFactory) -> None:
    with make_app().test_client(base_url="https://testserver") as client:
        response = client.get("/set", params={"key": "a", "value": "1"})
        [cookie] = set_cookie_headers(response)
        assert cookie.startswith("__Host-session=")
        assert "; Secure" in cookie
        assert client.get("/session").json() == {"a": "1"}


def test_plain_cookie_is_ignored_over_https(make_app: AppFactory) -> None:
    cookie = sign(record({"user": "mallory"}))
    with make_app().test_client(base_url="https://testserver") as client:
        assert client.get("/session", headers={"Cookie": f"session={cookie}"}).json() == {}


def test_custom_flags(make_app: AppFactory) -> None:
    config = SessionConfig(same_site="strict", secure=True, idle_timeout=600, cookie_name="sid")
    with make_app(sessions=config).test_client() as client:
        [cookie] = set_cookie_headers(client.get("/set", params={"key": "a", "value": "1"}))
    assert cookie.startswith("sid=")
    assert "SameSite=Strict" in cookie
    assert "; Secure" in cookie
    assert "Max-Age=600" in cookie


def test_samesite_none_requires_secure() -> None:
    with pytest.raises(ValueError, match="Secure"):
        SessionConfig(same_site="none", secure=False)


def test_session_persists_and_untouched_session_sets_no_cookie(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        assert client.get("/session").json() == {}
        assert client.get("/set", params={"key": "a", "value": "1"}).status_code == 200
        client.get("/set", params={"key": "b", "value": "2"})
        response = client.get("/session")
        assert response.json() == {"a": "1", "b": "2"}
        # A read shortly after the last write does not rewrite the cookie.
        assert set_cookie_headers(response) == []


def test_empty_session_never_sets_cookie(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        response = client.get("/session")
    assert set_cookie_headers(response) == []


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "eyJpIjoiQUFBQSJ9.AAAA.AAAA",
        sign(record({"user": "admin"}), keys=["another-secret"]),
        sign(record({"user": "admin"}))[:-2] + "xx",
    ],
    ids=["garbage", "bad-signature", "wrong-key", "altered-signature"],
)
def test_tampered_cookie_is_dropped_logged_and_deleted(
    make_app: AppFactory, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="transom.security"),
        make_app().test_client() as client,
    ):
        response = client.get("/session", headers={"Cookie": f"session={value}"})
    assert response.json() == {}
    assert "tampered" in caplog.text
    [cookie] = set_cookie_headers(response)
    assert cookie.startswith("session=;")
    assert "Max-Age=0" in cookie


def test_altered_payload_is_dropped(make_app: AppFactory) -> None:
    good = sign(record({"role": "user"}))
    _, timestamp, signature = good.rsplit(".", 2)
    other_payload = sign(record({"role": "admin"})).rsplit(".", 2)[0]
    forged = f"{other_payload}.{timestamp}.{signature}"
    with make_app().test_client() as client:
        assert client.get("/session", headers={"Cookie": f"session={forged}"}).json() == {}
        assert client.get("/session", headers={"Cookie": f"session={good}"}).json() == {
            "role": "user"
        }


def test_unexpected_payload_shape_is_dropped(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        for payload in (["list"], {"i": "short", "c": 0, "d": {}}, {"i": KEY, "c": 0, "d": 3}):
            response = client.get("/session", headers={"Cookie": f"session={sign(payload)}"})
            assert response.json() == {}


def test_idle_expired_cookie_is_dropped(make_app: AppFactory) -> None:
    config = SessionConfig(idle_timeout=600)
    old = sign(record({"user": "alice"}), age=601)
    fresh = sign(record({"user": "alice"}), age=590)
    with make_app(sessions=config).test_client() as client:
        assert client.get("/session", headers={"Cookie": f"session={old}"}).json() == {}
        response = client.get("/session", headers={"Cookie": f"session={fresh}"})
        assert response.json() == {"user": "alice"}
        # Used after refresh_after seconds: re-signed, extending the idle window.
        assert set_cookie_headers(response)[0].startswith("session=")


def test_absolute_expiry(make_app: AppFactory) -> None:
    config = SessionConfig(absolute_timeout=3600)
    expired = sign(record({"user": "alice"}, created=time.time() - 3601))
    alive = sign(record({"user": "alice"}, created=time.time() - 3000))
    with make_app(sessions=config).test_client() as client:
        assert client.get("/session", headers={"Cookie": f"session={expired}"}).json() == {}
        response = client.get("/set?key=x&value=y", headers={"Cookie": f"session={alive}"})
        # The cookie never outlives the absolute deadline.
        max_age = int(set_cookie_headers(response)[0].split("Max-Age=")[1].split(";")[0])
        assert 0 < max_age <= 600


def test_key_rotation_accepts_old_keys(make_app: AppFactory) -> None:
    old_cookie = sign(record({"user": "alice"}), keys=["old-key"])
    with make_app(old_secret_keys=["old-key"]).test_client() as client:
        assert client.get("/session", headers={"Cookie": f"session={old_cookie}"}).json() == {
            "user": "alice"
        }
        # New cookies are signed with the current key only.
        [cookie] = set_cookie_headers(client.get("/set?key=a&value=1"))
    value = cookie.split(";")[0].split("=", 1)[1]
    URLSafeTimedSerializer(SECRET, salt="transom.session.cookie").loads(value)
    with make_app().test_client() as client:
        assert client.get("/session", headers={"Cookie": f"session={old_cookie}"}).json() == {}


def test_key_rotation_from_settings_fallbacks() -> None:
    old_cookie = sign(record({"user": "bob"}), keys=["retired-key"])
    settings = Settings(secret_key=SECRET, secret_key_fallbacks=["retired-key"])
    with build_app(settings).test_client() as client:
        response = client.get("/session", headers={"Cookie": f"session={old_cookie}"})
        assert response.json() == {"user": "bob"}


def test_no_session_write_on_500(make_app: AppFactory) -> None:
    backend = MemorySessionBackend()
    with make_app(sessions=SessionConfig(backend=backend)).test_client() as client:
        response = client.get("/boom")
        assert response.status_code == 500
        assert set_cookie_headers(response) == []
        assert backend._data == {}
        # A 4xx is a normal answer: the session is saved.
        assert client.get("/forbidden").status_code == 403
        assert client.get("/session").json() == {"written": "yes"}


def test_login_cycles_the_key_and_deletes_the_old_one(make_app: AppFactory) -> None:
    backend = MemorySessionBackend()
    with make_app(sessions=SessionConfig(backend=backend)).test_client() as client:
        token = fetch_token(client)
        before = client.get("/key").json()["key"]
        assert before in backend._data
        after = client.post("/login", headers={"X-CSRF-Token": token}).json()["key"]
        assert after != before
        assert before not in backend._data
        assert client.get("/session").json()["_auth_user_id"] == "alice"


def test_login_cycles_key_with_cookie_backend(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        before = client.get("/key").json()["key"]
        after = client.post("/login", headers={"X-CSRF-Token": token}).json()["key"]
        assert after != before


def test_attacker_chosen_session_key_is_never_adopted(make_app: AppFactory) -> None:
    backend = MemorySessionBackend()
    app = make_app(sessions=SessionConfig(backend=backend))
    planted = "P" * 43
    with app.test_client() as client:
        # Unsigned key: rejected as tampering.
        response = client.get("/set?key=a&value=1", headers={"Cookie": f"session={planted}"})
        assert response.json()["key"] != planted
        # Correctly signed (say, leaked from another site using the key) but unknown to the
        # store: a fresh key is issued instead.
        signed = sign(planted, kind="key")
        client.cookies.clear()
        response = client.get("/set?key=a&value=1", headers={"Cookie": f"session={signed}"})
        assert response.json()["key"] != planted
        assert planted not in backend._data


def test_logout_flushes_and_old_key_is_dead(make_app: AppFactory) -> None:
    backend = MemorySessionBackend()
    with make_app(sessions=SessionConfig(backend=backend)).test_client() as client:
        token = fetch_token(client)
        client.post("/login", headers={"X-CSRF-Token": token})
        old_cookie = client.cookies["session"]
        token = fetch_token(client)
        response = client.post("/logout", headers={"X-CSRF-Token": token})
        assert response.status_code == 204
        assert any("Max-Age=0" in c for c in set_cookie_headers(response))
        assert backend._data == {}
        client.cookies.clear()
        assert client.get("/session", headers={"Cookie": f"session={old_cookie}"}).json() == {}


def test_memory_backend_round_trip(make_app: AppFactory) -> None:
    backend = MemorySessionBackend()
    with make_app(sessions=SessionConfig(backend=backend)).test_client() as client:
        client.get("/set?key=cart&value=3")
        assert client.get("/session").json() == {"cart": "3"}
        # The cookie carries only the signed key, not the data.
        assert "cart" not in str(client.cookies["session"])


def test_oversized_cookie_is_logged(make_app: AppFactory, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="transom.security"), make_app().test_client() as c:
        c.get("/set", params={"key": "big", "value": secrets.token_urlsafe(4000)})
    assert "4 KB" in caplog.text


def test_session_data_is_a_mutable_mapping() -> None:
    session = SessionData({}, key=KEY, created=0.0)
    session["a"] = 1
    assert dict(session) == {"a": 1}
    assert session.modified
    del session["a"]
    assert len(session) == 0
    assert "a" not in session


def test_session_without_security_says_how_to_install() -> None:
    app = App(Settings(secret_key=SECRET))
    request = Request({"type": "http", "headers": [], "method": "GET", "path": "/"}, app=app)
    with pytest.raises(RuntimeError, match=r"app.install\(transom.security.Security\(\)\)"):
        asyncio.run(get_session_data(request))


def test_sessions_disabled_is_explicit(make_app: AppFactory) -> None:
    with make_app(sessions=None).test_client() as client:
        assert client.get("/session").status_code == 500


def test_values_must_be_json_serializable() -> None:
    session = SessionData({}, key=KEY, created=0.0)
    with pytest.raises(TypeError, match="JSON-serializable"):
        session["when"] = object()
    assert "when" not in session


def test_in_place_mutation_to_unserializable_is_logged_not_fatal(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.get("/mutate")
    async def mutate(session: SessionDataDep) -> dict[str, bool]:
        session["items"] = []
        session["items"].append(object())
        return {"ok": True}

    with caplog.at_level(logging.ERROR, logger="transom.security"), app.test_client() as client:
        response = client.get("/mutate")
    assert response.status_code == 200
    assert response.headers.get_list("set-cookie") == []
    assert "not JSON-serializable" in caplog.text


def test_login_as_another_user_empties_the_session(make_app: AppFactory) -> None:
    secret = secrets.token_urlsafe(32)
    planted = sign(record({"_auth_user_id": "mallory", "cart": "mallory's", "_csrf": secret}))
    with make_app().test_client() as client:
        token = client.get("/token", headers={"Cookie": f"session={planted}"}).json()["token"]
        response = client.post(
            "/login", headers={"X-CSRF-Token": token, "Cookie": f"session={planted}"}
        )
        cookie = response.headers["set-cookie"].split(";")[0]
        data = client.get("/session", headers={"Cookie": cookie}).json()
        assert data.get("cart") is None
        assert data["_auth_user_id"] == "alice"
    with make_app().test_client() as client:
        # Logging in again as the same user keeps the data.
        client.post("/login", headers={"X-CSRF-Token": fetch_token(client)})
        client.get("/set?key=cart&value=alice's")
        client.post("/login", headers={"X-CSRF-Token": fetch_token(client)})
        assert client.get("/session").json()["cart"] == "alice's"


class BrokenStore(MemorySessionBackend):
    """A store that went down after the session was loaded."""

    async def save(self, key: str, record: dict[str, Any], ttl: int) -> None:
        raise ConnectionError("store unreachable")


def test_store_failure_on_save_is_a_503_not_a_false_success(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(sessions=SessionConfig(backend=BrokenStore()))
    with caplog.at_level(logging.ERROR, logger="transom.security"), app.test_client() as client:
        response = client.get("/set?key=a&value=1")
    assert response.status_code == 503
    assert response.json() == {"detail": "Session storage is unavailable"}
    assert response.headers.get_list("set-cookie") == []
    assert response.headers["x-frame-options"] == "DENY"
    assert "Could not save the session" in caplog.text


# -- renamed names (deprecated in 0.2): old names still work and warn naming the new one ----


@pytest.mark.parametrize("module_name", ["transom.security", "transom.security.sessions"])
@pytest.mark.parametrize(
    ("old", "new", "hint"),
    [
        ("Sess", "SessionDataDep", ""),
        ("login", "start_session", "transom.auth.login(request, user)"),
        ("logout", "end_session", "transom.auth.logout(request)"),
    ],
)
def test_old_session_names_warn_naming_the_new_one(
    module_name: str, old: str, new: str, hint: str
) -> None:
    module = importlib.import_module(module_name)
    with pytest.warns(DeprecationWarning, match=rf"{module_name}\.{old} is deprecated") as w:
        value = getattr(module, old)
    assert value is getattr(module, new)
    message = str(w[0].message)
    assert f"use {module_name}.{new} instead" in message
    assert hint in message
    assert w[0].filename == __file__


def test_old_login_logout_and_sess_still_work() -> None:
    with pytest.warns(DeprecationWarning, match="is deprecated"):
        from transom.security import Sess, login, logout
    app = App(Settings(secret_key=SECRET))
    app.install(Security())

    @app.get("/token")
    async def token(csrf: CSRFToken) -> dict[str, str]:
        return {"token": csrf}

    @app.get("/session")
    async def read(session: Sess) -> dict[str, Any]:
        return dict(session)

    @app.post("/login")
    async def do_login(request: Request) -> dict[str, str]:
        return {"key": (await login(request, 7)).key}

    @app.post("/logout")
    async def do_logout(request: Request) -> None:
        await logout(request)

    with app.test_client() as client:
        client.post("/login", headers={"X-CSRF-Token": fetch_token(client)})
        assert client.get("/session").json()["_auth_user_id"] == "7"
        client.post("/logout", headers={"X-CSRF-Token": fetch_token(client)})
        assert "_auth_user_id" not in client.get("/session").json()
