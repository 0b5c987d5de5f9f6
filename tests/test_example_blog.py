"""The example app that `make demo` runs."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from openapi_spec_validator import validate

from transom.testing import TestClient

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "blog" / "app.py"


@pytest.fixture
def blog() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_blog", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_blog"] = module
    spec.loader.exec_module(module)
    return module


def csrf_header(client: TestClient) -> dict[str, str]:
    """What a JavaScript client does: read the token the page carries, send it back."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/write").text)
    assert match is not None
    return {"X-CSRF-Token": match.group(1)}


def test_pages_render_and_escape(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        index = client.get("/")
        assert index.status_code == 200
        assert "Hello, Transom" in index.text
        assert "/posts/hello-transom" in index.text
        created = client.post(
            "/api/posts",
            json={"slug": "xss", "title": "<script>alert(1)</script>"},
            headers=csrf_header(client),
        )
        assert created.status_code == 201
        page = client.get("/posts/xss")
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;" in page.text
        assert client.get("/posts/none").status_code == 404


def test_html_form_creates_a_post_and_shows_errors(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        form = client.get("/write")
        assert form.status_code == 200
        assert '<textarea id="id_body" name="body" rows="8"></textarea>' in form.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        csrf = {"csrf_token": token.group(1)}
        forged = client.post("/write", data={"title": "Hi", "slug": "hi"})
        assert forged.status_code == 403
        invalid = client.post("/write", data={"title": "Hi", "slug": "Not A Slug", **csrf})
        assert invalid.status_code == 422
        assert 'value="Not A Slug"' in invalid.text
        assert "should match pattern" in invalid.text
        taken = client.post("/write", data={"title": "Again", "slug": "hello-transom", **csrf})
        assert "A post with this slug exists." in taken.text
        created = client.post(
            "/write", data={"title": "Second", "slug": "second", "body": "x", **csrf}
        )
        assert created.status_code == 303
        assert created.headers["location"] == "http://testserver/posts/second"
        page = client.get("/posts/second").text
        assert "<h1>Second</h1>" in page
        assert '<p class="flash">Published “Second”.</p>' in page
        assert "Published" not in client.get("/posts/second").text
        css = client.get("/static/site.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert 'href="/static/site.css"' in client.get("/").text


def test_api_crud_and_validation(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        listing = client.get("/api/posts?limit=1").json()
        assert listing["total"] == 1
        assert listing["items"][0]["slug"] == "hello-transom"
        headers = csrf_header(client)
        bad = client.post("/api/posts", json={"slug": "Bad Slug", "title": ""}, headers=headers)
        assert bad.status_code == 422
        dup = client.post(
            "/api/posts", json={"slug": "hello-transom", "title": "again"}, headers=headers
        )
        assert dup.status_code == 409
        assert client.delete("/api/posts/hello-transom").status_code == 403  # no token
        assert client.delete("/api/posts/hello-transom", headers=headers).status_code == 204
        assert client.get("/api/posts/hello-transom").status_code == 404
        assert client.get("/api/posts?limit=0").status_code == 422
        validate(client.get("/openapi.json").json())
