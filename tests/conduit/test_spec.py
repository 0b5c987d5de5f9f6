"""The app serves exactly the spec's operations, and documents them in its own OpenAPI."""

from __future__ import annotations

from openapi_spec_validator import validate

from transom.testing import TestClient

from .conftest import spec

METHODS = {"get", "put", "post", "delete", "patch"}


def operations(paths: dict[str, dict[str, object]], prefix: str = "") -> set[tuple[str, str]]:
    return {
        (method.upper(), prefix + path)
        for path, item in paths.items()
        for method in item
        if method in METHODS
    }


def test_the_spec_is_served_under_api() -> None:
    # The spec's paths are relative to its server URL, which ends in /api.
    assert [s["url"].rsplit("/", 1)[-1] for s in spec()["servers"]] == ["api"]
    assert len(operations(spec()["paths"])) == 19


def test_every_operation_of_the_spec_is_served(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    validate(document)
    served = {op for op in operations(document["paths"]) if op[1].startswith("/api/")}
    wanted = operations(spec()["paths"], prefix="/api")
    assert wanted - served == set(), "operations of the spec the app does not serve"
    assert served - wanted == set(), "operations the app serves beyond the spec"


def test_every_operation_answers(client: TestClient) -> None:
    """No operation of the spec falls through to the router's 404 or 405 (an unknown route)."""
    for method, path in sorted(operations(spec()["paths"], prefix="/api")):
        url = path.replace("{username}", "nobody").replace("{slug}", "nope").replace("{id}", "1")
        response = client.request(method, url, json={})
        # Without a token or a body, each answers its own 401, 404 or 422, or 200 for reads.
        assert response.status_code in (200, 401, 404, 422), (method, url, response.status_code)
        if response.status_code == 404:
            assert response.json()["errors"]["body"][0].endswith("not found"), (method, url)


def test_cors_lets_front_ends_send_tokens(client: TestClient) -> None:
    preflight = client.options(
        "/api/user",
        headers={
            "origin": "http://localhost:4200",
            "access-control-request-method": "PUT",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code in (200, 204)
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "set-cookie" not in client.get("/api/tags").headers  # nothing rides in cookies


def test_the_openapi_document_matches_the_spec(client: TestClient) -> None:
    """Same operation ids and success statuses as the spec; the errors each route can give."""
    document = client.get("/openapi.json").json()
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            ours = document["paths"][f"/api{path}"][method]
            assert ours["operationId"] == operation["operationId"]
            success = {c for c in operation["responses"] if c.startswith("2")}
            assert success <= set(ours["responses"]), (method, path)
            if "Token" in str(operation.get("security")) or "401" in operation["responses"]:
                assert "401" in ours["responses"], (method, path)
            if "{" in path:  # a missing user, article or comment
                assert "404" in ours["responses"], (method, path)
            error = ours["responses"].get("401") or ours["responses"].get("404")
            if error is not None:
                schema = error["content"]["application/json"]["schema"]
                assert schema["required"] == ["errors"]
    owned = ["UpdateArticle", "DeleteArticle", "DeleteArticleComment"]
    forbidden = [
        op["operationId"]
        for item in document["paths"].values()
        for op in item.values()
        if "403" in op["responses"]
    ]
    assert sorted(forbidden) == sorted(owned)
