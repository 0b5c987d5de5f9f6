"""OpenAPI 3.1 generation and the offline docs page."""

from __future__ import annotations

from typing import Annotated, Any

from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from transom import App, Depends, File, FormParam, Header, Query, Router, UploadFile
from transom.openapi import add_security_scheme
from transom.settings import Settings


class Author(BaseModel):
    name: str


class Article(BaseModel):
    title: str
    author: Author


class ArticleOut(BaseModel):
    id: int
    title: str
    author: Author


def build_app() -> App:
    app = App(Settings(title="Blog API", version="2.0"))
    api = Router("/api", tags=["articles"])

    def auth(x_api_key: Annotated[str, Header(description="Your key")]) -> str:
        return x_api_key

    @api.get("/articles/{article_id:int}")
    def get_article(article_id: int, expand: bool = False) -> ArticleOut:
        """Fetch one article.

        Returns the article with its author.
        """
        return ArticleOut(id=article_id, title="t", author=Author(name="a"))

    @api.post("/articles", status_code=201, dependencies=[Depends(auth)])
    def create_article(article: Article) -> ArticleOut:
        return ArticleOut(id=1, **article.model_dump())

    @api.get("/search")
    def search(q: Annotated[str, Query(min_length=2)], tags: list[str] = []) -> list[ArticleOut]:  # noqa: B006
        return []

    @api.post("/upload")
    async def upload(
        title: Annotated[str, FormParam()], file: Annotated[UploadFile, File()]
    ) -> dict[str, Any]:
        return {}

    @api.delete("/articles/{article_id:int}", status_code=204)
    def delete_article(article_id: int) -> None:
        return None

    @app.get("/hidden", include_in_schema=False)
    def hidden() -> str:
        return ""

    app.include_router(api)
    return app


def test_document_is_valid_openapi_31() -> None:
    app = build_app()
    with app.test_client() as client:
        document = client.get("/openapi.json").json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Blog API", "version": "2.0"}
    assert "/hidden" not in document["paths"]
    assert "/openapi.json" not in document["paths"]


