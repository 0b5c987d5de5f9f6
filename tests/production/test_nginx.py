"""The example blog behind the real nginx, configured as docs/deployment.md shows: TLS ends at
nginx, the scheme, host and request id come through, nginx serves the collected static files,
and a login form POST works."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from test_cli import _free_port, serving

from . import _nginx

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


def test_the_blog_behind_nginx(tmp_path: Path) -> None:
    copy, env = blog_copy(tmp_path)
    app_port, http_port, https_port = _free_port(), _free_port(), _free_port()
    cert, key = _nginx.self_signed(tmp_path, HOST)
    nginx_dir = tmp_path / "nginx"
    site = (
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
