"""Routing: converters, matching priority, reversing, routers, mounts, HEAD/OPTIONS/405, slashes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pytest

from transom import App, PlainTextResponse, Request, Router
from transom._trie import Trie, parse_template
from transom._types import Receive, Scope, Send
from transom.converters import Converter, register_converter
from transom.settings import Settings


def make_app(**settings: Any) -> App:
    return App(Settings(**settings))


def test_converters_convert_and_reject() -> None:
    app = make_app()

    @app.get("/int/{n:int}")
    def by_int(n: int) -> dict[str, Any]:
        return {"n": n, "type": type(n).__name__}

    @app.get("/uuid/{u:uuid}")
    def by_uuid(u: uuid.UUID) -> dict[str, Any]:
        return {"u": str(u), "type": type(u).__name__}

    @app.get("/float/{x:float}")
    def by_float(x: float) -> dict[str, Any]:
        return {"x": x}

    @app.get("/files/{rest:path}")
    def by_path(rest: str) -> dict[str, Any]:
        return {"rest": rest}

    value = uuid.uuid4()
    with app.test_client() as client:
        assert client.get("/int/42").json() == {"n": 42, "type": "int"}
        assert client.get(f"/uuid/{value}").json() == {"u": str(value), "type": "UUID"}
        assert client.get("/float/2.5").json() == {"x": 2.5}
        assert client.get("/files/a/b/c.txt").json() == {"rest": "a/b/c.txt"}
        # Non-ASCII digits, signs, non-canonical UUIDs, NaN and an empty rest do not match.
        for path in (
            "/int/٣",
            "/int/-1",
            "/int/abc",
            f"/uuid/{value.hex}",
            "/float/nan",
            "/files/",
        ):
            assert client.get(path).status_code == 404, path


def test_static_beats_parameter_and_int_beats_str() -> None:
    app = make_app()

    @app.get("/users/me")
    def me() -> str:
        return "me"

    @app.get("/users/{uid:int}")
    def by_id(uid: int) -> str:
        return f"id {uid}"

    @app.get("/users/{name}")
    def by_name(name: str) -> str:
        return f"name {name}"

    with app.test_client() as client:
        assert client.get("/users/me").text == "me"
        assert client.get("/users/7").text == "id 7"
        assert client.get("/users/bob").text == "name bob"


def test_backtracks_to_a_later_branch() -> None:
    app = make_app()

    @app.get("/a/{x:int}/edit")
    def edit(x: int) -> str:
        return f"edit {x}"

    @app.get("/a/{name}/view")
    def view(name: str) -> str:
        return f"view {name}"

    with app.test_client() as client:
        assert client.get("/a/5/edit").text == "edit 5"
        # '5' matches the int branch first, which has no 'view' child: the str branch answers.
        assert client.get("/a/5/view").text == "view 5"


def test_custom_converter() -> None:
    class SlugConverter(Converter):
        name = "slug"
        priority = 30

        def convert(self, value: str) -> str:
            if not value or not all(c.isalnum() or c == "-" for c in value):
                raise ValueError("not a slug")
            return value.lower()

    register_converter(SlugConverter())
    app = make_app()

    @app.get("/posts/{s:slug}")
    def post(s: str) -> str:
        return s

    with app.test_client() as client:
        assert client.get("/posts/Hello-World").text == "hello-world"
        assert client.get("/posts/bad_slug").status_code == 404
    assert app.url_path_for("post", s="my-post") == "/posts/my-post"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("no-slash", "must start with '/'"),
        ("/a/x{id}", "whole segment"),
        ("/a/{id}/{id}", "appears twice"),
        ("/a/{1x}", "not a valid parameter name"),
        ("/a/{p:path}/b", "must be last"),
        ("/a/{p:nope}", "unknown path converter"),
    ],
)
def test_bad_templates_fail_at_registration(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_template(template)


def test_duplicate_route_is_an_error() -> None:
    app = make_app()
    app.add_route("/x", lambda: "a")
    app.add_route("/x", lambda: "b")
    with pytest.raises(ValueError, match="duplicate route: GET /x"):
        app.url_path_for("x")


def test_route_count_does_not_change_the_match() -> None:
    trie: Trie[str] = Trie()
    for i in range(1000):
        trie.insert(f"/r{i}/{{id:int}}", ["GET"], f"route{i}")
    found = trie.match("/r999/42")
    assert found is not None
    leaf, values = found
    assert leaf.methods["GET"] == "route999"
    assert values == [42]
    assert trie.match("/r1000/42") is None


def test_hostile_paths_are_plain_misses() -> None:
    trie: Trie[str] = Trie()
    trie.insert("/a/{x}/{y}/{z}", ["GET"], "deep")
    trie.insert("/{p:path}", ["GET"], "catchall")
    long_path = "/a" + "/x" * 50_000
    found = trie.match(long_path)
    assert found is not None
    assert found[0].methods["GET"] == "catchall"
    assert trie.match("/a/1/2/3") is not None
    assert trie.match("/a/1/2/3")[0].methods["GET"] == "deep"  # type: ignore[index]


def test_url_for_builds_paths_and_query_strings() -> None:
    app = make_app()

    @app.get("/articles/{slug}/{page:int}", name="article")
    def article(slug: str, page: int) -> str:
        return ""

    @app.get("/files/{rest:path}")
    def files(rest: str) -> str:
        return ""

    assert app.url_path_for("article", slug="a b?", page=2) == "/articles/a%20b%3F/2"
    # A '/' cannot round-trip through a str segment (servers decode %2F): refuse it.
    with pytest.raises(ValueError, match="cannot be a 'str' path segment"):
        app.url_path_for("article", slug="a/b", page=2)
    assert app.url_path_for("article", slug="x", page=1, q="é", tag=["a", "b"]) == (
        "/articles/x/1?q=%C3%A9&tag=a&tag=b"
    )
    assert app.url_path_for("files", rest="css/site.css") == "/files/css/site.css"
    with pytest.raises(KeyError, match="missing the parameter 'page'"):
        app.url_path_for("article", slug="x")
    with pytest.raises(KeyError, match="no route named 'nope'"):
        app.url_path_for("nope")

    @app.get("/where")
    def where(request: Request) -> str:
        return request.url_for("article", slug="x", page=3)

    with app.test_client() as client:
        assert client.get("/where").text == "http://testserver/articles/x/3"


def test_nested_routers_prefix_names_tags_and_dependencies() -> None:
    calls: list[str] = []

    def audit() -> None:
        calls.append("audit")

    from transom import Depends

    api = Router("/api", name="api", tags=["api"], dependencies=[Depends(audit)])
    blog = Router("/blog", name="blog", tags=["blog"])

    @blog.get("/{slug}")
    def show(slug: str) -> dict[str, str]:
        return {"slug": slug}

    api.include_router(blog)
    app = make_app()
    app.include_router(api, prefix="/v1")

    # Routes added to a router after it was included are still served.
    @blog.get("/")
    def index() -> str:
        return "index"

    with app.test_client() as client:
        assert client.get("/v1/api/blog/hello").json() == {"slug": "hello"}
        assert client.get("/v1/api/blog/").text == "index"
    assert calls == ["audit", "audit"]
    assert app.url_path_for("api.blog.show", slug="x") == "/v1/api/blog/x"
    route = next(r for r in app.all_routes if getattr(r, "name", "") == "api.blog.show")
    assert route.tags == ["api", "blog"]  # type: ignore[union-attr]


def test_router_cycle_is_detected() -> None:
    a, b = Router("/a"), Router("/b")
    a.include_router(b)
    b.include_router(a)
    app = make_app()
    app.include_router(a)
    with pytest.raises(ValueError, match="cycle"):
        app.url_path_for("anything")


def test_mount_passes_root_path_to_the_mounted_app() -> None:
    seen: dict[str, Any] = {}

    async def child(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(path=scope["path"], root_path=scope["root_path"])
        await PlainTextResponse("child")(scope, receive, send)

    app = make_app()
    app.mount("/legacy", child, name="legacy")
    with app.test_client() as client:
        response = client.get("/legacy/some/page")
    assert response.text == "child"
    assert seen == {"path": "/legacy/some/page", "root_path": "/legacy"}
    assert app.url_path_for("legacy", path="a/b.css") == "/legacy/a/b.css"


def test_mounting_a_transom_app_routes_on_the_remaining_path() -> None:
    inner = make_app(openapi_url="")

    @inner.get("/hello")
    def hello() -> str:
        return "inner hello"

    outer = make_app()
    outer.mount("/inner", inner)
    with outer.test_client() as client:
        # The inner app checks hosts itself; it only sees what the outer app let through.
        inner.settings.allowed_hosts.append("testserver")
        assert client.get("/inner/hello").text == "inner hello"
        assert client.get("/inner/nope").status_code == 404


def test_head_options_and_405() -> None:
    app = make_app()

    @app.get("/thing")
    def get_thing() -> str:
        return "body"

    @app.post("/thing")
    def post_thing() -> str:
        return "posted"

    with app.test_client() as client:
        head = client.head("/thing")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == "4"
        options = client.options("/thing")
        assert options.status_code == 204
        assert options.headers["allow"] == "GET, HEAD, OPTIONS, POST"
        denied = client.delete("/thing")
        assert denied.status_code == 405
        assert denied.headers["allow"] == "GET, HEAD, OPTIONS, POST"
        assert denied.json() == {"detail": "Method Not Allowed"}


def test_trailing_slash_redirects_keep_method_and_query() -> None:
    app = make_app()

    @app.get("/about/")
    def about() -> str:
        return "about"

    @app.post("/submit")
    def submit() -> str:
        return "ok"

    with app.test_client() as client:
        response = client.get("/about?x=1")
        assert response.status_code == 308
        assert response.headers["location"] == "/about/?x=1"
        response = client.post("/submit/")
        assert response.status_code == 308
        assert response.headers["location"] == "/submit"
        assert client.get("/missing/").status_code == 404


def test_trailing_slash_strict_mode() -> None:
    app = make_app(trailing_slash="strict")

    @app.get("/about/")
    def about() -> str:
        return "about"

    with app.test_client() as client:
        assert client.get("/about").status_code == 404


def test_slash_redirect_never_leaves_the_site() -> None:
    class Loose(Converter):
        # Accepts an empty segment, so '//host' paths can reach a route.
        name = "loose"

        def convert(self, value: str) -> str:
            return value

    register_converter(Loose())
    app = make_app()

    @app.get("/{a:loose}/{b}/")
    def page(a: str, b: str) -> str:
        return b

    with app.test_client() as client:
        response = client.get("http://testserver//evil.example")
        assert response.status_code == 308
        # Not '//evil.example/', which a browser would read as another host.
        assert response.headers["location"] == "/evil.example/"


def test_unknown_method_in_route_definition() -> None:
    app = make_app()
    with pytest.raises(ValueError, match="unknown HTTP method"):
        app.route("/x", methods=["FETCH"])(lambda: "x")


def test_a_path_parameter_no_argument_takes_is_a_startup_error() -> None:
    app = App()

    @app.get("/items/{item_id}")
    async def show(id: int) -> dict[str, int]:
        return {"id": id}

    with pytest.raises(TypeError) as info:
        app.test_client().__enter__()
    message = str(info.value)
    assert "route '/items/{item_id}': path parameter 'item_id' not taken by handler" in message
    assert "did you mean to name the argument 'item_id' instead of 'id'?" in message
    assert f"{__file__}:" in message


def test_path_parameters_taken_by_alias_dependency_or_request_are_fine() -> None:
    from transom import Depends, Path

    app = App()

    async def load(item_id: int) -> int:
        return item_id * 10

    @app.get("/a/{item_id}")
    async def by_alias(ident: Annotated[int, Path(alias="item_id")]) -> int:
        return ident

    @app.get("/b/{item_id}")
    async def by_dependency(loaded: Annotated[int, Depends(load)]) -> int:
        return loaded

    @app.get("/c/{item_id}")
    async def by_request(request: Request) -> str:
        return str(request.path_params["item_id"])

    with app.test_client() as client:
        assert client.get("/a/1").json() == 1
        assert client.get("/b/2").json() == 20
        assert client.get("/c/3").text == "3"


def test_a_routes_guards_and_parameters_are_public() -> None:
    """What the OpenAPI and AsyncAPI documents read: the compiled guards, and every parameter
    of guards and handler once each, the guards' first."""
    from transom import Depends, Header
    from transom.routing import Route

    app = App()

    def api_key(x_key: Annotated[str, Header()]) -> str:
        return x_key

    @app.get("/items/{item_id}", dependencies=[Depends(api_key)])
    async def item(
        item_id: int, key: Annotated[str, Depends(api_key)], q: str = ""
    ) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/h/{item_id}")
    async def handler(item_id: int, x_key: Annotated[str, Header()]) -> dict[str, int]:
        return {"id": item_id}

    app.build()
    routes = {r.path: r for r in app.all_routes if isinstance(r, Route)}
    guarded, bare = routes["/items/{item_id}"], routes["/h/{item_id}"]
    assert len(guarded.guards) == 1
    # x-key is taken by the guard and again deep in the handler: listed once, first.
    assert [(s.location, s.alias) for s in guarded.param_specs()] == [
        ("header", "x-key"),
        ("path", "item_id"),
        ("query", "q"),
    ]
    assert bare.guards == ()
    assert [s.location for s in bare.param_specs()] == ["path", "header"]
