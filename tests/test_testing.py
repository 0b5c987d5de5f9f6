"""The test clients: cookies, lifespan, async use, in-process ASGI."""

from __future__ import annotations

from typing import Annotated

import pytest

from transom import App, Cookie, Request, Response
from transom.settings import Settings


def cookie_app() -> App:
    app = App(Settings())
    events: list[str] = []
    app.state.events = events

    @app.on_startup
    def start() -> None:
        events.append("startup")

    @app.on_shutdown
    def stop() -> None:
        events.append("shutdown")

    @app.post("/login")
    def login() -> Response:
        response = Response("ok")
        response.set_cookie("user", "ada")
        return response

    @app.get("/me")
    def me(user: Annotated[str | None, Cookie()] = None) -> dict[str, str | None]:
        return {"user": user}

    @app.get("/echo")
    def echo(request: Request) -> dict[str, object]:
        return {"client": request.client, "host": request.host, "scheme": request.scheme}

    return app


def test_sync_client_keeps_cookies_and_runs_hooks() -> None:
    app = cookie_app()
    with app.test_client() as client:
        assert app.state.events == ["startup"]
        assert client.get("/me").json() == {"user": None}
        assert client.post("/login").status_code == 200
        assert client.get("/me").json() == {"user": "ada"}
        assert client.get("/echo").json() == {
            "client": ["127.0.0.1", 50000],
            "host": "testserver",
            "scheme": "http",
        }
    assert app.state.events == ["startup", "shutdown"]


def test_sync_client_without_context_starts_lazily_and_stops_on_close() -> None:
    app = cookie_app()
    client = app.test_client()
    assert app.state.events == []
    client.get("/me")
    assert app.state.events == ["startup"]
    client.close()
    assert app.state.events == ["startup", "shutdown"]


@pytest.mark.anyio
async def test_async_client() -> None:
    app = cookie_app()
    async with app.async_test_client() as client:
        assert app.state.events == ["startup"]
        await client.post("/login")
        response = await client.get("/me")
        assert response.json() == {"user": "ada"}
    assert app.state.events == ["startup", "shutdown"]


def test_https_base_url_sets_the_scheme() -> None:
    app = cookie_app()
    with app.test_client(base_url="https://testserver") as client:
        assert client.get("/echo").json()["scheme"] == "https"
        login = client.post("/login")
    assert "Secure" in login.headers["set-cookie"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
