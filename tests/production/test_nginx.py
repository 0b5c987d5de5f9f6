"""The example blog behind the real nginx, configured as docs/deployment.md shows: TLS ends at
nginx, the scheme, host and request id come through, nginx serves the collected static files,
a login form POST works, and the live comments' WebSockets and event streams pass through."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from _services import remove_redis_keys as _remove_keys
from test_cli import _free_port, serving
from transom.settings import Settings

from . import _nginx
from .conftest import REDIS_URL

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "blog"
HOST = "blog.test"
KEY = "hV3tq8Xz1LmP0sRw9YbN4cKd7FgJ2uTe6AiO5yQxWvZr-_HkMnBpCjDlEsGoNginx"
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def blog_copy(folder: Path) -> tuple[Path, dict[str, str]]:
    """The example blog in ``folder``, migrated, with a user and collected static files."""
    copy = folder / "blog"
    shutil.copytree(
        EXAMPLE, copy, ignore=shutil.ignore_patterns("db.sqlite3*", "__pycache__", "staticfiles")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSOM_", "DATABASE_"))}
    env |= {
        "TRANSOM_SECRET_KEY": KEY,
        "TRANSOM_ALLOWED_HOSTS": HOST,
        "TRANSOM_TRUSTED_PROXIES": "127.0.0.1",
        "TRANSOM_SUPERUSER_PASSWORD": PASSWORD,
    }
    transom = [sys.executable, "-m", "transom.cli"]
    for command in (
        ["db", "migrate"],
        ["createsuperuser", "--no-input", "--username", "editor", "--email", "e@blog.test"],
        ["collectstatic"],
    ):
        done = subprocess.run(
            [*transom, *command], cwd=copy, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return copy, env


def docs_site(tmp_path: Path, copy: Path, app_port: int, http_port: int, https_port: int) -> str:
    """The site of docs/deployment.md, its ports, paths and certificate made this test's."""
    cert, key = _nginx.self_signed(tmp_path, HOST)
    nginx_dir = tmp_path / "nginx"
    return (
        _nginx.site_config()
        .replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};")
        .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
        .replace("blog.example.com;", f"{HOST};")
        .replace("/etc/letsencrypt/live/blog.example.com/fullchain.pem", str(cert))
        .replace("/etc/letsencrypt/live/blog.example.com/privkey.pem", str(key))
        .replace("/var/log/nginx/blog.log", str(nginx_dir / "blog.log"))
        .replace("/srv/blog/staticfiles/", f"{copy / 'staticfiles'}/")
    )


def test_the_blog_behind_nginx(tmp_path: Path) -> None:
    copy, env = blog_copy(tmp_path)
    app_port, http_port, https_port = _free_port(), _free_port(), _free_port()
    nginx_dir = tmp_path / "nginx"
    site = docs_site(tmp_path, copy, app_port, http_port, https_port)
    command = [sys.executable, "-m", "transom.cli", "run", "--port", str(app_port)]
    command += ["--workers", "2"]
    with (
        serving(command, copy, app_port, env=env) as app,
        _nginx.running(_nginx.wrap(site, nginx_dir), nginx_dir, https_port),
        httpx.Client(
            base_url=f"https://127.0.0.1:{https_port}", headers={"Host": HOST}, verify=False
        ) as client,
    ):
        plain = httpx.get(f"http://127.0.0.1:{http_port}/posts", headers={"Host": HOST})
        home = client.get("/")
        evil = client.get("/", headers={"Host": "evil.test"})
        stylesheet = re.search(r'href="(/static/site\.[0-9a-f]+\.css)"', home.text)
        assert stylesheet is not None, home.text[:1000]
        static = client.get(stylesheet.group(1), headers={"Accept-Encoding": "gzip"})
        login_page = client.get("/auth/login")
        token = _CSRF.search(login_page.text)
        assert token is not None, login_page.text[:1000]
        # What a browser sends with a form POST over HTTPS: the app checks the Origin
        # against the scheme and host nginx forwarded (plain http would be another origin).
        forged = client.post(
            "/auth/login",
            data={"username": "editor", "password": PASSWORD, "csrf_token": token.group(1)},
            headers={"Origin": f"http://{HOST}"},
        )
        login = client.post(
            "/auth/login",
            data={"username": "editor", "password": PASSWORD, "csrf_token": token.group(1)},
            headers={"Origin": f"https://{HOST}"},
        )
        dashboard = client.get("/dashboard")
        ready = client.get("/readyz")
    nginx_log = (nginx_dir / "blog.log").read_text()
    # Plain HTTP goes to HTTPS.
    assert plain.status_code == 301
    assert plain.headers["location"] == f"https://{HOST}/posts"
    # The scheme came through: HSTS (sent on HTTPS only) and a __Host- Secure cookie.
    assert home.status_code == 200
    assert home.headers["strict-transport-security"].startswith("max-age=")
    # The host came through: the app refuses one it doesn't serve.
    assert evil.status_code == 400
    # The stylesheet came from nginx (the app never saw it: no request id), compressed,
    # cached forever.
    assert static.status_code == 200
    assert static.headers["content-encoding"] == "gzip"
    assert "immutable" in static.headers["cache-control"]
    assert "x-request-id" not in static.headers
    assert "body" in static.text
    # The login form POST, its CSRF check, and the session after it.
    assert forged.status_code == 403
    assert login.status_code == 303, login.text
    cookies = login.headers.get_list("set-cookie")
    assert any(c.startswith("__Host-session=") and "Secure" in c for c in cookies), cookies
    assert dashboard.status_code == 200
    assert "editor" in dashboard.text
    # The app kept nginx's request id: the one in nginx's own log line.
    rid = home.headers["x-request-id"]
    assert '"GET / HTTP/1.1" 200' in nginx_log
    assert f"rid={rid}" in nginx_log
    assert ready.status_code == 200, ready.text
    assert app.poll() is None or app.returncode == 0


