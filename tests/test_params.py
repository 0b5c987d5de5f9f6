"""Typed parameters and dependency injection (params.py, compiled by _signature.py)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from transom import App, Body, Cookie, Depends, Header, HTTPException, Path, Query, Request
from transom.settings import Settings


class Item(BaseModel):
    name: str
    price: float = Field(gt=0)
    tags: list[str] = []


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Filters(BaseModel):
    q: str | None = None
    tag: list[str] = []
    limit: int = 10


@dataclasses.dataclass
class Point:
    x: int
    y: int


class UserOut(BaseModel):
    id: int
    name: str


class UserRow:
    """Stands in for an ORM object: attributes, plus a field that must never be sent."""

    def __init__(self) -> None:
        self.id = 1
        self.name = "ada"
        self.password_hash = "argon2$secret"


def make_app() -> App:
    return App(Settings())


def test_path_query_header_cookie_by_annotation() -> None:
    app = make_app()

    @app.get("/items/{item_id:int}")
    def read(
        item_id: int,
        q: str,
        page: int = 1,
        color: Color = Color.red,
        day: datetime.date | None = None,
        tags: list[str] = [],  # noqa: B006 - defaults are copied per request
        user_agent: Annotated[str | None, Header()] = None,
        session: Annotated[str | None, Cookie()] = None,
    ) -> dict[str, Any]:
        return {
            "item_id": item_id,
            "q": q,
            "page": page,
            "color": color.value,
            "day": day,
            "tags": tags,
            "ua": user_agent,
            "session": session,
        }

    with app.test_client() as client:
        client.cookies.set("session", "s1")
        response = client.get(
            "/items/5?q=hi&page=3&color=blue&day=2026-01-02&tags=a&tags=b",
            headers={"User-Agent": "pytest"},
        )
    assert response.status_code == 200
    assert response.json() == {
        "item_id": 5,
        "q": "hi",
        "page": 3,
        "color": "blue",
        "day": "2026-01-02",
        "tags": ["a", "b"],
        "ua": "pytest",
        "session": "s1",
    }


def test_validation_errors_name_every_bad_field() -> None:
    app = make_app()

    @app.get("/search")
    def search(
        q: Annotated[str, Query(min_length=2)],
        page: Annotated[int, Query(ge=1)] = 1,
        color: Color = Color.red,
        x_token: Annotated[str, Header()] = "",
    ) -> dict[str, Any]:
        return {}

    with app.test_client() as client:
        response = client.get("/search?q=a&page=0&color=green")
        missing = client.get("/search")
    assert response.status_code == 422
    errors = {tuple(e["loc"]): e for e in response.json()["detail"]}
    assert set(errors) == {("query", "q"), ("query", "page"), ("query", "color")}
    assert errors[("query", "q")]["type"] == "string_too_short"
    assert errors[("query", "page")]["type"] == "greater_than_equal"
    assert errors[("query", "color")]["type"] == "enum"
    assert missing.json()["detail"] == [
        {"type": "missing", "loc": ["query", "q"], "msg": "Field required", "input": None}
    ]


def test_path_param_with_a_different_annotation_is_validated() -> None:
    app = make_app()

    @app.get("/pages/{n}")
    def page(n: Annotated[int, Path(le=100)]) -> dict[str, int]:
        return {"n": n}

    with app.test_client() as client:
        assert client.get("/pages/7").json() == {"n": 7}
        bad = client.get("/pages/abc")
        big = client.get("/pages/101")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["path", "n"]
    assert big.json()["detail"][0]["type"] == "less_than_equal"


def test_path_parameter_must_exist_in_the_template() -> None:
    app = make_app()

    @app.get("/x")
    def bad(n: Annotated[int, Path()]) -> None:
        return None

    with pytest.raises(TypeError, match="not in the route path"):
        app.url_path_for("bad")


def test_json_body_model_and_its_errors() -> None:
    app = make_app()

    @app.post("/items", status_code=201)
    async def create(item: Item) -> Item:
        return item

    with app.test_client() as client:
        ok = client.post("/items", json={"name": "pen", "price": 2.5})
        bad = client.post("/items", json={"name": "pen", "price": -1, "tags": "x"})
        malformed = client.post(
            "/items", content=b'{"name": ', headers={"Content-Type": "application/json"}
        )
        wrong_type = client.post(
            "/items",
            content=b"name=pen",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        no_type = client.post("/items", content=b'{"name": "pen", "price": 1}')
        empty = client.post("/items", headers={"Content-Type": "application/json"})
        vendor = client.post(
            "/items",
            content=b'{"name":"a","price":1}',
            headers={"Content-Type": "application/vnd.api+json"},
        )
    assert ok.status_code == 201
    assert ok.json() == {"name": "pen", "price": 2.5, "tags": []}
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("body", "price"), ("body", "tags")}
    assert malformed.status_code == 400
    assert "Malformed JSON" in malformed.json()["detail"]
    assert wrong_type.status_code == 415
    # No Content-Type is refused too: a body-less type would let cross-site "simple" requests in.
    assert no_type.status_code == 415
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["body"]
    assert vendor.status_code == 201


def test_json_nesting_limit_and_body_size_limit() -> None:
    app = App(Settings(max_json_depth=8, max_body_size=1000))

    @app.post("/any")
    async def anything(data: Annotated[Any, Body()]) -> dict[str, str]:
        return {"type": type(data).__name__}

    @app.post("/model")
    async def model(item: Item) -> dict[str, str]:
        return {"name": item.name}

    deep = "[" * 20 + "]" * 20
    with app.test_client() as client:
        assert client.post("/any", json=[[1]]).json() == {"type": "list"}
        too_deep = client.post("/any", content=deep, headers={"Content-Type": "application/json"})
        model_deep = client.post(
            "/model",
            content='{"name": "x", "price": 1, "tags": ' + deep + "}",
            headers={"Content-Type": "application/json"},
        )
        too_big = client.post("/any", json={"x": "y" * 2000})
    assert too_deep.status_code == 400
    assert "nesting deeper than 8" in too_deep.json()["detail"]
    assert model_deep.status_code == 400
    assert too_big.status_code == 413


def test_several_body_params_are_embedded_by_name() -> None:
    app = make_app()

    @app.put("/move")
    def move(start: Point, end: Point, note: Annotated[str, Body()] = "") -> dict[str, Any]:
        return {"dx": end.x - start.x, "dy": end.y - start.y, "note": note}

    @app.post("/embed")
    def embed(item: Annotated[Item, Body(embed=True)]) -> str:
        return item.name

    with app.test_client() as client:
        response = client.put("/move", json={"start": {"x": 1, "y": 1}, "end": {"x": 4, "y": 5}})
        missing = client.put("/move", json={"start": {"x": 1, "y": 1}})
        not_object = client.put("/move", json=[1])
        embedded = client.post("/embed", json={"item": {"name": "n", "price": 1}})
    assert response.json() == {"dx": 3, "dy": 4, "note": ""}
    assert missing.json()["detail"][0]["loc"] == ["body", "end"]
    assert not_object.status_code == 422
    assert embedded.text == "n"


def test_query_model_collects_parameters() -> None:
    app = make_app()

    @app.get("/list")
    def listing(filters: Annotated[Filters, Query()]) -> Filters:
        return filters

    with app.test_client() as client:
        assert client.get("/list?q=x&tag=a&tag=b&limit=5").json() == {
            "q": "x",
            "tag": ["a", "b"],
            "limit": 5,
        }
        bad = client.get("/list?limit=many")
    assert bad.json()["detail"][0]["loc"] == ["query", "limit"]


def test_request_injection_and_default_marker_style() -> None:
    app = make_app()

    @app.get("/info")
    # FastAPI-style defaults work too; Annotated is preferred because type checkers accept it.
    def info(request: Request, n: int = Query(5)) -> dict[str, Any]:  # type: ignore[assignment]
        return {"path": request.path, "n": n}

    with app.test_client() as client:
        assert client.get("/info").json() == {"path": "/info", "n": 5}


# -- dependencies ---------------------------------------------------------------------------------


def test_dependencies_nest_cache_and_clean_up_in_order() -> None:
    events: list[str] = []
    app = make_app()

    def settings_dep() -> dict[str, str]:
        events.append("settings")
        return {"dsn": "sqlite://"}

    async def connection(
        cfg: Annotated[dict[str, str], Depends(settings_dep)],
    ) -> AsyncIterator[str]:
        events.append("open")
        try:
            yield f"conn:{cfg['dsn']}"
        except Exception as exc:
            events.append(f"rollback:{type(exc).__name__}")
            raise
        else:
            events.append("commit")
        finally:
            events.append("close")

    def repo(
        conn: Annotated[str, Depends(connection)],
        cfg: Annotated[dict[str, str], Depends(settings_dep)],
    ) -> Iterator[str]:
        events.append("repo")
        yield f"repo({conn})"
        events.append("repo-done")

    Conn = Annotated[str, Depends(connection)]
    Repo = Annotated[str, Depends(repo)]

    @app.get("/ok")
    async def ok(r: Repo, c: Conn) -> dict[str, str]:
        events.append("handler")
        return {"r": r, "c": c}

    @app.get("/fail")
    async def fail(c: Conn) -> None:
        raise HTTPException(409, "conflict")

    with app.test_client() as client:
        assert client.get("/ok").json() == {"r": "repo(conn:sqlite://)", "c": "conn:sqlite://"}
        assert events == [
            "settings",
            "open",
            "repo",
            "handler",
            "repo-done",
            "commit",
            "close",
        ]
        events.clear()
        assert client.get("/fail").status_code == 409
        assert events == ["settings", "open", "rollback:HTTPException", "close"]


def test_dependency_cleanup_runs_before_the_response_is_sent() -> None:
    app = make_app()

    async def failing_commit() -> AsyncIterator[None]:
        yield
        raise HTTPException(409, "unique constraint")

    @app.post("/save")
    async def save(_: Annotated[None, Depends(failing_commit)]) -> dict[str, bool]:
        return {"saved": True}

    with app.test_client() as client:
        response = client.post("/save")
    # The commit failed, so the client must not be told it succeeded.
    assert response.status_code == 409


def test_use_cache_false_calls_again() -> None:
    app = make_app()
    counter = {"n": 0}

    def count() -> int:
        counter["n"] += 1
        return counter["n"]

    @app.get("/")
    def index(
        a: Annotated[int, Depends(count)],
        b: Annotated[int, Depends(count)],
        c: Annotated[int, Depends(count, use_cache=False)],
    ) -> list[int]:
        return [a, b, c]

    with app.test_client() as client:
        assert client.get("/").json() == [1, 1, 2]


def test_dependency_params_are_validated_and_can_raise() -> None:
    app = make_app()

    def pagination(page: Annotated[int, Query(ge=1)] = 1, size: int = 20) -> dict[str, int]:
        return {"offset": (page - 1) * size, "limit": size}

    def require_token(x_token: Annotated[str, Header()]) -> str:
        if x_token != "secret":
            raise HTTPException(401, "bad token", headers={"WWW-Authenticate": "Token"})
        return x_token

    @app.get("/items", dependencies=[Depends(require_token)])
    def items(p: Annotated[dict[str, int], Depends(pagination)]) -> dict[str, int]:
        return p

    with app.test_client() as client:
        ok = client.get("/items?page=3&size=10", headers={"X-Token": "secret"})
        bad_page = client.get("/items?page=0", headers={"X-Token": "secret"})
        no_token = client.get("/items")
        wrong = client.get("/items", headers={"X-Token": "nope"})
    assert ok.json() == {"offset": 20, "limit": 10}
    assert bad_page.json()["detail"][0]["loc"] == ["query", "page"]
    assert no_token.status_code == 422
    assert no_token.json()["detail"][0]["loc"] == ["header", "x-token"]
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Token"


def test_dependency_overrides_for_tests() -> None:
    app = make_app()

    def real_db() -> str:
        raise RuntimeError("would connect to production")

    @app.get("/")
    def index(db: Annotated[str, Depends(real_db)]) -> str:
        return db

    app.dependency_overrides[real_db] = lambda: "fake-db"
    with app.test_client() as client:
        assert client.get("/").text == "fake-db"
    app.dependency_overrides.clear()
    with app.test_client() as client:
        assert client.get("/").status_code == 500


def test_class_dependency_with_depends_without_argument() -> None:
    app = make_app()

    class Pager:
        def __init__(self, page: int = 1) -> None:
            self.page = page

    @app.get("/")
    def index(pager: Annotated[Pager, Depends()]) -> dict[str, int]:
        return {"page": pager.page}

    with app.test_client() as client:
        assert client.get("/?page=4").json() == {"page": 4}


def test_response_model_filters_fields_and_reads_attributes() -> None:
    app = make_app()

    @app.get("/me")
    def me() -> UserOut:
        return UserRow()  # type: ignore[return-value]

    @app.get("/list", response_model=list[UserOut])
    def users() -> list[Any]:
        return [UserRow(), {"id": 2, "name": "bo", "password_hash": "x"}]

    @app.get("/broken")
    def broken() -> UserOut:
        return {"id": "not a number"}  # type: ignore[return-value]

    with app.test_client() as client:
        assert client.get("/me").json() == {"id": 1, "name": "ada"}
        assert client.get("/list").json() == [{"id": 1, "name": "ada"}, {"id": 2, "name": "bo"}]
        assert client.get("/broken").status_code == 500


def test_generator_handler_is_rejected_at_startup() -> None:
    app = make_app()

    @app.get("/")
    def gen() -> Iterator[str]:
        yield "x"

    with pytest.raises(TypeError, match="StreamingResponse"):
        app.url_path_for("gen")


def test_unresolvable_annotation_error_names_the_handler() -> None:
    app = make_app()

    def handler(x: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    app.add_route("/", handler)
    line = handler.__code__.co_firstlineno
    with pytest.raises(TypeError, match=r"cannot resolve the annotations of .*handler") as info:
        app.url_path_for("handler")
    assert f"({__file__}:{line})" in str(info.value)
    assert "NotDefinedAnywhere" in str(info.value)


def test_handlers_defined_in_a_factory_resolve_local_types() -> None:
    def create_app() -> App:
        class Local(BaseModel):
            v: int

        app = make_app()

        @app.post("/")
        def handler(body: Local) -> Local:
            return body

        return app

    app = create_app()
    with app.test_client() as client:
        assert client.post("/", json={"v": 3}).json() == {"v": 3}


class Signup(BaseModel):
    name: str
    age: int


def test_422_echoes_inputs_that_are_not_json() -> None:
    """An upload where text was expected, or in a whole-form model: a 422, not a 500."""
    from transom import File, FormParam

    app = App(Settings(secret_key="test"))

    @app.post("/title")
    async def title(title: Annotated[str, FormParam()]) -> str:
        return title

    @app.post("/signup")
    async def signup(data: Annotated[Signup, FormParam()]) -> Signup:
        return data

    @app.post("/raw")
    async def raw(size: Annotated[int, FormParam()], data: Annotated[bytes, File()]) -> int:
        return size

    with app.test_client() as client:
        r = client.post("/title", files={"title": ("a.txt", b"hi", "text/plain")})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["input"] == {"filename": "a.txt", "content_type": "text/plain"}
        r = client.post("/signup", data={"age": "x"}, files={"name": ("n.txt", b"x")})
        assert r.status_code == 422, r.text
        assert {e["loc"][-1] for e in r.json()["detail"]} == {"name", "age"}
        r = client.post("/raw", files={"size": ("s.bin", b"\xff"), "data": ("d.bin", b"\xff")})
        assert r.status_code == 422, r.text


def test_422_echoes_integers_beyond_64_bits() -> None:
    app = App(Settings(secret_key="test"))

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    with app.test_client() as client:
        big = b"-9223372036854775809"
        r = client.post("/items", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["input"] == "-9223372036854775809"


def test_constraints_in_annotated_and_on_path_markers_are_enforced() -> None:
    """The shortcuts for plain ``int``/``str`` values (and for a path converter's int) must
    not skip what ``Annotated`` metadata or a ``Path(...)`` marker adds to the type."""
    from pydantic import AfterValidator

    app = make_app()

    @app.get("/c/annotated-path/{n:int}")
    async def annotated_path(n: Annotated[int, Field(gt=5)]) -> dict[str, int]:
        return {"n": n}

    @app.get("/c/marker-path/{n:int}")
    async def marker_path(n: int = Path(gt=5)) -> dict[str, int]:  # type: ignore[assignment]
        return {"n": n}

    @app.get("/c/annotated-query")
    async def annotated_query(
        n: Annotated[int, Field(gt=5)], s: Annotated[str, Field(max_length=3)]
    ) -> dict[str, Any]:
        return {"n": n, "s": s}

    @app.get("/c/validator")
    async def validator(s: Annotated[str, AfterValidator(str.upper)]) -> dict[str, str]:
        return {"s": s}

    with app.test_client() as client:
        assert client.get("/c/annotated-path/1").status_code == 422
        assert client.get("/c/annotated-path/9").json() == {"n": 9}
        assert client.get("/c/marker-path/1").status_code == 422
        assert client.get("/c/marker-path/9").json() == {"n": 9}
        too_small = client.get("/c/annotated-query?n=1&s=abc")
        assert too_small.status_code == 422
        assert too_small.json()["detail"][0]["loc"] == ["query", "n"]
        assert client.get("/c/annotated-query?n=9&s=abcd").status_code == 422
        assert client.get("/c/annotated-query?n=9&s=abc").json() == {"n": 9, "s": "abc"}
        assert client.get("/c/validator?s=ab").json() == {"s": "AB"}


def test_one_pass_solver_answers_as_the_general_one() -> None:
    """Routes of the common shape (no dependencies, no form, one whole-body model) are solved
    in one pass (``_signature.fast_solver``); every answer, errors included, must be the one
    ``Dependant.solve`` gives. Each request goes to both; the second app has the pass off."""
    from transom.routing import Route

    def build(one_pass: bool) -> App:
        app = make_app()

        @app.post("/t/{item_id:int}/{slug}")
        async def typed(
            item_id: int,
            slug: str,
            q: str,
            item: Item,
            request: Request,
            limit: int = 10,
            tags: list[str] = [],  # noqa: B006 - each request must get its own copy
            since: int | None = None,
            x_n: Annotated[int, Header()] = 0,
            small: Annotated[int, Query(lt=5)] = 0,
        ) -> dict[str, Any]:
            tags.append("seen")  # would leak into the next request without the copy
            assert request.path_params["item_id"] == item_id
            return {
                "item_id": item_id,
                "slug": slug,
                "q": q,
                "limit": limit,
                "tags": tags,
                "since": since,
                "x_n": x_n,
                "small": small,
                "item": item.model_dump(),
            }

        @app.get("/n/{n}")
        async def plain(n: int, flag: bool = False) -> dict[str, Any]:
            return {"n": n, "flag": flag}

        @app.post("/optional")
        async def optional(item: Item | None = None) -> dict[str, Any]:
            return {"item": item.model_dump() if item else None}

        app.build()
        for route in app.iter_routes():
            if not isinstance(route, Route) or route.path.startswith("/asyncapi"):
                continue
            if route.path.startswith(("/t/", "/n/", "/optional")):
                assert route._solve is not None, route  # the shape the one pass takes
            if not one_pass:
                route._solve = None
        return app

    good = {"name": "pen", "price": 2.5}
    requests: list[tuple[str, str, Any, dict[str, str]]] = [
        ("post", "/t/1/a?q=x", good, {}),
        ("post", "/t/1/a?q=x&limit=7&since=3&small=4&q=second", good, {"x-n": "5"}),
        ("post", "/t/1/a?q=x&limit=%33", good, {}),  # an escape: the general query parser
        ("post", "/t/1/a?q=x&limit=99999999999999999999", good, {}),  # beyond 19 digits
        ("post", "/t/1/a?q=x&limit=\u0663", good, {}),  # a non-ASCII digit
        ("post", "/t/1/a?q=x&limit=+3", good, {}),
        ("post", "/t/1/a?q=x&limit=", good, {}),
        ("post", "/t/1/a?q=x&since=", good, {}),
        # Errors from every source at once, in declaration order, then the body's.
        ("post", "/t/1/a?limit=z&small=9&since=w", {"price": -1}, {"x-n": "y"}),
        ("post", "/t/1/a?q=x", None, {}),  # no body
        ("post", "/t/1/a?q=x", "raw", {"content-type": "text/plain"}),  # 415
        ("post", "/t/1/a", "{bad", {"content-type": "application/json"}),  # 400 wins
        ("post", "/t/1/a?q=x", '{"name":"a","price":1}', {"content-type": "x/y+json"}),
        ("get", "/n/4?flag=yes", None, {}),
        ("get", "/n/4?flag=maybe", None, {}),
        ("post", "/optional", None, {}),
        ("post", "/optional", {"name": "a"}, {}),
    ]
    answers: list[list[tuple[int, Any]]] = []
    for one_pass in (True, False):
        seen: list[tuple[int, Any]] = []
        with build(one_pass).test_client() as client:
            for method, url, body, headers in requests:
                kwargs: dict[str, Any] = {"headers": headers}
                if isinstance(body, str):
                    kwargs["content"] = body
                elif body is not None:
                    kwargs["json"] = body
                response = getattr(client, method)(url, **kwargs)
                seen.append((response.status_code, response.json()))
        answers.append(seen)
    fast, general = answers
    for request, one, other in zip(requests, fast, general, strict=True):
        assert one == other, request
    statuses = [status for status, _ in fast]
    assert statuses[:13] == [200, 200, 200, 200, 422, 200, 422, 422, 422, 422, 415, 400, 200]
    assert statuses[13:] == [200, 422, 200, 422]
    assert fast[3][1]["limit"] == 99999999999999999999
    assert fast[0][1]["tags"] == ["seen"]
    assert fast[1][1]["tags"] == ["seen"]
    assert [tuple(e["loc"]) for e in fast[8][1]["detail"]] == [
        ("query", "q"),
        ("query", "limit"),
        ("query", "since"),
        ("header", "x-n"),
        ("query", "small"),
        ("body", "name"),
        ("body", "price"),
    ]