def test_operations_describe_parameters_bodies_and_responses() -> None:
    document = build_app().test_client().get("/openapi.json").json()
    paths = document["paths"]
    get_op = paths["/api/articles/{article_id}"]["get"]
    assert get_op["summary"] == "Fetch one article."
    assert get_op["description"] == "Returns the article with its author."
    assert get_op["tags"] == ["articles"]
    assert get_op["parameters"] == [
        {"name": "article_id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {
            "name": "expand",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean", "default": False},
        },
    ]
    ok = get_op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ArticleOut"}
    assert "422" in get_op["responses"]

    post_op = paths["/api/articles"]["post"]
    header = next(p for p in post_op["parameters"] if p["in"] == "header")
    assert header["name"] == "x-api-key"
    assert header["description"] == "Your key"
    body = post_op["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Article"}
    assert "201" in post_op["responses"]

    search = paths["/api/search"]["get"]
    q = next(p for p in search["parameters"] if p["name"] == "q")
    assert q["schema"]["minLength"] == 2
    tags = next(p for p in search["parameters"] if p["name"] == "tags")
    assert tags["schema"]["type"] == "array"
    listing = search["responses"]["200"]["content"]["application/json"]["schema"]
    assert listing == {"type": "array", "items": {"$ref": "#/components/schemas/ArticleOut"}}

    upload = paths["/api/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["properties"]["file"]["contentMediaType"] == "application/octet-stream"
    assert set(upload["schema"]["required"]) == {"title", "file"}

    delete = paths["/api/articles/{article_id}"]["delete"]
    assert "content" not in delete["responses"]["204"]

    schemas = document["components"]["schemas"]
    assert {"Article", "ArticleOut", "Author", "HTTPValidationError"} <= set(schemas)
    assert schemas["Article"]["properties"]["author"] == {"$ref": "#/components/schemas/Author"}
    operation_ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_docs_page_is_served_from_the_package() -> None:
    app = build_app()
    with app.test_client() as client:
        page = client.get("/docs")
        js = client.get("/docs/swagger-ui-bundle.js")
        css = client.get("/docs/swagger-ui.css")
        init = client.get("/docs/init.js")
        nothing = client.get("/docs/../../etc/passwd")
        unknown = client.get("/docs/secrets.py")
    assert page.status_code == 200
    assert "data-openapi='/openapi.json'" in page.text
    # Offline: no asset comes from another host.
    assert "http://" not in page.text
    assert "https://" not in page.text
    assert js.status_code == 200
    assert len(js.content) > 100_000
    assert js.headers["content-type"].startswith("application/javascript")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert b"SwaggerUIBundle" in init.content
    assert nothing.status_code == 404
    assert unknown.status_code == 404


def test_openapi_and_docs_can_be_turned_off() -> None:
    app = App(Settings(openapi_url="", docs_url=""))
    with app.test_client() as client:
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/docs").status_code == 404
    only_json = App(Settings(docs_url=""))
    with only_json.test_client() as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 404


class CamelOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    user_name: str
    created_at: int


def test_response_models_are_rendered_by_alias_as_documented() -> None:
    app = App()

    @app.get("/me")
    def me() -> CamelOut:
        return CamelOut(user_name="ann", created_at=1)

    @app.get("/row")
    def row() -> CamelOut:
        return {"userName": "bob", "createdAt": 2}  # type: ignore[return-value]

    with app.test_client() as client:
        body = client.get("/me").json()
        other = client.get("/row").json()
        document = client.get("/openapi.json").json()
    assert body == {"userName": "ann", "createdAt": 1}
    assert other == {"userName": "bob", "createdAt": 2}
    # The same names as the document promises.
    assert set(document["components"]["schemas"]["CamelOut"]["properties"]) == set(body)


def test_a_handler_returning_none_is_documented_as_204_without_body() -> None:
    app = App()

    @app.post("/ping")
    def ping(n: int) -> None:
        return None

    @app.put("/done", status_code=202)
    def done() -> None:
        return None

    with app.test_client() as client:
        answer = client.post("/ping?n=1")
        accepted = client.put("/done")
        document = client.get("/openapi.json").json()
    validate(document)
    assert answer.status_code == 204
    assert document["paths"]["/ping"]["post"]["responses"]["204"] == {
        "description": "Successful response"
    }
    assert "200" not in document["paths"]["/ping"]["post"]["responses"]
    assert accepted.status_code == 202
    assert "content" not in document["paths"]["/done"]["put"]["responses"]["202"]


def test_a_routes_own_422_entry_is_kept() -> None:
    app = App()
    custom = {
        "description": "Errors by field",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }

    @app.post("/things", responses={422: custom})
    def create(thing: Article) -> Article:
        return thing

    document = app.test_client().get("/openapi.json").json()
    assert document["paths"]["/things"]["post"]["responses"]["422"] == custom


def test_openapi_hooks_post_process_the_document() -> None:
    app = App()

    @app.get("/a")
    def a() -> dict[str, int]:
        return {}

    @app.openapi_hook
    def servers(document: dict[str, Any]) -> None:
        document["servers"] = [{"url": "https://api.example.com"}]

    def replace(document: dict[str, Any]) -> dict[str, Any]:
        add_security_scheme(document, "key", {"type": "apiKey", "in": "header", "name": "X-Key"})
        return {**document, "info": {**document["info"], "title": "Replaced"}}

    with app.test_client() as client:
        first = client.get("/openapi.json").json()
        app.openapi_hook(replace)  # a hook added later is applied to the next document
        second = client.get("/openapi.json").json()
    assert first["servers"] == [{"url": "https://api.example.com"}]
    assert "securitySchemes" not in first["components"]
    validate(second)
    assert second["info"]["title"] == "Replaced"
    assert second["security"] == [{}, {"key": []}]
    assert second["components"]["securitySchemes"]["key"]["name"] == "X-Key"