def test_the_docs_give_websockets_longer_than_the_apps_idle_timeout() -> None:
    """nginx cuts a WebSocket on which the app sent nothing for proxy_read_timeout: in the
    docs' /ws/ location that must outlast the app's own idle timeout, which closes properly."""
    site = _nginx.site_config()
    location = re.search(r"location /ws/ \{(.*?)\}", site, re.DOTALL)
    assert location is not None, site
    timeout = re.search(r"proxy_read_timeout (\d+)s;", location.group(1))
    assert timeout is not None, location.group(1)
    assert int(timeout.group(1)) > Settings().websocket_idle_timeout
    # The upgrade headers and HTTP/1.1 are set for every location that proxies.
    for line in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
    ):
        assert re.search(rf"^    {re.escape(line)}", site, re.MULTILINE), line


async def _received(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
    return message


async def _next_event(lines: Any) -> dict[str, Any]:
    while True:
        line = await asyncio.wait_for(anext(lines), 20)
        if line.startswith("data: "):
            data: dict[str, Any] = json.loads(line[6:])
            return data


def test_live_comments_websockets_and_events_through_nginx(
    tmp_path: Path, redis_required: None, prefix: str
) -> None:
    copy, env = blog_copy(tmp_path)
    # Two workers: the socket and the stream may be served by either, so the comments travel
    # through Redis, as they do between hosts.
    env |= {"TRANSOM_CHANNELS_URL": REDIS_URL, "TRANSOM_CHANNELS_KEY_PREFIX": prefix}
    app_port, http_port, https_port = _free_port(), _free_port(), _free_port()
    nginx_dir = tmp_path / "nginx"
    site = docs_site(tmp_path, copy, app_port, http_port, https_port)
    command = [sys.executable, "-m", "transom.cli", "run", "--port", str(app_port)]
    command += ["--workers", "2"]
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate
    socket_url = f"wss://{HOST}:{https_port}/ws/posts/hello-transom/comments"

    def through_nginx(headers: dict[str, str] | None = None) -> websockets.connect:
        # To nginx on 127.0.0.1, with the site's name in Host (the app serves only that host).
        return websockets.connect(
            socket_url,
            additional_headers=headers,
            host="127.0.0.1",
            port=https_port,
            ssl=tls,
            proxy=None,
        )

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{https_port}",
            headers={"Host": HOST},
            verify=False,
            timeout=20,
        ) as client:
            login_page = await client.get("/auth/login")
            token = _CSRF.search(login_page.text)
            assert token is not None, login_page.text[:1000]
            login = await client.post(
                "/auth/login",
                data={"username": "editor", "password": PASSWORD, "csrf_token": token.group(1)},
                headers={"Origin": f"https://{HOST}"},
            )
            assert login.status_code == 303, login.text
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            # A browser's handshake: the session cookie and the page's own origin, which the
            # app recognises as its own only because nginx passed the scheme and host on.
            browser = {"Cookie": cookie, "Origin": f"https://{HOST}"}
            with pytest.raises(InvalidStatus) as refused:
                async with through_nginx({"Cookie": cookie, "Origin": "https://evil.test"}):
                    pass
            seen["foreign origin"] = refused.value.response.status_code
            async with (
                through_nginx(browser) as talker,
                through_nginx() as listener,
                client.stream("GET", "/posts/hello-transom/comments/events") as stream,
            ):
                seen["stream type"] = stream.headers["content-type"]
                lines = stream.aiter_lines()
                await talker.send(json.dumps({"body": "through nginx"}))
                seen["talker"] = await _received(talker)
                seen["listener"] = await _received(listener)
                seen["stream"] = await _next_event(lines)
                page = await client.get("/posts/hello-transom")
                form = _CSRF.search(page.text)
                assert form is not None, page.text[:1000]
                posted = await client.post(
                    "/posts/hello-transom/comments",
                    data={"body": "from the form", "csrf_token": form.group(1)},
                    headers={"Origin": f"https://{HOST}"},
                )
                assert posted.status_code == 303, posted.text
                seen["listener, form"] = await _received(listener)
                seen["talker, form"] = await _received(talker)
                seen["stream, form"] = await _next_event(lines)
                # The anonymous client may read, not write.
                await listener.send(json.dumps({"body": "anonymous"}))
                seen["anonymous"] = await _received(listener)
        return seen

    try:
        with (
            serving(command, copy, app_port, env=env) as app,
            _nginx.running(_nginx.wrap(site, nginx_dir), nginx_dir, https_port),
        ):
            seen = asyncio.run(scenario())
    finally:
        asyncio.run(_remove_keys(prefix))
    assert seen["foreign origin"] == 403
    for key in ("talker", "listener", "stream"):
        assert (seen[key]["author"], seen[key]["body"]) == ("editor", "through nginx"), key
    assert seen["talker"]["id"] == seen["listener"]["id"] == seen["stream"]["id"]
    for key in ("listener, form", "talker, form", "stream, form"):
        assert seen[key]["body"] == "from the form", key
    assert seen["stream type"].startswith("text/event-stream")
    assert seen["anonymous"] == {"error": "Log in to comment."}
    access = (nginx_dir / "blog.log").read_text()
    # nginx logged the handshakes as switched protocols (101), the refused one as 403.
    assert '"GET /ws/posts/hello-transom/comments HTTP/1.1" 101' in access
    assert '"GET /ws/posts/hello-transom/comments HTTP/1.1" 403' in access
    assert app.poll() is None or app.returncode == 0
