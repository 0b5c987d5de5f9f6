"""Static files: serving, caching, precompressed variants, path safety, collectstatic."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from transom import App
from transom.datastructures import Headers
from transom.settings import Settings
from transom.staticfiles import MANIFEST_NAME, StaticFiles, collect_static, fingerprint_name


@pytest.fixture
def site(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("body { color: #222 }\n" * 40)
    (static / "js").mkdir()
    (static / "js" / "app.js").write_text("console.log('hi')")
    (static / "js" / "app.js.br").write_bytes(b"brotli-bytes")
    (static / "js" / "app.js.gz").write_bytes(gzip.compress(b"console.log('hi')"))
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret")
    os.symlink(outside, static / "leak.txt")
    (static / "sub").mkdir()
    return tmp_path


def app_for(root: Path, **settings: object) -> App:
    app = App(Settings(**settings))  # type: ignore[arg-type]
    app.root_path = root
    return app


def test_static_folder_is_served_with_no_configuration(site: Path) -> None:
    app = app_for(site)
    with app.test_client() as client:
        response = client.get("/static/css/site.css")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/css")
        assert response.headers["cache-control"] == "no-cache"
        etag = response.headers["etag"]
        assert (
            client.get("/static/css/site.css", headers={"If-None-Match": etag}).status_code == 304
        )
        ranged = client.get("/static/css/site.css", headers={"Range": "bytes=0-3"})
        assert (ranged.status_code, ranged.text) == (206, "body")
        assert client.post("/static/css/site.css").status_code == 405
        assert client.get("/static/nope.css").status_code == 404
        assert client.get("/static/sub").status_code == 404
    assert app.url_path_for("static", path="css/site.css") == "/static/css/site.css"


def test_precompressed_variants(site: Path) -> None:
    app = app_for(site)
    with app.test_client() as client:
        br = client.get("/static/js/app.js", headers={"Accept-Encoding": "gzip, br"})
        assert br.headers["content-encoding"] == "br"
        assert br.headers["content-type"].startswith(("application/javascript", "text/javascript"))
        assert br.headers["vary"] == "Accept-Encoding"
        gz = client.get("/static/js/app.js", headers={"Accept-Encoding": "gzip"})
        assert gz.headers["content-encoding"] == "gzip"
        assert gz.text == "console.log('hi')"  # httpx decodes it
        plain = client.get("/static/js/app.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.text == "console.log('hi')"


def test_precompressed_variant_that_leads_out_is_never_sent(site: Path) -> None:
    # "site.css" is a real file inside the folder; its ".gz" companion is a symlink to a file
    # outside it. The companion must pass the same containment check as the file itself.
    secret = site / "secret.gz"
    secret.write_bytes(gzip.compress(b"top secret"))
    os.symlink(secret, site / "static" / "css" / "site.css.gz")
    os.symlink(site / "secret.txt", site / "static" / "css" / "site.css.br")
    app = app_for(site)
    with app.test_client() as client:
        response = client.get("/static/css/site.css", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.text == "body { color: #222 }\n" * 40
    # Opting into symlinks follows them for the companions too.
    followed = StaticFiles(site / "static", follow_symlinks=True)
    found = followed._precompressed(
        site / "static", "css/site.css", Headers([(b"accept-encoding", b"gzip")])
    )
    assert found is not None
    assert found[0] == secret


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/css/../../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/css\\..\\..\\secret.txt",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/css/site.css%00.png",
        "/static/leak.txt",
        "/static/C:/Windows/win.ini",
    ],
)
def test_no_path_escapes_the_static_root(site: Path, path: str) -> None:
    app = app_for(site)
    with app.test_client() as client:
        response = client.get(f"http://testserver{path}")
    assert response.status_code in (404, 400)
    assert "top secret" not in response.text
    assert "root:" not in response.text


def test_lookup_rejects_traversal_directly(site: Path) -> None:
    # Below the HTTP client, which normalises some of these itself.
    files = StaticFiles(site / "static")
    for path in ("/../secret.txt", "/css/../../secret.txt", "/leak.txt", "/a\x00b", "/..\\x"):
        assert files.lookup(path) is None
    assert files.lookup("/css/site.css") is not None
    assert StaticFiles(site / "static", follow_symlinks=True).lookup("/leak.txt") is not None


def test_collectstatic_fingerprints_and_manifest(site: Path) -> None:
    target = site / "staticfiles"
    manifest = collect_static([site / "static"], target)
    css = (site / "static" / "css" / "site.css").read_bytes()
    hashed = "css/" + fingerprint_name(Path("site.css"), css)
    assert manifest["css/site.css"] == hashed
    assert (target / hashed).read_bytes() == css
    assert gzip.decompress((target / (hashed + ".gz")).read_bytes()) == css
    assert json.loads((target / MANIFEST_NAME).read_text())["paths"]["css/site.css"] == hashed

    production = app_for(site)
    with production.test_client() as client:
        url = production.static_url("css/site.css")
        assert url == f"/static/{hashed}"
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    debug = app_for(site, debug=True)
    assert debug.static_url("css/site.css") == "/static/css/site.css"


def test_collectstatic_command(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transom.cli import main

    (site / "app.py").write_text("from transom import App\napp = App()\n")
    monkeypatch.chdir(site)
    monkeypatch.syspath_prepend(str(site))
    try:
        result = CliRunner().invoke(main, ["collectstatic"])
    finally:
        import sys

        sys.modules.pop("app", None)
    assert result.exit_code == 0, result.output
    assert "Collected 2 files" in result.output
    assert (site / "staticfiles" / MANIFEST_NAME).exists()
